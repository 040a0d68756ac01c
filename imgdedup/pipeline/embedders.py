"""The embedder of a run, built once per process and setting, and the embedding of a batch of files."""

from __future__ import annotations

import numpy as np

from imgdedup.config import Config
from imgdedup.errors import ImageLoadError

_EMBEDDERS: dict[tuple, object] = {}


def embedder_for(config: Config, threads: int | None = None):
    """One embedder per process and setting: building it (model, ONNX session) takes seconds."""
    from imgdedup.embedding.embedder import load_embedder

    settings = embedding_settings(config)
    key = (tuple(sorted(settings.items())), config.runtime, config.device, config.embed_batch_size, threads)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = load_embedder(
            config.model,
            pooling=config.pooling,
            mirror=config.mirror,
            layer=config.embed_layer,
            grayscale=config.grayscale,
            trim=config.trim,
            runtime=config.runtime,
            device=config.device,
            batch_size=config.embed_batch_size,
            threads=threads,
        )
    return _EMBEDDERS[key]


def embedding_settings(config: Config) -> dict:
    """What the config says about embeddings; checked against the store without building a model."""
    return {
        "model": config.model,
        "layer": config.embed_layer,
        "pooling": config.pooling,
        "mirror": config.mirror,
        "grayscale": config.grayscale,
        "trim": config.trim,
    }


def embed_files(embedder, datas: list[bytes]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Embed a batch, with the trimmed hashes; if it fails, one by one so one bad file costs only itself."""
    try:
        return *embedder.embed_and_hash_bytes(datas), {}
    except ImageLoadError:
        pass
    vectors = np.zeros((len(datas), embedder.dim), dtype=np.float32)
    hashes = np.zeros((len(datas), 2), dtype=np.uint64)
    failed: dict[int, str] = {}
    for k, data in enumerate(datas):
        try:
            one_vector, one_hashes = embedder.embed_and_hash_bytes([data])
            vectors[k], hashes[k] = one_vector[0], one_hashes[0]
        except ImageLoadError as exc:
            failed[k] = exc.reason
    return vectors, hashes, failed
