"""Scaling (issue #8): hashing throughput per Dask worker, per-task orchestration overhead, chunk size, paper plan.

Run from the repository root (about 10 minutes on 2 cores)::

    python benchmarks/bench_scaling.py --images 1100

Data: ``benchmarks.transforms.make_transformed_copies(size=(1632, 1224),
transforms=SIZE_PRESERVING)``: originals of about 2 megapixels and their 10
size-preserving copies (1100 JPEGs for ``--images 1100``), generated once into
``--workdir`` (default ``$TMPDIR/imgdedup-bench-scaling-N``) and reused. Every
measurement uses a fresh store; the page cache is warm.

1. Throughput: ``imgdedup.pipeline.chunks.preprocess`` plans chunks of ``--chunk-size``
   (50) files, then ``imgdedup.pipeline.chunks.hash_chunk`` (phash) runs on every chunk
   in a ``distributed.LocalCluster(n_workers=k, threads_per_worker=1,
   processes=True)`` for k = 1, 2, 4 (cluster started and warmed before the
   clock). images/s is wall clock; CPU ms/image is the workers' own CPU time
   (a figure that stays meaningful when other work shares the machine).
2. Per-task overhead, on the first ``--small`` (200) files, chunk size 2 (100
   tasks) against 100 (2 tasks), the same images either way, so the difference
   is what the extra tasks cost: in-process (``hash_chunk`` called in a loop:
   the pipeline's own per-chunk cost: store open, Zarr write, manifest fsync),
   plain Dask (``client.map``), and the Prefect flow (``flows.dedup.dedup_flow``
   with ``chunk_size`` 2 and 100, DaskTaskRunner, inside
   ``prefect_test_harness``). Overhead per task in worker-seconds = added wall
   seconds per task x workers. Also Dask no-op tasks (1000).
3. Chunk size: smallest chunk whose overhead is < 2 % of its work (phash, the
   cheapest work per image), largest that keeps a lost chunk under
   ``--max-lost-s`` of hybrid work (hash + embed) and the tail imbalance bounded.
4. Paper plan for 10M and 100M images: per-item costs measured here (hash,
   embed with ``load_embedder('efficientnet_lite0', threads=1)`` on ``--embed``
   (200) files, ``hamming_pairs`` on 1M random hashes at radius 10,
   ``cosine_pairs`` on 20k x 1280 unit vectors, ``cluster_pairs`` / networkx
   connected components on 1M images with 1M synthetic pairs, the manifest of
   1M files) extrapolated to N; GPU rates are assumptions (flags), not
   measurements (there is no GPU here). Each row says what is measured and
   what is extrapolated.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="imgdedup-bench-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["IMGDEDUP_HOME"] = tempfile.mkdtemp(prefix="imgdedup-bench-home-")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HAMMING_10M_S = 438.6  # benchmarks/bench_search.py, imgdedup at 10M hashes, radius 10, 2 cores (published figure)
EMBED_DIM = 1280


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- data -----------------------------------------------------------------------


def make_folder(workdir: Path, n_images: int, n_small: int) -> tuple[Path, Path]:
    from benchmarks.transforms import SIZE_PRESERVING, make_transformed_copies

    source = workdir / "source"
    per_original = 1 + len(SIZE_PRESERVING)
    if not (source / "ground_truth.json").exists():
        n_originals = math.ceil(n_images / per_original)
        print(f"generating {n_originals * per_original} JPEGs of 1632 x 1224 in {source} ...", flush=True)
        started = time.perf_counter()
        make_transformed_copies(
            source, n_originals=n_originals, size=(1632, 1224), transforms=SIZE_PRESERVING, overwrite=True
        )
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    files = sorted(p for p in source.rglob("*.jpg"))
    if len(files) < n_images:
        raise SystemExit(f"{source} has {len(files)} JPEGs, need {n_images}: remove it or use another --workdir")
    folders = []
    for name, count in (("library", n_images), ("small", n_small)):
        folder = workdir / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        for path in files[:count]:
            os.link(path, folder / path.name)
            (folder / path.name).read_bytes()  # warm the page cache
        folders.append(folder)
    return folders[0], folders[1]


# --- helpers ----------------------------------------------------------------------


def plan(folder: Path, scratch: Path, name: str, chunk_size: int, method: str = "phash"):
    """A fresh store and out folder, planned by the pipeline's preprocess: (config, chunk paths)."""
    from imgdedup.config import load_config
    from imgdedup.pipeline.chunks import preprocess
    from imgdedup.pipeline.plan import read_plan
    from imgdedup.pipeline.run import open_store, prepare_out_dir

    config = load_config(method=method, store=str(scratch / f"store-{name}"), chunk_size=chunk_size)
    out = prepare_out_dir(scratch / f"out-{name}")
    store = open_store(folder, config)
    with store.lock():
        plan_path = preprocess(folder, out, config, store)
    return config, read_plan(plan_path).chunk_paths


