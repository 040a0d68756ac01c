"""Live progress of a run for people: a rich progress display on a terminal, plain lines otherwise.

:func:`make_progress` returns the ``progress(stage, done, total)`` callback that
:func:`imgdedup.pipeline.inprocess.find_duplicates_in_folder` calls (see its
``Progress``), and a ``close()`` to call when the run ends. Output goes to
stderr, so stdout keeps only the summary.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

LABELS = {
    "discover": "files discovered",
    "read": "images read",
    "commit": "saving to the store",
    "search": "searching pairs",
    "cluster": "clustering",
    "report": "writing the report",
}
#: plain lines: at most one per stage this often, besides its start and end
PLAIN_EVERY_S = 5.0

Callback = Callable[[str, int, "int | None"], None]


def _label(stage: str, embeds: bool) -> str:
    if stage == "read" and embeds:
        return "images read and embedded"
    return LABELS.get(stage, stage)


def plain_progress(stream: TextIO, embeds: bool = False) -> tuple[Callback, Callable[[], None]]:
    """Lines such as ``read: 1200/4000 images (350/s, ~8 s left)``; rate-limited."""
    state = {"stage": None, "started": 0.0, "last": 0.0}

    def line(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    def progress(stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if stage != state["stage"]:
            state.update(stage=stage, started=now, last=now)
            if total == 0:
                line(f"{stage}: 0 {_label(stage, embeds)}")
                return
            if total is None or done == 0:
                line(f"{stage}: {_label(stage, embeds)}" + (f", 0/{total}" if total else ""))
                return
        finished = total is not None and done >= total
        if not finished and now - state["last"] < PLAIN_EVERY_S:
            return
        state["last"] = now
        if total is None:
            return
        elapsed = max(now - state["started"], 1e-9)
        rate = done / elapsed
        left = f", ~{(total - done) / rate:.0f} s left" if rate > 0 and not finished else ""
        line(f"{stage}: {done}/{total} {_label(stage, embeds)} ({rate:.0f}/s{left})")

    return progress, lambda: None


def rich_progress(stream: TextIO, embeds: bool = False) -> tuple[Callback, Callable[[], None]]:
    """A rich display: one line per stage with a bar, count, rate and ETA (a spinner when uncounted)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    display = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=False,
    )
    tasks: dict[str, int] = {}
    state = {"current": None}

    def finish_current() -> None:
        current = state["current"]
        if current is not None:
            task = display.tasks[tasks[current]]
            display.update(
                tasks[current],
                total=task.total or max(task.completed, 1),
                completed=task.total or max(task.completed, 1),
            )
            display.stop_task(tasks[current])

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            finish_current()
            if not display.live.is_started:
                display.start()
            tasks[stage] = display.add_task(_label(stage, embeds), total=total, rate="")
            state["current"] = stage
        task_id = tasks[stage]
        speed = display.tasks[task_id].speed
        display.update(task_id, completed=done, total=total, rate=f"{speed:.0f}/s" if speed else "")

    def close() -> None:
        finish_current()
        if display.live.is_started:
            display.stop()

    return progress, close


def make_progress(
    quiet: bool = False, embeds: bool = False, stream: TextIO | None = None, terminal: bool | None = None
) -> tuple[Callback | None, Callable[[], None]]:
    """``(progress or None, close)``: rich when stdout and the stream are terminals, plain lines otherwise, none when ``quiet``."""
    if quiet:
        return None, lambda: None
    stream = stream or sys.stderr
    if terminal is None:
        terminal = sys.stdout.isatty() and stream.isatty()
    return (rich_progress if terminal else plain_progress)(stream, embeds)
