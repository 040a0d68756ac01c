"""The ``imgdedup`` command: thin adapters from flags to library calls.

Exit status: 0 every file was processed; 3 finished, but some files were
unreadable (listed in errors.csv); 1 failed (``Error: ...``); 2 bad usage
(an unknown or invalid flag, or an invalid setting in a configuration).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import click

from imgdedup.config import (
    Config,
    Cosine,
    FolderRule,
    Method,
    PositiveInt,
    PositiveNumber,
    Threshold,
    click_type,
    load_config,
)
from imgdedup.errors import ConfigError, ImgdedupError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3


def _fail(exc: Exception) -> None:
    click.echo(f"Error: {exc}", err=True)
    sys.exit(EXIT_FAILED)


def _settings(config: Optional[str], **overrides) -> Config:
    try:
        return load_config(config, **overrides)
    except ConfigError as exc:  # a bad flag or configuration is bad usage: exit 2, like click's own errors
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except ImgdedupError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


def _finish(summary) -> None:
    for line in summary.lines():
        click.echo(line)
    sys.exit(EXIT_UNREADABLE if summary.unreadable else EXIT_OK)


def _common_options(function):
    options = [
        click.argument("path", type=click.Path(file_okay=False, path_type=str)),
        click.option(
            "--method",
            type=click_type(Method),
            default=None,
            help="hybrid (default: CNN embedding confirmed by hashes), cnn, phash, dhash, ahash or whash.",
        ),
        click.option(
            "--threshold",
            type=click_type(Threshold),
            default=None,
            help="Largest Hamming distance (0-64) that counts as duplicate (default 10; hybrid 15, on trimmed phash or dhash).",
        ),
        click.option(
            "--min-similarity",
            type=click_type(Cosine),
            default=None,
            help="cnn/hybrid: smallest cosine similarity that counts as duplicate (default 0.94; hybrid 0.975).",
        ),
        click.option(
            "--model",
            default=None,
            metavar="NAME",
            help="cnn/hybrid: the embedding model, efficientnet_lite0 (default), torchvision:<name> or timm:<name>.",
        ),
        click.option(
            "--store",
            type=click.Path(file_okay=False, path_type=str),
            default=None,
            help="Incremental store folder (default: one per scanned root under $IMGDEDUP_HOME).",
        ),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=str),
            default=None,
            help="Run folder (default: a new folder under ./imgdedup-runs/).",
        ),
        click.option("--config", "config_name", default=None, help="Configuration: a YAML path or a name in configs/."),
        click.option(
            "--compat", is_flag=True, default=None, help="imagededup 0.3.3's pixel path: bit-identical hashes."
        ),
        click.option("--recursive/--no-recursive", default=None, help="Walk sub-folders (default: yes)."),
        click.option(
            "--rule-folders",
            type=click_type(FolderRule),
            default=None,
            help="Pair rule: pairs only within a folder (same) or only across folders (different).",
        ),
        click.option(
            "--rule-ignore",
            multiple=True,
            metavar="GLOB",
            help="Pair rule: veto pairs with a file matching GLOB (repeatable).",
        ),
        click.option(
            "--max-resolution-ratio",
            "rule_max_resolution_ratio",
            type=click_type(PositiveNumber),
            default=None,
            help="Pair rule: veto pairs whose pixel counts differ by more than this factor.",
        ),
        click.option(
            "--max-aspect-difference",
            "rule_max_aspect_difference",
            type=click_type(PositiveNumber),
            default=None,
            help="Pair rule: veto pairs whose aspect ratios differ by more than this fraction.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imgdedup")
def main() -> None:
    """Find duplicate and near-duplicate images."""


def _read_truth(ctx, param, value):
    if value is None:
        return None
    import json as _json

    try:
        truth = _json.loads(Path(value).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {value!r}: {exc}") from None
    if not isinstance(truth, dict) or not all(isinstance(v, list) for v in truth.values()):
        raise click.BadParameter("must be a JSON map {file: [its duplicates]}")
    return truth


@main.command()
@_common_options
@click.option(
    "--truth",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    callback=_read_truth,
    default=None,
    help="A ground truth {file: [its duplicates]} (JSON): the report shows the run's precision and recall against it.",
)
@click.option(
    "--workers",
    "find_workers",
    type=click_type(PositiveInt),
    default=None,
    help="Processes that read, hash and embed images (default: one per core).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display (the summary is still printed).")
def find(
    path,
    method,
    threshold,
    min_similarity,
    model,
    store,
    out,
    config_name,
    compat,
    recursive,
    rule_folders,
    rule_ignore,
    rule_max_resolution_ratio,
    rule_max_aspect_difference,
    truth,
    quiet,
    find_workers,
) -> None:
    """Find duplicates in PATH in this process (no Prefect server needed).

    Example: imgdedup find ~/Pictures --method phash --threshold 10 --out runs/pictures
    """
    from imgdedup.cli.progress import make_progress
    from imgdedup.pipeline.inprocess import find_duplicates_in_folder
    from imgdedup.pipeline.run import default_out_dir

    settings = _settings(
        config_name,
        method=method,
        threshold=threshold,
        min_similarity=min_similarity,
        model=model,
        store=store,
        compat=compat,
        recursive=recursive,
        rule_folders=rule_folders,
        rule_ignore=tuple(rule_ignore) or None,
        rule_max_resolution_ratio=rule_max_resolution_ratio,
        rule_max_aspect_difference=rule_max_aspect_difference,
        find_workers=find_workers,
    )
    progress, close = make_progress(quiet=quiet, embeds=settings.uses_embeddings)
    try:
        summary = find_duplicates_in_folder(path, settings, out or default_out_dir(), progress=progress, truth=truth)
    except ImgdedupError as exc:
        close()
        _fail(exc)
    close()
    _finish(summary)


@main.command()
@_common_options
@click.option(
    "--address",
    default=None,
    help="Existing Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: start a LocalCluster).",
)
@click.option(
    "--workers",
    "n_workers",
    type=click_type(PositiveInt),
    default=None,
    help="Worker processes of the LocalCluster (default 2).",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress display (the summary and Prefect's log are still printed)."
)
def run(
    path,
    method,
    threshold,
    min_similarity,
    model,
    store,
    out,
    config_name,
    compat,
    recursive,
    rule_folders,
    rule_ignore,
    rule_max_resolution_ratio,
    rule_max_aspect_difference,
    address,
    n_workers,
    quiet,
) -> None:
    """Run the same job as the Prefect flow ``dedup`` on Dask workers.

    Uses the Prefect server named by PREFECT_API_URL, or starts a temporary one for the run.

    Example: imgdedup run ~/Pictures --threshold 8 --config default --address tcp://127.0.0.1:8786
    """
    rules = dict(
        rule_folders=rule_folders,
        rule_ignore=list(rule_ignore) or None,
        rule_max_resolution_ratio=rule_max_resolution_ratio,
        rule_max_aspect_difference=rule_max_aspect_difference,
    )
    settings = _settings(
        config_name,
        method=method,
        threshold=threshold,
        min_similarity=min_similarity,
        model=model,
        store=store,
        compat=compat,
        recursive=recursive,
        address=address,
        n_workers=n_workers,
        **{**rules, "rule_ignore": tuple(rule_ignore) or None},
    )
    from imgdedup.cli.progress import make_progress
    from imgdedup.flows.api import prefect_api
    from imgdedup.flows.dedup import dedup_flow, stage_progress
    from imgdedup.pipeline.run import default_out_dir

    progress, close = make_progress(quiet=quiet, embeds=settings.uses_embeddings)
    shown = stage_progress.set(progress)
    try:
        with prefect_api():
            summary = dedup_flow(
                path=path,
                method=method,
                threshold=threshold,
                min_similarity=min_similarity,
                model=model,
                out=out or str(default_out_dir()),
                store=store,
                config=config_name,
                address=address,
                compat=compat,
                recursive=recursive,
                n_workers=n_workers,
                **rules,
            )
    except ImgdedupError as exc:
        close()
        _fail(exc)
    finally:
        stage_progress.reset(shown)
    close()
    _finish(summary)


@main.command()
@click.argument("truth", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=str))
def evaluate(truth, run_dir) -> None:
    """Score a run against a ground truth with imagededup's metrics and pairwise precision/recall.

    TRUTH is a JSON map {file: [its duplicates]} over the scanned folder (imagededup's format);
    files present in only one of TRUTH and the run are left out and counted.

    Example: imgdedup evaluate imgdedup-demo/sample_ground_truth.json imgdedup-demo/run
    """
    import json as _json

    from imgdedup.compat.evaluation import evaluate as _evaluate
    from imgdedup.compat.evaluation import pairwise_scores

    try:
        truth_map = _json.loads(Path(truth).read_text(encoding="utf-8"))
        retrieved = _json.loads((Path(run_dir) / "duplicates.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(ImgdedupError(f"cannot read the maps: {exc}"))
    common = set(truth_map) & set(retrieved)
    truth_map = {k: [v for v in vs if v in common] for k, vs in truth_map.items() if k in common}
    retrieved = {k: [v for v in vs if v in common] for k, vs in retrieved.items() if k in common}
    try:
        scores = _evaluate(truth_map, retrieved, metric="all")
    except ValueError as exc:
        _fail(ImgdedupError(str(exc)))
    pairs = pairwise_scores(truth_map, retrieved)
    click.echo(f"files:      {len(common)} scored ({len(set(truth_map) ^ set(retrieved))} only in one map)")
    click.echo(f"map:        {scores['map']:.4f}")
    click.echo(f"ndcg:       {scores['ndcg']:.4f}")
    click.echo(f"jaccard:    {scores['jaccard']:.4f}")
    for label, k in (("non-duplicate pairs", 0), ("duplicate pairs", 1)):
        if k < len(scores["precision"]):
            click.echo(
                f"{label + ':':<21}precision {scores['precision'][k]:.4f}  recall {scores['recall'][k]:.4f}  "
                f"f1 {scores['f1_score'][k]:.4f}  support {int(scores['support'][k])}"
            )
    click.echo(
        f"pairwise:   precision {pairs['precision']:.4f}  recall {pairs['recall']:.4f}  f1 {pairs['f1']:.4f}  "
        f"(tp {pairs['tp']}, fp {pairs['fp']}, fn {pairs['fn']})"
    )


@main.command()
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--size", type=(int, int), default=(256, 256), show_default=True, metavar="W H", help="Output width and height."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("JPEG", "PNG", "WEBP"), case_sensitive=False),
    default="JPEG",
    show_default=True,
)
@click.option("--recursive/--no-recursive", default=True, help="Walk sub-folders (default: yes).")
def preprocess(input_dir, output_dir, size, fmt, recursive) -> None:
    """Write normalised copies of every image: oriented, alpha on white, resized; same relative paths.

    Unreadable files are listed with their reason (exit status 3 when there are any).

    Example: imgdedup preprocess photos/ photos-256/ --size 256 256 --format JPEG
    """
    from imgdedup.imaging.preprocess import preprocess_images

    try:
        result = preprocess_images(input_dir, output_dir, target_size=tuple(size), format=fmt, recursive=recursive)
    except (ImgdedupError, ValueError) as exc:
        _fail(exc)
    for path, reason in result.errors:
        click.echo(f"unreadable:   {os.fsencode(path).decode('utf-8', 'replace')}: {reason}")
    click.echo(f"written:      {len(result.written)} images to {output_dir}")
    click.echo(f"unreadable:   {len(result.errors)}")
    sys.exit(EXIT_UNREADABLE if result.errors else EXIT_OK)


@main.command()
def deploy() -> None:
    """Create the work pool and every deployment of prefect.yaml on the current Prefect API.

    Example: PREFECT_API_URL=http://127.0.0.1:4200/api IMGDEDUP_LIBRARY=~/Pictures imgdedup deploy
    """
    import subprocess

    from imgdedup.deployments.local import DEPLOYMENTS, WORK_POOL, deploy_all, worker_command

    try:
        deploy_all()
    except subprocess.CalledProcessError as exc:
        _fail(ImgdedupError(f"prefect deploy failed:\n{exc.stdout}{exc.stderr}"))
    click.echo(f"deployed {', '.join(DEPLOYMENTS)} on work pool {WORK_POOL}")
    click.echo(f"start a worker:  {' '.join(worker_command())}")
    click.echo("run one:         prefect deployment run 'dedup/adhoc' --param path=/some/folder --param threshold=8")


@main.command()
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=str),
    default="imgdedup-demo/sample",
    help="Where to write the sample images.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=str), default="imgdedup-demo/run", help="Run folder.")
@click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Incremental store folder (default: `store` beside the sample folder; a store serves one folder).",
)
def demo(folder, out, store) -> None:
    """Generate a sample folder with known duplicates and run ``find`` on it.

    Example: imgdedup demo --folder /tmp/sample --out /tmp/sample-run
    """
    from imgdedup.pipeline.inprocess import find_duplicates_in_folder
    from imgdedup.sample import make_sample_folder

    truth = make_sample_folder(folder)
    click.echo(
        f"sample:       {folder} ({len(truth)} images, {sum(1 for v in truth.values() if v)} with known duplicates)"
    )
    try:
        summary = find_duplicates_in_folder(folder, load_config(store=store or str(Path(folder).parent / "store")), out)
    except ImgdedupError as exc:
        _fail(exc)
    _finish(summary)


from imgdedup.cli.actions import apply, undo  # noqa: E402  (commands defined beside their library)
from imgdedup.cli.review import review  # noqa: E402

main.add_command(apply)
main.add_command(undo)
main.add_command(review)


if __name__ == "__main__":
    main()
