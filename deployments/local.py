"""Commands to deploy the dedup flow to a Prefect server from this checkout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK_POOL = "imgdedup-process"
DEPLOYMENTS = ("dedup/adhoc", "dedup/nightly-incremental")


def prefect_command(*args: str) -> list[str]:
    """The ``prefect`` CLI of this Python environment (not whichever is first on PATH)."""
    executable = Path(sys.executable).with_name("prefect")
    return [str(executable) if executable.exists() else "prefect", *args]


def ensure_work_pool(env: dict[str, str] | None = None) -> None:
    """Create the process work pool unless it exists."""
    inspect = subprocess.run(
        prefect_command("work-pool", "inspect", WORK_POOL), env=env, capture_output=True, text=True
    )
    if inspect.returncode != 0:
        subprocess.run(
            prefect_command("work-pool", "create", WORK_POOL, "--type", "process"),
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )


def deploy_all(env: dict[str, str] | None = None) -> str:
    """Create or update every deployment of prefect.yaml; returns Prefect's output."""
    ensure_work_pool(env)
    # {{ $PWD }} in prefect.yaml's pull step must name this checkout.
    run_env = dict(env or os.environ, PWD=str(REPO))
    result = subprocess.run(
        prefect_command("--no-prompt", "deploy", "--all"),
        cwd=REPO,
        env=run_env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def worker_command() -> list[str]:
    return prefect_command("worker", "start", "--pool", WORK_POOL)


def stop_worker(process: subprocess.Popen, timeout: float = 60) -> int:
    """Stop a worker started with :func:`worker_command`; return its exit status.

    A ``prefect worker`` stops on SIGINT (Ctrl-C), finishing its shutdown; it
    ignores SIGTERM, so ``kill PID`` leaves it running. It gets the SIGINT once
    its flow-run processes have ended (waiting up to half of ``timeout``). Now
    and then (5 of 16 test runs on a 2-core machine, Prefect 3) its shutdown
    still hangs after one SIGINT, with no flow-run process left: half a ``timeout`` later it gets a
    second, as a user presses Ctrl-C again (Prefect then kills it: status
    ``-SIGKILL``); after the whole ``timeout`` it is killed. Never left running.
    """
    import psutil  # a dependency of dask.distributed

    deadline = time.monotonic() + timeout / 2
    try:
        while psutil.Process(process.pid).children() and time.monotonic() < deadline:
            time.sleep(0.2)
    except psutil.NoSuchProcess:
        pass
    for _ in range(2):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=timeout / 2)
        except subprocess.TimeoutExpired:
            pass
    process.kill()
    return process.wait()
