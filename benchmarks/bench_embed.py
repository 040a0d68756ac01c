"""CNN embedding throughput: imagededup's CNN vs imgdedup's Embedder, same model, same files, same cores.

Run from the repository root (takes about a minute for 256 images on 2 cores)::

    python benchmarks/bench_embed.py --images 256 --threads 2

It writes N JPEGs (1024x768, crops/rescales/flips/tone changes of scikit-learn's
two sample photos, quality 75-95) to a temporary folder, then encodes the
folder end to end (file read + decode + preprocess + inference) once with:

(a) ``imagededup.methods.CNN`` given EfficientNet-Lite0 (the same ImageNet
    weights, BN not folded, pooled 1280-d features) as a ``CustomModel`` with
    the matching torchvision transform (Resize 224x224, ToTensor, Normalize 0.5/0.5);
(b) ``imgdedup.embedding.embedder.Embedder(runtime="torch")``;
(c) ``imgdedup.embedding.embedder.Embedder(runtime="onnx")`` (ONNX export done before timing,
    as it is cached on disk after the first run);
(d) what a ``hybrid`` or ``cnn`` run computes per image: the pipeline's
    embedding settings (last block, GeM, mirror averaging, grey, trimmed
    margins; ONNX Runtime) plus the trimmed phash and dhash
    (``Embedder.embed_and_hash_bytes``). Its features differ from imagededup's
    by design, so no ``cos`` is given.

All three use ``--threads`` intra-op threads. The table gives images/s and the
ratio to imagededup; ``cos`` is the mean cosine similarity between each
method's vector and imagededup's for the same file (a check that it is the
same model: preprocessing differs slightly, so it is close to, not exactly, 1).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """Write ``n`` 1024x768 JPEG variations of the two scikit-learn sample photos."""
    from PIL import Image, ImageEnhance, ImageOps
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    rng = random.Random(seed)
    paths = []
    for i in range(n):
        photo = photos[i % len(photos)]
        w, h = photo.size
        cw, ch = int(w * rng.uniform(0.5, 1.0)), int(h * rng.uniform(0.5, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        im = photo.crop((x, y, x + cw, y + ch)).resize((1024, 768), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            im = ImageOps.mirror(im)
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.7, 1.3))
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.6, 1.4))
        path = folder / f"img_{i:05d}.jpg"
        im.save(path, "JPEG", quality=rng.randint(75, 95))
        paths.append(path)
    return paths


def run_imagededup(folder: Path, paths: list[Path], threads: int) -> np.ndarray:
    import torch
    from imagededup.methods import CNN
    from imagededup.utils.models import CustomModel
    from torchvision import transforms

    from imgdedup.embedding import models

    torch.set_num_threads(threads)

    class Lite0Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = models.efficientnet_lite0()  # plain eager model, BN not folded

        def forward(self, x):
            return self.net.forward_features(x).mean((2, 3))

    transform = transforms.Compose(
        [
            transforms.Resize((224, 224)),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
        ]
    )
    # imagededup adds a DEBUG-level console handler unless its logger already has one: keep its INFO lines out.
    logging.getLogger("imagededup.methods.cnn").addHandler(logging.NullHandler())
    cnn = CNN(
        verbose=False,
        model_config=CustomModel(model=Lite0Pooled().eval(), transform=transform, name="efficientnet_lite0"),
    )
    start = time.perf_counter()
    enc = cnn.encode_images(image_dir=folder)
    elapsed = time.perf_counter() - start
    return elapsed, np.stack([enc[p.name] for p in paths])


def pipeline_settings() -> dict:
    """The embedder settings of a hybrid/cnn run with the default configuration, as the pipeline builds them."""
    from imgdedup.config import Config
    from imgdedup.pipeline.embedders import embedding_settings

    settings = embedding_settings(Config())
    del settings["model"]  # the Embedder's default
    return settings


def run_ours(paths: list[Path], threads: int, runtime: str, cache_dir: str, batch_size: int, pipeline: bool = False):
    from imgdedup.embedding.embedder import Embedder

    settings = pipeline_settings() if pipeline else {}
    emb = Embedder(runtime=runtime, threads=threads, cache_dir=cache_dir, batch_size=batch_size, **settings)
    emb.embed_arrays(np.zeros((2, 3, emb.input_size, emb.input_size), np.float32))  # warm-up, not timed
    start = time.perf_counter()
    out = np.empty((len(paths), emb.dim), np.float32)
    for i in range(0, len(paths), batch_size):
        chunk = [p.read_bytes() for p in paths[i : i + batch_size]]
        out[i : i + len(chunk)] = emb.embed_and_hash_bytes(chunk)[0] if pipeline else emb.embed_bytes(chunk)
    return time.perf_counter() - start, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256, help="number of JPEGs to generate (default 256)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every method (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="our batch size (imagededup uses 64)")
    parser.add_argument("--skip-imagededup", action="store_true", help="only time imgdedup")
    args = parser.parse_args(argv)
    if args.images < 1 or args.threads < 1 or args.batch_size < 1:
        parser.error("--images, --threads and --batch-size must be >= 1")
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    with tempfile.TemporaryDirectory(prefix="imgdedup-bench-embed-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        t0 = time.perf_counter()
        paths = make_images(folder, args.images)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"{len(paths)} JPEGs 1024x768 ({mb:.1f} MB) written in {time.perf_counter() - t0:.1f}s; "
            f"threads={args.threads}, cpus={os.cpu_count()}"
        )
        cache = str(Path(tmp) / "onnx")
        from imgdedup.embedding.embedder import Embedder

        t0 = time.perf_counter()
        Embedder(runtime="onnx", threads=args.threads, cache_dir=cache)
        Embedder(runtime="onnx", threads=args.threads, cache_dir=cache, **pipeline_settings())
        print(f"one-off ONNX export (cached afterwards): {time.perf_counter() - t0:.1f}s")

        rows = []
        ref = None
        if not args.skip_imagededup:
            elapsed, ref = run_imagededup(folder, paths, args.threads)
            rows.append(("imagededup CNN + EfficientNet-Lite0 (CustomModel)", elapsed, ref))
        for runtime in ("torch", "onnx"):
            elapsed, vecs = run_ours(paths, args.threads, runtime, cache, args.batch_size)
            rows.append((f"imgdedup Embedder runtime={runtime}", elapsed, vecs))
        elapsed, vecs = run_ours(paths, args.threads, "onnx", cache, args.batch_size, pipeline=True)
        rows.append(("imgdedup hybrid/cnn run: pipeline embedding + hashes", elapsed, vecs))

    base = rows[0][1] if not args.skip_imagededup else None
    print(f"\n{'method':<52} {'seconds':>8} {'img/s':>8} {'x imagededup':>13} {'cos':>6}")
    for name, elapsed, vecs in rows:
        ratio = f"{base / elapsed:.1f}x" if base else "-"
        if ref is not None and vecs.shape == ref.shape:
            a = ref / np.linalg.norm(ref, axis=1, keepdims=True)
            b = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
            cos = f"{float(np.mean(np.sum(a * b, axis=1))):.3f}"
        else:
            cos = "-"
        print(f"{name:<52} {elapsed:>8.2f} {len(vecs) / elapsed:>8.1f} {ratio:>13} {cos:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
