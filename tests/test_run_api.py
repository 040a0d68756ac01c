"""`imgdedup run` on a plain machine: no Prefect server, a fresh PREFECT_HOME, a busy CPU.

Each test runs the console command as a new user would, in a subprocess with its own environment: one
temporary Prefect API for the whole run (the Dask workers use it, never start their own), or a clear
`Error: ...` when the API named by PREFECT_API_URL cannot be reached.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client

from imgdedup.sample import make_sample_folder
from tests.conftest import found_pairs, known_pairs
from tests.processes import free_port, stop
from tests.test_dask_cluster import Cluster

IMGDEDUP = str(Path(sys.executable).with_name("imgdedup"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run-api") / "photos"
    return folder, make_sample_folder(folder, n_with_copies=3, n_distinct=4, seed=11)


def fresh_environment(tmp_path: Path) -> dict[str, str]:
    """The environment of a new user: a PREFECT_HOME never used, no server, nothing else set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return dict(
        env,
        PREFECT_HOME=str(tmp_path / "fresh-prefect-home"),
        IMGDEDUP_HOME=str(tmp_path / "imgdedup-home"),
        OMP_NUM_THREADS="1",
    )


def busy_processes(n: int = 2) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)]


def check_run(result: subprocess.CompletedProcess, out: Path, truth: dict) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert not our_tracebacks(result.stderr) and "Timed out" not in result.stderr, result.stderr
    assert found_pairs(json.loads((out / "duplicates.json").read_text())) == known_pairs(truth)


def test_run_without_a_server_on_a_busy_machine_from_a_fresh_prefect_home(photos, tmp_path):
    """Two busy processes beside it, a LocalCluster of two workers: the run completes on one temporary API."""
    folder, truth = photos
    busy = busy_processes()
    try:
        result = subprocess.run(
            [IMGDEDUP, "run", str(folder), "--method", "phash", "--workers", "2", "--out", str(tmp_path / "run")],
            env=fresh_environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        stop(busy)
    check_run(result, tmp_path / "run", truth)
    assert result.stderr.count("Starting temporary server") == 1  # the run's one API; the workers use it


def test_run_on_a_dask_scheduler_and_two_workers_from_a_fresh_prefect_home(photos, tmp_path):
    """`dask scheduler` + two `dask worker` processes, no Prefect server: the README's scale-out path."""
    folder, truth = photos
    env = fresh_environment(tmp_path)
    cluster = Cluster(tmp_path)
    cluster.env = dict(env, PYTHONPATH=cluster.env["PYTHONPATH"])
    try:
        for name in ("w-1", "w-2"):
            cluster.add_worker(name, "CPU=1")
        with Client(cluster.address) as client:
            client.wait_for_workers(2, timeout=120)
        result = subprocess.run(
            [
                IMGDEDUP,
                "run",
                str(folder),
                "--method",
                "phash",
                "--address",
                cluster.address,
                "--out",
                str(tmp_path / "run"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        cluster.stop()
    check_run(result, tmp_path / "run", truth)
    assert result.stderr.count("Starting temporary server") == 1
    for name in ("w-1", "w-2"):  # the workers used the run's API, never started their own
        assert "temporary server" not in (tmp_path / f"{name}.log").read_text()


def test_unreachable_api_is_a_clear_error(photos, tmp_path):
    folder, _ = photos
    url = f"http://127.0.0.1:{free_port()}/api"
    result = subprocess.run(
        [IMGDEDUP, "run", str(folder), "--method", "phash", "--out", str(tmp_path / "run")],
        env=dict(fresh_environment(tmp_path), PREFECT_API_URL=url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: cannot reach the Prefect API at {url} (PREFECT_API_URL): "), result.stderr
    assert "prefect server start" in result.stderr and "Traceback" not in result.stderr


def our_tracebacks(log: str) -> list[str]:
    """Tracebacks in ``log`` other than distributed's own shutdown noise.

    On a loaded machine a Dask worker closing while the scheduler still sends to it makes
    distributed log a CommClosedError traceback from its background sender; the run is fine.
    """
    blocks = log.split("Traceback (most recent call last):")[1:]
    return [b for b in blocks if "distributed/batched.py" not in b and "CommClosedError" not in b]
