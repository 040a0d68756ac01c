"""The test suite never writes into the user's real home: every default location is a temporary one."""

import os
import tempfile
from pathlib import Path

from imgdedup.embedding.embedder import default_cache_dir
from imgdedup.storage.store import default_store_path
from tests.conftest import REAL_HOME


def test_default_locations_are_temporary_during_tests(tmp_path):
    temporary = Path(tempfile.gettempdir()).resolve()
    store = default_store_path(tmp_path / "photos")
    assert store.parents[1] == Path(os.environ["IMGDEDUP_HOME"])
    for location in (store, default_cache_dir(), Path.home()):
        assert temporary in location.resolve().parents, location
        assert Path(REAL_HOME).resolve() not in location.resolve().parents, location


def test_the_throwaway_homes_are_removed_when_the_test_process_exits():
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    script = "import tests.conftest as c; print('\\n'.join(c.TEST_HOMES))"
    made = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, check=True)
    homes = made.stdout.split()
    assert len(homes) == 3 and all(Path(home).name.startswith("imgdedup-") for home in homes)
    assert not any(Path(home).exists() for home in homes)
