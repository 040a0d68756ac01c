"""Safe clean-up of a run's duplicates, with a journal and a full undo.

Actions (on every duplicate; the kept files are never touched):

``move``
    The duplicate moves to ``--to DIR``, keeping its path below the scanned root
    (``DIR/<relative path>``).
``delete``
    The duplicate moves into a trash folder, ``RUN/trash/<stamp>/<relative path>``
    by default (``--to DIR`` gives ``DIR/<stamp>/...``). Nothing is unlinked: the
    space comes back when that folder is deleted (the purge), which ends undo.
``hardlink`` / ``symlink``
    The duplicate is replaced, atomically, by a hard link to the keeper or a
    relative symbolic link to it. The original is kept in the trash folder as
    above (a hard link of it when the trash is on the same file system, so it
    costs no copy), so undo restores the original bytes and mtime.

Keep policies choose each cluster's keeper: ``resolution`` (the run's keeper:
highest resolution, then largest file, then path order), ``largest`` (file
size), ``oldest`` / ``newest`` (mtime). Files under a reference folder are never
touched: in a cluster that has any, they are all kept and the best of them (by
the policy) is the keeper; other clusters use the policy.

Safety: before touching a file (and the keeper it leaves in place) the size,
mtime and content digest must still be those of the run, else the file is
skipped with the reason. Ids that are absolute or contain ``..``, files whose
folder resolves outside the scanned root, and symbolic links are refused. No
existing file is ever overwritten.

Journal: ``RUN/journal-<stamp>.jsonl``, JSON lines, created before the first
change: a ``start`` line, then for each action a ``plan`` line made durable
(fsync) before the file is touched and a ``done`` (or ``fail``) line after it.
Lines are written in batches: every ``plan`` line of a batch is fsync'd before
any file of that batch changes. :func:`undo_journal` reads the journal, inspects each
planned file (so a crash mid-batch is handled) and restores it, appending
``undone`` lines to the same journal, so running it again is harmless.

Modules, in the order they depend on each other (arrows point one way):
``run`` (load a run folder, :class:`ActionError`), ``paths`` (ids below the
root, checks that a file is still the one the run saw), ``plan`` (keep policies,
keepers, steps), ``journal``, ``files`` (the file operations of one step),
``apply`` and ``undo``.

May import: ``imgdedup.imaging.discover`` (content digests), ``imgdedup.storage.locations``
(to refuse URLs, to fsync folders) and ``imgdedup.errors``. Local files only. The keep
policies are defined with the other settings (``imgdedup.config.KEEP_POLICIES``).
"""

from imgdedup.actions.apply import BATCH, Echo, Outcome, apply_plan, describe
from imgdedup.actions.journal import JOURNAL_VERSION, Journal, read_journal
from imgdedup.actions.paths import file_digest, id_problem, normalise_reference, resolve_in_root, show, verify_file
from imgdedup.actions.plan import (
    ACTIONS,
    KEEP_POLICIES,
    TRASH,
    Plan,
    Skip,
    Step,
    choose_keepers,
    new_stamp,
    plan_actions,
)
from imgdedup.actions.run import ActionError, Run, RunFile, load_run
from imgdedup.actions.undo import UndoOutcome, undo_journal

__all__ = [
    "ACTIONS",
    "BATCH",
    "JOURNAL_VERSION",
    "KEEP_POLICIES",
    "TRASH",
    "ActionError",
    "Echo",
    "Journal",
    "Outcome",
    "Plan",
    "Run",
    "RunFile",
    "Skip",
    "Step",
    "UndoOutcome",
    "apply_plan",
    "choose_keepers",
    "describe",
    "file_digest",
    "id_problem",
    "load_run",
    "new_stamp",
    "normalise_reference",
    "plan_actions",
    "read_journal",
    "resolve_in_root",
    "show",
    "undo_journal",
    "verify_file",
]
