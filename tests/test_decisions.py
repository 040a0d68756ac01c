"""decisions.json: saved atomically, undone step by step (a bulk accept at once), turned into a run to apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgdedup.actions import ActionError, Run, RunFile
from imgdedup.review import decisions as dec


def _file(name: str, keeper: bool = False) -> RunFile:
    return RunFile(id=name, size=10, mtime_ns=1, width=10, height=10, digest=name, position=0, run_keeper=keeper)


RUN = Run(
    run_dir=Path("/nowhere"),
    root="/nowhere",
    clusters=[
        [_file("a", True), _file("b"), _file("c")],
        [_file("d", True), _file("e")],
        [_file("f", True), _file("g")],
    ],
)


def test_save_load_and_undo(tmp_path):
    d = dec.empty()
    dec.decide(d, 1, keeper="b")
    dec.decide(d, 2, done=True)
    dec.decide(d, 3, done=True)
    dec.collapse(d, 2)  # a bulk accept of clusters 2 and 3
    dec.save_decisions(tmp_path, d)
    again = dec.load_decisions(tmp_path)
    assert again == json.loads(json.dumps(d))
    assert dec.undo_last(again) and set(again["clusters"]) == {"1"}
    assert dec.undo_last(again) and again["clusters"] == {}
    assert dec.undo_last(again) is None
    (tmp_path / "decisions.json").write_text('{"version": 9}')
    with pytest.raises(ActionError, match="not a version 1 decisions file"):
        dec.load_decisions(tmp_path)
    with pytest.raises(ValueError, match="unknown decision fields: colour"):
        dec.decide(d, 1, colour="red")


def test_decided_run_keeps_the_persons_choices():
    d = dec.empty()
    dec.decide(d, 1, keeper="a", apart=["a"], done=True)  # its keeper set apart: back to the suggestion, i.e. none left
    dec.decide(d, 2, not_duplicates=True, done=True)
    run = dec.decided_run(RUN, [1, 2, 3], d)
    assert [[(m.id, m.run_keeper) for m in c] for c in run.clusters] == [[("b", False), ("c", False)]]
    dec.decide(d, 1, keeper="c", apart=["b"])
    dec.decide(d, 3, done=True)
    run = dec.decided_run(RUN, [1, 2, 3], d)
    assert [[(m.id, m.run_keeper) for m in c] for c in run.clusters] == [[("a", False), ("c", True)]] + [
        [("f", True), ("g", False)]
    ]
    with pytest.raises(ValueError, match="`numbers` has 2 entries"):
        dec.decided_run(RUN, [1, 2], d)
