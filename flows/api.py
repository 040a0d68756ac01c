"""The Prefect API of one ``imgdedup run``: the server named by ``PREFECT_API_URL``, or a temporary one.

Without ``PREFECT_API_URL`` Prefect starts a temporary API inside whichever
process first needs one, with a 20 s start-up timeout. Every Dask worker
process then starts its own: on a busy machine, or on a fresh ``PREFECT_HOME``
where the API first creates its database, they time out. So ``run`` starts one
temporary API before the flow, waits for it as long as a busy machine needs,
and runs the flow with ``PREFECT_API_URL`` set to it: the flow's settings travel
with every task to the Dask workers (prefect-dask serializes the settings
context), and worker processes of a LocalCluster inherit the environment.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from imgdedup.errors import APIError

#: Seconds the temporary API may take to answer: creating its database on a busy 2-core machine took
#: over Prefect's default 20 s. PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS raises it further.
STARTUP_TIMEOUT = 180


def check_api(url: str) -> None:
    """Raise :class:`APIError` with what to do unless the Prefect API at ``url`` answers its health check."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise APIError(
            f"cannot reach the Prefect API at {url} (PREFECT_API_URL): {problem}; start that server "
            "(`prefect server start`) or unset PREFECT_API_URL to let `imgdedup run` start a temporary one"
        )


@contextmanager
def prefect_api() -> Iterator[str]:
    """Make one Prefect API available for the block; yield its URL.

    ``PREFECT_API_URL`` when set (checked first), else a temporary API started
    here and stopped on exit. Raises :class:`APIError` when the API cannot be
    reached or does not start, or is lost during the block.
    """
    import httpx
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    url = PREFECT_API_URL.value()
    if url:
        check_api(url)
        with _lost_api_is_an_error(url, httpx):
            yield url
        return

    from prefect.server.api.server import SubprocessASGIServer

    timeout = max(STARTUP_TIMEOUT, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    server = SubprocessASGIServer()  # Prefect's default instance: anything in this process needing one finds it
    try:
        # A throwaway API sends no telemetry (its heartbeat also races the new database: "database is locked").
        with temporary_settings(updates={PREFECT_SERVER_ANALYTICS_ENABLED: False}):
            server.start(timeout=timeout)
    except Exception as exc:  # Prefect raises RuntimeError on a timeout, httpx errors on a bad answer
        server.stop()
        raise APIError(
            f"the temporary Prefect API did not start within {timeout} s ({str(exc)[:300]}); start a server "
            "(`prefect server start`), set PREFECT_API_URL=http://127.0.0.1:4200/api and run again"
        ) from None
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by a LocalCluster's worker processes
    try:
        with (
            temporary_settings(updates={PREFECT_API_URL: server.api_url}),
            _lost_api_is_an_error(server.api_url, httpx),
        ):
            yield server.api_url
            _send_queued_logs_and_events()
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        server.stop()


@contextmanager
def _lost_api_is_an_error(url: str, httpx) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        raise APIError(f"lost the Prefect API at {url} during the run: {exc}; run again once it answers") from None


def _send_queued_logs_and_events() -> None:
    """Deliver the logs and events still queued, before the temporary API goes away."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.instance().drain()
    except RuntimeError:
        pass  # never started
    EventsWorker.drain_all()
