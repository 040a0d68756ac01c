"""Chunk tasks of an in-process run (``find``) on a pool of worker processes, one per core.

Decoding, hashing and embedding hold the GIL for much of their time (Pillow's
decoders, the per-image Python around them), so ``find`` spreads chunks over
processes, as imagededup does with ``num_enc_workers`` and the flow does with
Dask workers. Each chunk task writes its own rows of the store and its own
commit file, so the result does not depend on which process ran which chunk,
nor in which order: it equals the serial run's, byte for byte.

Workers are started with ``spawn``: a fresh interpreter does not inherit the
parent's threads (ONNX Runtime's pools, the store lock's) nor a stale copy of
its environment, at the cost of about a second of imports per worker, paid
once per run: :class:`WorkerPool` keeps one pool for every stage of a run (hash
chunks, search tiles, verification jobs), where a pool per stage, and one per
wave of verification jobs, started its workers again each time.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait

#: Smallest chunk ``find`` gives its own worker: below this a process start costs more than it saves.
FIND_MIN_SPLIT = 64
#: Seconds between a worker's looks at whether the process that started it is still there.
PARENT_CHECK_SECONDS = 1.0


def exit_with_parent(parent: int, every: float = PARENT_CHECK_SECONDS) -> None:
    """Pool initializer: end this worker when process ``parent`` is gone.

    A ``find`` killed outright (SIGKILL, the kernel's out-of-memory killer) cannot stop its
    pool, and its idle workers, waiting on a queue nobody writes to any more, stayed for good.
    A daemon thread looks every ``every`` seconds; once this process has been re-parented it
    exits at once (no clean-up is owed: the run's chunk files are written atomically).
    """
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def find_workers(setting: int | None) -> int:
    """Worker processes of a ``find`` run: ``setting``, or one per available core when None."""
    if setting is None:
        return available_cores()
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"`find_workers` must be a positive int or None, got {setting!r}")
    return setting


def threads_per_worker(workers: int) -> int:
    """Threads each of ``workers`` processes may use (ONNX Runtime, decoding) without oversubscribing."""
    return max(1, available_cores() // max(1, workers))


def _process_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )


class WorkerPool:
    """The worker processes of one run, started when first needed and kept for all its stages.

    ``with WorkerPool(workers) as pool:`` then ``map_chunks(..., pool=pool)``;
    the processes start as work is handed to them (at most ``workers``) and end
    when the ``with`` block does.
    """

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"`workers` must be a positive int, got {workers!r}")
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = _process_pool(self.workers)
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def map_chunks(
    function: Callable[..., object],
    chunk_paths: Sequence[object],
    args: tuple,
    workers: int,
    done: Callable[[int], None] | None = None,
    pool: WorkerPool | None = None,
) -> list[object]:
    """``[function(path, *args) for path in chunk_paths]``, on up to ``workers`` processes.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled by reference), e.g.
        :func:`imgdedup.pipeline.chunks.process_chunk`.
    chunk_paths : sequence
        One chunk's work file each (or any picklable items: tile numbers).
    args : tuple
        Further arguments, the same for every chunk (picklable).
    workers : int
        Most processes at once; with 1, or a single chunk, every call runs in
        this process.
    done : callable, optional
        Called as ``done(k)`` as soon as item ``k`` (its position in ``chunk_paths``) is finished.
    pool : WorkerPool, optional
        The run's worker processes; without one, a pool is started for this call and ended after it.

    Returns
    -------
    list
        The results, in the order of ``chunk_paths``. The first failure is raised
        once the chunks already running have finished.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be a positive int, got {workers!r}")
    total = len(chunk_paths)
    if workers == 1 or total <= 1:
        results = []
        for k, path in enumerate(chunk_paths):
            results.append(function(path, *args))
            if done:
                done(k)
        return results
    if pool is not None:
        return _map_on(pool.executor(), function, chunk_paths, args, done)
    with _process_pool(min(workers, total)) as own:
        return _map_on(own, function, chunk_paths, args, done)


def _map_on(executor: Executor, function, chunk_paths, args, done) -> list[object]:
    results: list[object] = [None] * len(chunk_paths)
    pending = {executor.submit(function, path, *args): k for k, path in enumerate(chunk_paths)}
    try:
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                k = pending.pop(future)
                results[k] = future.result()
                if done:
                    done(k)
    except BaseException:
        for future in pending:
            future.cancel()
        wait(pending)  # the chunks already running finish (their files are whole) before the error
        raise
    return results
