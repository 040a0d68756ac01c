"""End to end: a real `prefect server start` on 127.0.0.1, the deployments of prefect.yaml, a process
worker, a flow run created through the REST API as the UI does, and one through `prefect deployment run`."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from imgdedup.config import load_config
from imgdedup.deployments.local import deploy_all, prefect_command, stop_worker, worker_command
from tests.conftest import found_pairs, known_pairs
from tests.processes import free_port, stop


def api(url: str, body: dict | None = None, method: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method or ("POST" if body is not None else "GET"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture
def prefect_server(tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_TO_API_ENABLED="true",
        IMGDEDUP_HOME=str(tmp_path / "imgdedup-home"),
    )
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        prefect_command("server", "start", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                if api(f"{env['PREFECT_API_URL']}/health") is True:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(f"prefect server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield env
    finally:
        stop([server])
        log.close()


def left_in_session(session: int) -> list[int]:
    """Processes still running in the session ``session`` (a process started with start_new_session)."""
    import psutil

    left = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                left.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return left


def wait_for_state(api_url: str, flow_run_id: str, timeout: float = 240) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = api(f"{api_url}/flow_runs/{flow_run_id}")
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(1)
    raise TimeoutError(f"flow run {flow_run_id} did not finish in {timeout} s")


def test_deployments_run_from_the_api_and_the_cli(prefect_server, sample_folder, tmp_path):
    env = prefect_server
    api_url = env["PREFECT_API_URL"]
    folder, truth = sample_folder
    deploy_all(dict(env, IMGDEDUP_LIBRARY=str(folder)))

    nightly = api(f"{api_url}/deployments/name/dedup/nightly-incremental")
    assert nightly["parameters"] == {"path": str(folder), "method": "hybrid"}
    assert [s["active"] for s in nightly["schedules"]] == [False]  # paused until resumed
    adhoc = api(f"{api_url}/deployments/name/dedup/adhoc")
    assert adhoc["parameter_openapi_schema"]["properties"]["threshold"]["anyOf"][0] == {
        "maximum": 64,
        "minimum": 0,
        "type": "integer",
    }

    # The server rejects parameters that break the schema, as the UI's form would.
    with pytest.raises(urllib.error.HTTPError) as rejected:
        api(
            f"{api_url}/deployments/{adhoc['id']}/create_flow_run",
            {"parameters": {"path": str(folder), "threshold": 99}},
        )
    assert rejected.value.code in (409, 422)

    worker_log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        worker_command(), env=env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        # 1. as the UI does: POST /deployments/{id}/create_flow_run
        ui_out = tmp_path / "from-ui"
        ui_run = api(
            f"{api_url}/deployments/{adhoc['id']}/create_flow_run",
            {
                "parameters": {
                    "path": str(folder),
                    "out": str(ui_out),
                    "store": str(tmp_path / "ui-store"),
                    "n_workers": 1,
                },
            },
        )
        # 2. from the CLI, with another threshold
        cli_out = tmp_path / "from-cli"
        result = subprocess.run(
            prefect_command(
                "deployment",
                "run",
                "dedup/adhoc",
                "--param",
                f"path={folder}",
                "--param",
                "threshold=8",
                "--param",
                f"out={cli_out}",
                "--param",
                f"store={tmp_path / 'cli-store'}",
                "--param",
                "n_workers=1",
            ),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        cli_run_id = next(line.split("UUID:")[1].strip() for line in result.stdout.splitlines() if "UUID:" in line)
        for run_id in (ui_run["id"], cli_run_id):
            finished = wait_for_state(api_url, run_id)
            assert finished["state"]["type"] == "COMPLETED", (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        # SIGINT, as Ctrl-C: a prefect worker ignores SIGTERM (stop() would end it with SIGKILL after 20 s)
        stop_worker(worker, timeout=60)
        worker_log.close()
    # the worker and every process it started are gone (the worker runs in a session of its own)
    assert worker.poll() is not None
    assert not left_in_session(worker.pid)

    for out in (ui_out, cli_out):
        duplicates = json.loads((out / "duplicates.json").read_text())
        assert found_pairs(duplicates) == known_pairs(truth)
    assert json.loads((cli_out / "clusters.json").read_text())["threshold"] == 8
    # named after the effective settings: the config's method and similarity, the threshold given or the default
    default = load_config()
    similarity = f"s{default.min_similarity}"
    assert (
        api(f"{api_url}/flow_runs/{cli_run_id}")["name"]
        == f"dedup-{Path(folder).name}-{default.method}-t8-{similarity}"
    )
    assert (
        api(f"{api_url}/flow_runs/{ui_run['id']}")["name"]
        == f"dedup-{Path(folder).name}-{default.method}-t{default.threshold}-{similarity}"
    )
    # each deployment keeps its own artifact history, one version per run
    artifacts = api(f"{api_url}/artifacts/filter", {"artifacts": {"key": {"any_": ["dedup-summary-adhoc"]}}})
    assert {a["flow_run_id"] for a in artifacts} == {ui_run["id"], cli_run_id}
    assert all("report.html" in a["data"] for a in artifacts)
