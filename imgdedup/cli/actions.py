"""The ``apply`` and ``undo`` commands: clean up a run's duplicates, and take it back.

Registered on the ``imgdedup`` group in :mod:`imgdedup.cli.main`. Exit status: 0
everything planned was done (or restored); 3 finished, but some files were
skipped (each is printed with the reason); 1 failed (``Error: ...``); 2 bad usage.
"""

from __future__ import annotations

import os
import sys

import click

from imgdedup.actions import (
    ACTIONS,
    KEEP_POLICIES,
    ActionError,
    apply_plan,
    load_run,
    plan_actions,
    show,
    undo_journal,
)
from imgdedup.errors import ImgdedupError
from imgdedup.review.report import human_bytes

EXIT_OK, EXIT_FAILED, EXIT_SKIPPED = 0, 1, 3

_PAST = {
    "move": "moved",
    "delete": "moved to the trash",
    "hardlink": "replaced by hard links",
    "symlink": "replaced by symbolic links",
}


def _below(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path != root and os.path.commonpath([path, root]) == root


def _fail(exc: Exception) -> None:
    click.echo(f"Error: {exc}", err=True)
    sys.exit(EXIT_FAILED)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--action", type=click.Choice(ACTIONS), required=True, help="What to do with each duplicate.")
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="move: where the duplicates go (required). delete/hardlink/symlink: the trash folder (default RUN_DIR/trash).",
)
@click.option(
    "--keep",
    type=click.Choice(KEEP_POLICIES),
    default="resolution",
    show_default=True,
    help="Which file of a cluster is kept: highest resolution (the run's keeper), largest file, oldest or newest mtime.",
)
@click.option(
    "--reference",
    "references",
    multiple=True,
    metavar="SUBFOLDER",
    help="A folder below the scanned root whose files are never touched (repeatable).",
)
@click.option(
    "--tier",
    "tiers",
    multiple=True,
    type=click.Choice(("exact", "near", "review")),
    help="Act only on duplicates of this tier (repeatable), e.g. --tier exact: byte-identical copies, no review needed.",
)
@click.option(
    "--decisions",
    "use_decisions",
    is_flag=True,
    help="Act on the decisions saved by `imgdedup review` (RUN_DIR/decisions.json): decided clusters only, their chosen keepers.",
)
@click.option("--yes", is_flag=True, help="Do it. Without --yes nothing is changed: the plan is printed.")
def apply(run_dir, action, to, keep, references, tiers, use_decisions, yes) -> None:
    """Move, trash or link the duplicates found by a run (a dry run unless --yes).

    Every file is checked first (size, mtime and content digest as in the run; inside
    the scanned root; not a symbolic link) and skipped with the reason otherwise.
    With --yes every change is journalled in RUN_DIR/journal-<time>.jsonl first;
    `imgdedup undo JOURNAL` restores it. Nothing is ever unlinked: delete moves files
    into the trash folder, and hardlink/symlink keep the replaced original there.

    Example: imgdedup apply runs/pictures --action delete --reference originals --yes
    """
    try:
        if use_decisions:
            from imgdedup.review.session import plan_decisions

            if keep != "resolution":
                raise click.UsageError(
                    "--keep does not go with --decisions: the keepers are the ones chosen in the review"
                )
            plan = plan_decisions(run_dir, action, to=to, references=references, tiers=list(tiers) or None)
            run = plan.run
        else:
            run = load_run(run_dir)
            plan = plan_actions(run, action, keep=keep, references=references, to=to, tiers=list(tiers) or None)
    except ImgdedupError as exc:
        _fail(exc)
    if not yes:
        click.echo("Dry run: nothing is changed. Add --yes to do it.")
    click.echo(f"root:     {show(run.root)}")
    where = {"move": f"to {show(plan.dest)}", "delete": f"trash {show(plan.dest)}"}.get(
        action, f"originals kept in {show(plan.dest)}"
    )
    click.echo(f"action:   {action}, {where}")
    refs = ", ".join(show(r) or "(whole root)" for r in plan.references) or "none"
    click.echo(f"keep:     {keep}; reference folders: {refs}")
    if action == "move" and _below(plan.dest, run.root):
        # Moved files are the person's own (not imgdedup's output, unlike a trash folder): later scans
        # should see them, so the folder gets no marker; say what that means instead.
        click.echo(
            "note:     --to is inside the scanned root: a later scan of it reads the moved files again "
            "(as duplicates of their keepers); a folder outside the root keeps them out"
        )
    if any(m.mtime_ns is None for c in run.clusters for m in c):
        click.echo("note:     this run has no file times: files are checked by size and digest only")
    try:
        outcome = apply_plan(plan, dry_run=not yes, echo=click.echo)
    except (ImgdedupError, OSError) as exc:
        _fail(exc)
    verb = _PAST[action]
    files = f"{len(outcome.done)} file{'s' if len(outcome.done) != 1 else ''} ({human_bytes(outcome.bytes)})"
    kept = f"{len(plan.kept)} kept in {len(run.clusters)} clusters"
    if yes:
        click.echo(f"done:     {files} {verb}; {len(outcome.skipped)} skipped; {kept}")
        if outcome.journal:
            click.echo(f"journal:  {outcome.journal}")
            if outcome.done:
                click.echo(f"undo:     imgdedup undo {outcome.journal}")
    else:
        click.echo(f"would be: {files} {verb}; {len(outcome.skipped)} skipped; {kept}")
    sys.exit(EXIT_SKIPPED if outcome.skipped else EXIT_OK)


@click.command()
@click.argument("journal", type=click.Path(dir_okay=False, exists=True, path_type=str))
@click.option("--dry-run", is_flag=True, help="Print what would be restored; change nothing.")
def undo(journal, dry_run) -> None:
    """Restore every file changed by `imgdedup apply` from its JOURNAL.

    Moved and trashed files go back to their paths; links are replaced by the kept
    originals (same bytes and mtime). Running it twice is harmless.

    Example: imgdedup undo runs/pictures/journal-20250101-120000-000000.jsonl
    """
    try:
        outcome = undo_journal(journal, dry_run=dry_run, echo=click.echo)
    except (ActionError, ImgdedupError, OSError) as exc:
        _fail(exc)
    if dry_run:
        click.echo(f"would restore: {len(outcome.restored)} files")
    else:
        extra = f"; {outcome.already} already undone" if outcome.already else ""
        click.echo(f"restored: {len(outcome.restored)} files; {len(outcome.problems)} problems{extra}")
    sys.exit(EXIT_SKIPPED if outcome.problems else EXIT_OK)
