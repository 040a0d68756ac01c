"""The ``review`` command: decide on a run's clusters in the browser (:mod:`imgdedup.review.app`)."""

from __future__ import annotations

import sys

import click

from imgdedup.errors import ImgdedupError

EXIT_FAILED = 1


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port on 127.0.0.1 (default: a free one).")
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
def review(run_dir, port, no_browser) -> None:
    """Review a run in the browser: pick keepers, mark not-duplicates, apply and undo.

    Serves a local page on 127.0.0.1 (only), reachable with the secret token in
    the printed URL. Decisions are saved as they are made in RUN_DIR/decisions.json;
    `imgdedup apply RUN_DIR --decisions` acts on them from the command line too.

    Example: imgdedup review runs/pictures --port 8765 --no-browser
    """
    from imgdedup.review.app import serve

    try:
        serve(run_dir, port=port, open_browser=not no_browser, echo=click.echo)
    except (ImgdedupError, OSError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