def start_cluster(k: int):
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    cluster = LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    client.run(_warm)
    return cluster, client


def _warm() -> None:
    import imgdedup.imaging.hash_chunk
    import imgdedup.pipeline.chunks  # noqa: F401


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across fork + exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _noop(x):
    return x


def dask_hash(client, config, chunk_paths) -> tuple[float, float]:
    """Wall seconds and worker CPU seconds to hash every chunk on the cluster."""
    from imgdedup.pipeline.chunks import hash_chunk

    cpu0 = sum(client.run(_cpu_seconds).values())
    started = time.perf_counter()
    client.gather(client.map(hash_chunk, chunk_paths, config=config, pure=False))
    wall = time.perf_counter() - started
    return wall, sum(client.run(_cpu_seconds).values()) - cpu0


def serial_hash(config, chunk_paths) -> float:
    from imgdedup.pipeline.chunks import hash_chunk

    started = time.perf_counter()
    for path in chunk_paths:
        hash_chunk(path, config)
    return time.perf_counter() - started


def in_subprocess(code: str) -> dict:
    """Run ``code`` (which fills the dict ``result``) in a fresh interpreter; add its peak RSS in MB."""
    program = "\n".join(
        [
            "import json, resource, sys, time",
            f"sys.path.insert(0, {str(ROOT)!r})",
            "result = {}",
            textwrap.dedent(code),
            "result['peak_rss_mb'] = [int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]",
            "print('RESULT ' + json.dumps(result))",
        ]
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"subprocess failed:\n{done.stdout}\n{done.stderr}")


# --- 1. throughput ------------------------------------------------------------------


