"""The flow on a real Dask cluster started as separate processes: placement by worker resources,
results independent of the workers, and a worker killed mid-run."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from distributed import Client

from imgdedup.config import load_config
from imgdedup.flows.dedup import dedup_flow
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
from imgdedup.sample import make_sample_folder
from tests.dask_plugins import PlacementRecorder
from tests.processes import free_port, stop

REPO = Path(__file__).resolve().parent.parent


def dask_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("dask")), *args]


class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, stopped by PID."""

    def __init__(self, tmp_path: Path):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.tmp_path = tmp_path
        self.env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        self.processes: dict[str, subprocess.Popen] = {}
        port = self.address.rsplit(":", 1)[1]
        self.start("scheduler", dask_command("scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"))

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "w")
        process = subprocess.Popen(
            command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def add_worker(self, name: str, resources: str) -> subprocess.Popen:
        return self.start(
            name,
            dask_command(
                "worker",
                self.address,
                "--name",
                name,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-nanny",
                "--resources",
                resources,
                "--no-dashboard",
                "--local-directory",
                str(self.tmp_path / f"{name}-space"),
            ),
        )

    def stop(self) -> None:
        stop(list(self.processes.values()))


@pytest.fixture
def cluster(tmp_path):
    running = Cluster(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster") / "library"
    make_sample_folder(folder, n_with_copies=4, n_distinct=12, seed=21)
    return folder


def placements(client: Client) -> list[tuple[str, str]]:
    return client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins[PlacementRecorder.name].records))


@pytest.mark.usefixtures("prefect_harness")
def test_hybrid_run_places_embedding_on_the_gpu_worker(cluster, library, tmp_path):
    """2 CPU workers + 1 worker with GPU=1: hash tasks only on CPU workers, embed tasks only on the GPU one;
    the clusters equal an in-process run's."""
    cluster.add_worker("cpu-1", "CPU=1")
    cluster.add_worker("cpu-2", "CPU=1")
    cluster.add_worker("gpu-1", "GPU=1")
    with Client(cluster.address) as client:
        client.wait_for_workers(3, timeout=60)
        client.register_plugin(PlacementRecorder())
        dedup_flow(
            path=str(library),
            method="hybrid",
            address=cluster.address,
            chunk_size=6,
            store=str(tmp_path / "store"),
            out=str(tmp_path / "run"),
        )
        names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
        records = [(key, names.get(worker, worker)) for key, worker in placements(client)]
    hashed = [w for key, w in records if key.startswith("hash_chunk")]
    embedded = [w for key, w in records if key.startswith("embed_chunk")]
    assert len(hashed) == len(embedded) == 6  # 36 images in chunks of 6
    assert set(hashed) <= {"cpu-1", "cpu-2"}
    assert set(embedded) == {"gpu-1"}
    find_duplicates_in_folder(
        library, load_config(method="hybrid", store=str(tmp_path / "local-store")), tmp_path / "local"
    )
    assert (tmp_path / "run" / "duplicates.json").read_text() == (tmp_path / "local" / "duplicates.json").read_text()


@pytest.mark.usefixtures("prefect_harness")
def test_killed_worker_gives_the_same_result(cluster, library, tmp_path):
    """One of three workers is killed (SIGKILL, by PID) once hashing has started: the run completes with
    the results of an undisturbed run."""
    for name in ("w-1", "w-2"):
        cluster.add_worker(name, "CPU=1")
    victim = cluster.add_worker("victim", "CPU=1")
    store = tmp_path / "store"
    with Client(cluster.address) as client:
        client.wait_for_workers(3, timeout=60)

        def kill_when_hashing_starts():
            deadline = time.time() + 120
            while time.time() < deadline and not list((store / "pending").glob("*.npz")):
                time.sleep(0.02)
            victim.send_signal(signal.SIGKILL)

        killer = threading.Thread(target=kill_when_hashing_starts, daemon=True)
        killer.start()
        summary = dedup_flow(
            path=str(library), address=cluster.address, chunk_size=2, store=str(store), out=str(tmp_path / "run")
        )
        killer.join(timeout=5)
    assert victim.poll() is not None, "the worker was not killed during the run"
    assert summary.unreadable == 0
    find_duplicates_in_folder(library, load_config(store=str(tmp_path / "local-store")), tmp_path / "local")
    assert (tmp_path / "run" / "duplicates.json").read_text() == (tmp_path / "local" / "duplicates.json").read_text()
    assert (
        json.loads((tmp_path / "run" / "clusters.json").read_text())["clusters"]
        == json.loads((tmp_path / "local" / "clusters.json").read_text())["clusters"]
    )
