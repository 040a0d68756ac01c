import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Prefect reads its settings at import: point it at a throwaway home before any test imports it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="imgdedup-prefect-home-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# Default stores (one per scanned root), exported ONNX models and anything else kept under the
# user's home go to throwaway folders, never into the real ~/.cache/imgdedup.
REAL_HOME = os.path.expanduser("~")
_HOME = tempfile.mkdtemp(prefix="imgdedup-test-home-")
os.environ["HOME"] = _HOME
os.environ["XDG_CACHE_HOME"] = os.path.join(_HOME, ".cache")
os.environ["IMGDEDUP_HOME"] = tempfile.mkdtemp(prefix="imgdedup-home-")
os.environ.pop("IMGDEDUP_CACHE_DIR", None)
#: The throwaway homes, removed when the process that made them exits (a session left 4 MB of
#: them in the temporary folder, several GB over many sessions).
TEST_HOMES = (_PREFECT_HOME, _HOME, os.environ["IMGDEDUP_HOME"])
for _home in TEST_HOMES:
    atexit.register(shutil.rmtree, _home, ignore_errors=True)

import pytest  # noqa: E402

from imgdedup.sample import make_sample_folder  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for every flow test of the session (it takes seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def sample_folder(tmp_path_factory) -> tuple[Path, dict]:
    """A generated folder with known duplicates: (folder, ground truth map)."""
    root = tmp_path_factory.mktemp("sample") / "sample"
    truth = make_sample_folder(root, n_with_copies=5, n_distinct=8, seed=1)
    return root, truth


def known_pairs(truth: dict) -> set[frozenset]:
    return {frozenset((a, b)) for a, dups in truth.items() for b in dups}


def found_pairs(duplicates: dict) -> set[frozenset]:
    return {frozenset((a, b)) for a, dups in duplicates.items() for b in dups}


@pytest.fixture
def offline_torch(tmp_path, monkeypatch) -> Path:
    """No network and an empty torch cache (``TORCH_HOME`` in ``tmp_path``); returns that cache."""
    import urllib.request

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # offline, whatever this machine can reach
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    # urllib caches its first opener with the proxies of that moment: give this test its own, so
    # later tests' requests to 127.0.0.1 do not go through this dead proxy
    monkeypatch.setattr(urllib.request, "_opener", None)
    return tmp_path / "torch"