def bench_throughput(library: Path, scratch: Path, chunk_size: int, n: int) -> dict[int, dict]:
    print(f"\n## 1. phash throughput, {n} JPEGs of ~2 MP, chunk size {chunk_size}, fresh store each (load {load()})")
    config, chunks = plan(library, scratch, "serial", chunk_size)
    cpu0 = _cpu_seconds()
    serial = serial_hash(config, chunks)
    results: dict[int, dict] = {0: {"wall": serial, "cpu": _cpu_seconds() - cpu0, "rss": None}}
    for k in (1, 2, 4):
        cluster, client = start_cluster(k)
        try:
            config, chunks = plan(library, scratch, f"k{k}", chunk_size)
            wall, cpu = dask_hash(client, config, chunks)
            rss = max(client.run(_rss_mb).values())
        finally:
            client.close()
            cluster.close()
        results[k] = {"wall": wall, "cpu": cpu, "rss": rss}
    print(
        "| workers | seconds | images/s | speed-up vs 1 | worker CPU ms/image | peak worker RSS MB | load (1/5/15 min) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    base = results[1]["wall"]
    for k, r in results.items():
        label = "in-process (no Dask)" if k == 0 else str(k)
        rss = "" if r["rss"] is None else f"{r['rss']:.0f}"
        print(
            f"| {label} | {r['wall']:.1f} | {n / r['wall']:.1f} | {base / r['wall']:.2f} | {1000 * r['cpu'] / n:.1f} | {rss} | {load()} |"
        )
    print(f"(the machine has {os.cpu_count()} cores: 4 workers cannot beat 2)")
    return results


# --- 2. overhead ------------------------------------------------------------------


def bench_overhead(small: Path, scratch: Path, n_small: int, tiny: int, large: int) -> dict:
    print(f"\n## 2. per-task overhead: {n_small} JPEGs, chunk size {tiny} vs {large} (load {load()})")
    rows = []
    n_tiny, n_large = math.ceil(n_small / tiny), math.ceil(n_small / large)

    config, chunks = plan(small, scratch, "ser-large", large)
    t_large = serial_hash(config, chunks)
    config, chunks = plan(small, scratch, "ser-tiny", tiny)
    t_tiny = serial_hash(config, chunks)
    rows.append(("in-process loop (pipeline's own per-chunk cost)", 1, t_tiny, t_large))

    for k in (1, 2):
        cluster, client = start_cluster(k)
        try:
            config, chunks = plan(small, scratch, f"dask{k}-large", large)
            d_large, _ = dask_hash(client, config, chunks)
            config, chunks = plan(small, scratch, f"dask{k}-tiny", tiny)
            d_tiny, _ = dask_hash(client, config, chunks)
            started = time.perf_counter()
            client.gather(client.map(_noop, range(1000), pure=False))
            noop = (time.perf_counter() - started) / 1000
        finally:
            client.close()
            cluster.close()
        rows.append(("Dask client.map of hash_chunk", k, d_tiny, d_large))
        rows.append(("Dask no-op tasks (1000), s/task x workers", k, None, noop))

    from prefect.testing.utilities import prefect_test_harness

    from imgdedup.flows.dedup import dedup_flow

    def flow(chunk_size: int, k: int, name: str) -> float:
        import logging

        logging.getLogger("distributed").setLevel(logging.WARNING)
        started = time.perf_counter()
        dedup_flow(
            path=str(small),
            method="phash",
            store=str(scratch / f"store-{name}"),
            out=str(scratch / f"out-{name}"),
            chunk_size=chunk_size,
            n_workers=k,
        )
        return time.perf_counter() - started

    with prefect_test_harness(server_startup_timeout=60):
        flow(large, 1, "flow-warm")
        for k in (1, 2):
            f_large = flow(large, k, f"flow{k}-large")
            f_tiny = flow(tiny, k, f"flow{k}-tiny")
            rows.append(("Prefect flow (DaskTaskRunner), whole flow", k, f_tiny, f_large))

    print(
        f"| path | workers | s, {n_tiny} tasks | s, {n_large} tasks | added wall s/task | overhead per task, worker-s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    overhead = {}
    for name, k, tiny_s, large_s in rows:
        if tiny_s is None:
            print(f"| {name} | {k} | | | {large_s * 1000:.2f} ms | {large_s * k * 1000:.2f} ms |")
            overhead[(name, k)] = large_s * k
            continue
        added = (tiny_s - large_s) / (n_tiny - n_large)
        overhead[(name, k)] = added * k
        print(f"| {name} | {k} | {tiny_s:.1f} | {large_s:.1f} | {added * 1000:.1f} ms | {added * k * 1000:.1f} ms |")
    print(f"load after: {load()}")
    return {
        "in_process": overhead[rows[0][0], 1],
        "dask": max(v for (name, _), v in overhead.items() if name.startswith("Dask client.map")),
        "prefect": max(v for (name, _), v in overhead.items() if name.startswith("Prefect")),
        "prefect_1": overhead["Prefect flow (DaskTaskRunner), whole flow", 1],
    }


# --- 3. per-item costs for the plan -------------------------------------------------


def bench_embed(library: Path, n: int) -> dict:
    """Seconds per image of the default embedder on one thread, in a fresh process (its memory is a worker's)."""
    files = [str(p) for p in sorted(library.iterdir())[:n]]
    return in_subprocess(f"""
        from imgdedup.embedding.embedder import load_embedder
        datas = [open(p, "rb").read() for p in {files!r}]
        n = len(datas)
        embedder = load_embedder("efficientnet_lite0", threads=1)
        embedder.embed_bytes(datas[:8])  # warm-up: session, first-call allocations
        t = time.perf_counter(); embedder.embed_bytes(datas); result["total"] = (time.perf_counter() - t) / n
        # the same work in its two halves: decode + resize (CPU in any deployment) and the network
        t = time.perf_counter(); batches = [embedder._prepare(datas[i:i + 32], load=True) for i in range(0, n, 32)]
        result["decode"] = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for batch in batches:
            embedder.embed_arrays(batch)
        result["infer"] = (time.perf_counter() - t) / n
        result["runtime"] = embedder.runtime
    """)


def bench_search_and_cluster() -> dict:
    hamming = in_subprocess("""
        import numpy as np
        from imgdedup.search.hamming import hamming_pairs
        h = np.random.default_rng(0).integers(0, 2**64, size=1_000_000, dtype=np.uint64)
        t = time.perf_counter(); i, j, d = hamming_pairs(h, 10); result["seconds"] = time.perf_counter() - t
        result["pairs"] = int(len(i))
    """)
    cosine = in_subprocess("""
        import numpy as np
        from imgdedup.search.cosine import cosine_pairs
        x = np.random.default_rng(0).standard_normal((20_000, 1280)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        t = time.perf_counter(); i, j, s = cosine_pairs(x, 0.9); result["seconds"] = time.perf_counter() - t
        result["pairs"] = int(len(i))
    """)
    cluster = in_subprocess("""
        import numpy as np, networkx as nx
        n, group = 1_000_000, 10
        rng = np.random.default_rng(0)
        # 1M images in clusters of 10, 10 random pairs inside each cluster: 1M pairs
        g = np.repeat(np.arange(n // group), group) * group
        i = g + rng.integers(0, group, n); j = g + rng.integers(0, group, n)
        keep = i != j; i, j = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
        t = time.perf_counter()
        graph = nx.Graph(); graph.add_edges_from(zip(i.tolist(), j.tolist()))
        components = sum(1 for _ in nx.connected_components(graph))
        result["networkx_s"] = time.perf_counter() - t
        result["pairs"] = int(len(i)); result["components"] = components
        del graph
        from imgdedup.search.cluster import cluster_pairs
        hashes = rng.integers(0, 2**63, n, dtype=np.uint64); rank = rng.permutation(n)
        t = time.perf_counter(); clusters = cluster_pairs(n, i, j, hashes, rank); result["cluster_pairs_s"] = time.perf_counter() - t
    """)
    folder = tempfile.mkdtemp(prefix="imgdedup-bench-manifest-")
    saved = in_subprocess(f"""
        import numpy as np, os
        from pathlib import Path
        from imgdedup.storage.store import Manifest
        n = 1_000_000
        ids = [f"photos/{{k // 100000:04d}}/{{k // 1000 % 100:02d}}/IMG_{{k:08d}}.jpg" for k in range(n)]
        m = Manifest(ids=ids, size=np.full(n, 500_000, np.int64), mtime_ns=np.arange(n, dtype=np.int64),
                     status=np.ones(n, np.uint8), reason=np.full(n, "", "U1"), row=np.arange(n, dtype=np.int64),
                     width=np.full(n, 1632, np.int32), height=np.full(n, 1224, np.int32), formats=np.full(n, "JPEG", "U4"),
                     digests=np.full(n, "0" * 32, "U32"), features={{"hash:phash": np.ones(n, bool), "embedding": np.ones(n, bool)}})
        path = Path({folder!r}) / "manifest.npz"
        t = time.perf_counter(); m.save(path); result["save_s"] = time.perf_counter() - t
        result["bytes_on_disk"] = os.path.getsize(path)
    """)
    manifest = in_subprocess(f"""
        from pathlib import Path
        from imgdedup.storage.store import Manifest
        t = time.perf_counter(); m = Manifest.load(Path({folder!r}) / "manifest.npz"); result["load_s"] = time.perf_counter() - t
    """)
    manifest.update(save_s=saved["save_s"], bytes_on_disk=saved["bytes_on_disk"])
    shutil.rmtree(folder)
    return {"hamming": hamming, "cosine": cosine, "cluster": cluster, "manifest": manifest}


# --- output ---------------------------------------------------------------------------


def human_s(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def human_b(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.0f} kB"


NICE_SIZES = (100, 200, 250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 10000)


def recommend_chunk(w_hash: float, w_embed: float, overhead: dict, max_lost_s: float, target: float = 0.02) -> int:
    worst = overhead["prefect"]
    c_min = worst / (target * w_hash)
    c_min_hybrid = 2 * worst / (target * (w_hash + w_embed))  # hybrid: two tasks per chunk (hash_chunk, embed_chunk)
    c_max = max_lost_s / (w_hash + w_embed)
    print("\n## 3. chunk size")
    print(
        f"- per-task overhead through Prefect + Dask: {overhead['prefect_1'] * 1000:.0f} ms with 1 worker, {worst * 1000:.0f} worker-ms with 2 "
        f"(added wall per task x 2; on 2 cores the flow, the API server and both workers share the cores, so the two cannot be told apart); "
        f"plain Dask: {overhead['dask'] * 1000:.1f} ms; the pipeline's own per-chunk cost (store open, Zarr write, fsync): {overhead['in_process'] * 1000:.1f} ms"
    )
    print(
        f"- work per image: phash {w_hash * 1000:.1f} ms/core (the cheapest: decode at reduced scale), hybrid {1000 * (w_hash + w_embed):.1f} ms/core"
    )
    print(
        f"- overhead < {target:.0%} of the work: chunk >= {worst * 1000:.0f} ms / ({target:.0%} x {w_hash * 1000:.1f} ms) = {c_min:.0f} images for phash, "
        f">= {c_min_hybrid:.0f} for hybrid (2 tasks per chunk)"
    )
    print(
        f"- a failed chunk loses <= {max_lost_s:.0f} s of one worker with hybrid: chunk <= {max_lost_s:.0f} s / {1000 * (w_hash + w_embed):.1f} ms = {c_max:.0f} images"
    )
    fitting = [c for c in NICE_SIZES if c_min <= c <= c_max]
    choice = fitting[0] if fitting else max([c for c in NICE_SIZES if c <= c_max] or [NICE_SIZES[0]])
    print(
        f"- balance: the last chunks leave workers idle for up to one chunk's time, ~ chunk x W / N of the run (W workers, N images): "
        f"chunk {choice} on W = 64 is {100 * choice * 64 / 1e6:.0f} % at 1M images, {100 * choice * 64 / 1e7:.1f} % at 10M; on W = 2, "
        f"{100 * choice * 2 / 1e4:.0f} % at 10k images. So no fixed size balances small libraries: cap it at ceil(N / (4 W)) "
        f"(4 chunks per worker) when that is smaller, i.e. pick chunk = max(ceil(N / (4 W)), 1) capped at the default"
    )
    verdict = "meets both bounds" if fitting else "cannot meet both bounds: the largest size within the failure bound"
    print(
        f"- recommendation: chunk_size = {choice} as the default ({verdict}; config.py has 1000, whose Prefect overhead is "
        f"{100 * worst / (1000 * w_hash):.1f} % of phash work and {100 * 2 * worst / (1000 * (w_hash + w_embed)):.1f} % of hybrid work); "
        f"at {choice}: {100 * worst / (choice * w_hash):.1f} % (phash), {100 * 2 * worst / (choice * (w_hash + w_embed)):.1f} % (hybrid); "
        f"a lost chunk costs {choice * w_hash:.0f} s (phash) / {choice * (w_hash + w_embed):.0f} s (hybrid) of one worker; "
        f"plus the cap at ceil(N / (4 W)) for small libraries"
    )
    return choice


def paper_plan(args, w_hash: float, embed: dict, other: dict, overhead: float, chunk: int, hash_rss: float) -> None:
    cores, gpus = args.cores, args.gpus
    h, c, cl, man = other["hamming"], other["cosine"], other["cluster"], other["manifest"]
    b = math.log10(HAMMING_10M_S / h["seconds"])  # time ~ N^b between 1M (measured) and 10M (published)
    cos_core_s = c["seconds"] * (os.cpu_count() or 1)  # BLAS used every core of this machine
    per_pair_flops = 2 * EMBED_DIM
    print(
        f"\n## 4. paper plan: {cores} CPU cores, {gpus} GPUs (per-item costs measured on this machine, {os.cpu_count()} cores; load {load()})"
    )
    print("Measured here:")
    print(
        f"- hash (phash, ~2 MP JPEG, decode included): {w_hash * 1000:.1f} ms/image/core (1 Dask worker); worker peak RSS {hash_rss:.0f} MB"
    )
    print(
        f"- embed (efficientnet_lite0, {embed['runtime']}, 1 thread, {args.embed} files): {embed['total'] * 1000:.1f} ms/image/core "
        f"= decode+resize {embed['decode'] * 1000:.1f} + network {embed['infer'] * 1000:.1f}; process peak RSS {embed['peak_rss_mb']:.0f} MB"
    )
    print(
        f"- hamming_pairs, 1M random hashes, radius 10: {h['seconds']:.1f} s, peak RSS {h['peak_rss_mb']:.0f} MB, {h['pairs']} pairs; "
        f"10M: {HAMMING_10M_S} s (bench_search.py, published) -> time grows as N^{b:.2f}"
    )
    print(
        f"- cosine_pairs, 20k x {EMBED_DIM} float32: {c['seconds']:.1f} s on {os.cpu_count()} cores ({cos_core_s:.0f} core-s, "
        f"{1e-9 * per_pair_flops * 20_000**2 / 2 / cos_core_s:.0f} GFLOP/s/core), peak RSS {c['peak_rss_mb']:.0f} MB"
    )
    print(
        f"- clustering 1M images, {cl['pairs']} pairs ({cl['components']} components): networkx build + connected_components "
        f"{cl['networkx_s']:.1f} s, imgdedup.search.cluster.cluster_pairs {cl['cluster_pairs_s']:.1f} s, peak RSS {cl['peak_rss_mb']:.0f} MB"
    )
    print(
        f"- manifest of 1M files: {human_b(man['bytes_on_disk'])} on disk, load {man['load_s']:.1f} s, save {man['save_s']:.1f} s, "
        f"peak RSS {man['peak_rss_mb']:.0f} MB"
    )
    print(
        f"Assumed (not measured, no GPU here): {args.gpu_embed_rate:.0f} images/s of network per GPU (EfficientNet-Lite0 224 px, fp16), "
        f"{args.gpu_tflops:.0f} TFLOP/s sustained fp16 matmul per GPU"
    )
    print()
    print(
        "| stage | resource | per-item cost (source) | 10M: work | 10M: wall | 10M: memory | 100M: work | 100M: wall | 100M: memory |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    rows = []

    def row(stage, resource_, cost, work, wall, memory):
        rows.append((stage, resource_, cost, work, wall, memory))

    def per_n(fn):
        return [fn(1e7), fn(1e8)]

    # hash
    tasks = lambda n: n / chunk
    row(
        "hash (decode + phash)",
        "CPU cores (+ read I/O)",
        f"{w_hash * 1000:.1f} ms/image/core (measured) + {overhead * 1000:.0f} ms/chunk of {chunk}",
        per_n(lambda n: f"{(n * w_hash + tasks(n) * overhead) / 3600:.0f} core-h"),
        per_n(lambda n: human_s((n * w_hash + tasks(n) * overhead) / cores)),
        per_n(lambda n: f"{hash_rss:.0f} MB/worker; store {human_b(8 * n)}"),
    )
    # embed on CPU
    row(
        "embed on CPU",
        "CPU cores",
        f"{embed['total'] * 1000:.1f} ms/image/core (measured)",
        per_n(lambda n: f"{n * embed['total'] / 3600:.0f} core-h"),
        per_n(lambda n: human_s(n * embed["total"] / cores)),
        per_n(lambda n: f"{embed['peak_rss_mb']:.0f} MB/worker; store {human_b(2 * EMBED_DIM * n)}"),
    )
    # embed on GPU: decode on CPU, network on GPU
    row(
        "embed on GPU",
        "GPUs + CPU cores to decode",
        f"decode {embed['decode'] * 1000:.1f} ms/core (measured) + 1/{args.gpu_embed_rate:.0f} s/GPU (assumed)",
        per_n(lambda n: f"{n * embed['decode'] / 3600:.0f} core-h + {n / args.gpu_embed_rate / 3600:.1f} GPU-h"),
        per_n(lambda n: human_s(max(n * embed["decode"] / cores, n / args.gpu_embed_rate / max(gpus, 1)))),
        per_n(lambda n: f"store {human_b(2 * EMBED_DIM * n)}"),
    )
    # hamming search: one process (threads), 2 cores measured
    row(
        "search: hamming_pairs r10",
        "one machine: RAM, its cores (threads)",
        f"1M {h['seconds']:.0f} s (measured), 10M {HAMMING_10M_S:.0f} s (published), 100M: 10M x 10^{b:.2f} (extrapolated)",
        [f"{HAMMING_10M_S * 2 / 3600:.2f} core-h", f"{HAMMING_10M_S * 10**b * 2 / 3600:.1f} core-h"],
        [f"{human_s(HAMMING_10M_S)} on 2 cores", f"{human_s(HAMMING_10M_S * 10**b)} on 2 cores"],
        per_n(lambda n: human_b(h["peak_rss_mb"] * 1e6 * n / 1e6) + " (x N from 1M)"),
    )
    # cosine search: N^2
    row(
        "search: cosine_pairs (cnn/hybrid)",
        "GPUs (or CPU cores); RAM for all vectors",
        f"{cos_core_s:.0f} core-s at 20k (measured) x (N/20k)^2 (extrapolated); GPU: {per_pair_flops} FLOP/pair at the assumed rate",
        per_n(
            lambda n: (
                f"{cos_core_s * (n / 2e4) ** 2 / 3600:,.0f} core-h or {per_pair_flops * n * n / 2 / (args.gpu_tflops * 1e12) / 3600:.1f} GPU-h"
            )
        ),
        per_n(
            lambda n: (
                f"{human_s(cos_core_s * (n / 2e4) ** 2 / cores)} CPU / {human_s(per_pair_flops * n * n / 2 / (args.gpu_tflops * 1e12) / max(gpus, 1))} GPU"
            )
        ),
        per_n(lambda n: f"{human_b(4 * EMBED_DIM * n)} float32 vectors (computed)"),
    )
    # cluster
    row(
        "cluster (networkx, 1 pair/image)",
        "one process: RAM, 1 core",
        f"1M images + 1M pairs: {cl['cluster_pairs_s']:.0f} s, {cl['peak_rss_mb']:.0f} MB (measured), x N (extrapolated)",
        per_n(lambda n: f"{cl['cluster_pairs_s'] * n / 1e6 / 3600:.2f} core-h"),
        per_n(lambda n: human_s(cl["cluster_pairs_s"] * n / 1e6)),
        per_n(lambda n: human_b(cl["peak_rss_mb"] * 1e6 * n / 1e6)),
    )
    # orchestration: Prefect task runs (one per chunk for phash, two for hybrid)
    row(
        "orchestration (Prefect task runs, hybrid)",
        "flow process + Prefect API server",
        f"{overhead * 1000:.0f} worker-ms/task (measured), 2 tasks per chunk of {chunk}",
        per_n(lambda n: f"{2 * n / chunk:,.0f} tasks, {2 * n / chunk * overhead / 3600:.1f} core-h"),
        per_n(lambda n: f"in the rows above if it runs on the workers; {human_s(2 * n / chunk * overhead)} if serial"),
        per_n(lambda n: f"{2 * n / chunk:,.0f} task runs in the API database"),
    )
    # manifest (preprocess / commit in the flow process)
    row(
        "manifest (preprocess, commit)",
        "flow process: RAM, disk",
        f"1M files: load {man['load_s']:.1f} s, {man['peak_rss_mb']:.0f} MB peak (measured), x N (extrapolated)",
        per_n(lambda n: "-"),
        per_n(lambda n: human_s(man["load_s"] * n / 1e6) + " per load (several per run)"),
        per_n(
            lambda n: f"{human_b(man['peak_rss_mb'] * 1e6 * n / 1e6)}; file {human_b(man['bytes_on_disk'] * n / 1e6)}"
        ),
    )
    for stage, resource_, cost, work, wall, memory in rows:
        print(
            f"| {stage} | {resource_} | {cost} | {work[0]} | {wall[0]} | {memory[0]} | {work[1]} | {wall[1]} | {memory[1]} |"
        )
    print(
        "work = core-hours (or GPU-hours) summed over workers; wall = work spread over the cores/GPUs above, "
        "except the hamming search and clustering, which run in one process (hamming: as on the 2 cores measured). "
        "Not measured: discovering and stat-ing N files, reading them from network storage, writing the report."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1100, help="JPEGs for the throughput runs (1100)")
    parser.add_argument("--small", type=int, default=200, help="JPEGs for the per-task overhead runs (200)")
    parser.add_argument("--embed", type=int, default=200, help="JPEGs embedded to time the embedder (200)")
    parser.add_argument("--chunk-size", type=int, default=50, help="chunk size of the throughput runs (50)")
    parser.add_argument(
        "--max-lost-s", type=float, default=60.0, help="work one failed chunk may lose, worker-seconds (60)"
    )
    parser.add_argument("--cores", type=int, default=64, help="CPU cores of the paper plan (64)")
    parser.add_argument("--gpus", type=int, default=4, help="GPUs of the paper plan (4)")
    parser.add_argument("--gpu-embed-rate", type=float, default=4000.0, help="assumed network images/s per GPU (4000)")
    parser.add_argument(
        "--gpu-tflops", type=float, default=50.0, help="assumed sustained fp16 matmul TFLOP/s per GPU (50)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the JPEGs are kept (default: $TMPDIR/imgdedup-bench-scaling-N)"
    )
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.gettempdir()) / f"imgdedup-bench-scaling-{args.images}"
    library, small = make_folder(workdir, args.images, args.small)
    print(
        f"library: {library} ({args.images} JPEGs), small: {small} ({args.small}); load at start {load()}; {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="imgdedup-bench-scaling-") as tmp:
        scratch = Path(tmp)
        throughput = bench_throughput(library, scratch, args.chunk_size, args.images)
        overhead = bench_overhead(small, scratch, args.small, 2, 100)
    print(f"\nmeasuring the embedder, search and clustering (load {load()}) ...", flush=True)
    embed = bench_embed(library, args.embed)
    other = bench_search_and_cluster()
    w_hash = throughput[1]["wall"] / args.images
    chunk = recommend_chunk(w_hash, embed["total"], overhead, args.max_lost_s)
    paper_plan(args, w_hash, embed, other, overhead["prefect"], chunk, throughput[1]["rss"])
    print(f"\nload at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
