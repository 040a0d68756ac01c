"""A small real `find` run for the review tests: an exact-only cluster, a near cluster, a hostile name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from imgdedup.config import load_config
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
from imgdedup.sample import random_scene

EVIL = "<img src=x onerror=alert(1)>.png"


def make_folder(root: Path) -> Path:
    """Three groups of copies and one lone picture, under ``root``."""
    rng = np.random.default_rng(7)
    (root / "originals").mkdir(parents=True)
    (root / "copies").mkdir()
    a, b, c, lone = (random_scene(rng) for _ in range(4))
    a.save(root / "originals" / "a.png")
    shutil.copyfile(root / "originals" / "a.png", root / "copies" / "a-copy.png")  # exact tier
    b.save(root / "originals" / "b.png")
    b.resize((320, 240)).save(root / "copies" / "b-small.png")  # near tier
    b.resize((480, 360)).save(root / "copies" / "b-medium.png")
    c.save(root / "originals" / "c.png")
    c.resize((400, 300)).save(root / "copies" / EVIL)
    lone.save(root / "lone.png")
    return root


def find_run(tmp_path: Path, name: str = "run", store: Path | None = None) -> tuple[Path, Path, Path]:
    """``(root, run folder, store)`` of a phash `find` on the folder (made once per tmp_path)."""
    root = tmp_path / "tree"
    if not root.exists():
        make_folder(root)
    store = store or tmp_path / "store"
    run = tmp_path / name
    find_duplicates_in_folder(root, load_config(method="phash", store=str(store)), run)
    return root, run, store


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
