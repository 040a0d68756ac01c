"""Where chunk tasks may run on a Dask cluster, from the resources its workers declare.

Workers declare resources when started: ``dask worker ADDRESS --resources "CPU=2"`` for a CPU
worker, ``--resources "GPU=1"`` for a GPU worker. Dask places an annotated task only on a worker
holding that resource, while an unannotated task may land anywhere, GPU workers included; so
decoding and hashing ask for ``CPU`` whenever some worker declares it, and embedding asks for
``GPU`` when a GPU worker exists and for ``CPU`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Placement:
    """Dask resource requests for the two kinds of chunk task (``None``: anywhere)."""

    hash: dict[str, float] | None
    embed: dict[str, float] | None


def place_tasks(worker_resources: Iterable[Mapping[str, float]]) -> Placement:
    """Resource requests for hash and embed tasks, given every worker's declared resources."""
    declared = [dict(r or {}) for r in worker_resources]
    has_cpu = any(r.get("CPU", 0) > 0 for r in declared)
    has_gpu = any(r.get("GPU", 0) > 0 for r in declared)
    cpu = {"CPU": 1} if has_cpu else None
    return Placement(hash=cpu, embed={"GPU": 1} if has_gpu else cpu)


def scheduler_worker_resources(scheduler_info: Mapping) -> list[dict[str, float]]:
    """The ``resources`` of every worker in a ``Client.scheduler_info()`` answer."""
    return [dict(w.get("resources") or {}) for w in scheduler_info.get("workers", {}).values()]
