"""The ONNX export of a feature network, its cache on disk, and ONNX Runtime sessions on it.

A network is exported once, checked against torch, and cached under a name
derived from what determines the graph (model, weights digest, input size,
pooling, layer, export version, torch release); every later worker opens the
cached file. The key is part of the cache's contract: changing what goes into
it, or how, orphans every cached export.

Imports numpy and the standard library; onnxruntime, onnxscript and torch
only inside the functions that need them (:func:`gpu_possible` and
:func:`torch_version` answer without importing torch).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from imgdedup.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "EXPORT_ATOL",
    "EXPORT_VERSION",
    "cache_path",
    "default_cache_dir",
    "new_session",
    "onnx_session",
    "weights_digest",
]

#: Bumped whenever the exported graph for the same model and weights would change.
EXPORT_VERSION = 1
#: Largest accepted absolute difference between ONNX Runtime and torch outputs when verifying an export.
EXPORT_ATOL = 1e-3
INPUT_NAME = "images"
OUTPUT_NAME = "features"


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


def state_digest(module) -> str:
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


def torch_version() -> str:
    """torch's release, read from its package metadata: importing torch costs about 1.5 s."""
    from importlib.metadata import version

    return version("torch").split("+")[0]


def gpu_possible() -> bool:
    """Whether torch could find a GPU here, answered without importing it: on Linux a GPU
    driver shows device files (NVIDIA, ROCm, WSL); elsewhere only macOS is known to have none."""
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))
    return sys.platform != "darwin"


def cache_path(
    cache_dir: str | os.PathLike | None, model_name: str, weights_sha256: str, input_size: int, pooling: str, layer: str
) -> Path:
    """Where the export of this model, weights, input size, pooling and layer is cached.

    ``cache_dir`` None means :func:`default_cache_dir`. The file is
    ``<model slug>-<first 20 hex of a SHA-256 of the settings>.onnx``.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    key = hashlib.sha256(
        json.dumps(
            [model_name, weights_sha256, input_size, pooling, layer, EXPORT_VERSION, torch_version()], sort_keys=True
        ).encode()
    ).hexdigest()[:20]
    slug = model_name.replace(":", "-").replace("/", "-")
    return folder / f"{slug}-{key}.onnx"


def onnx_session(net, model_name: str, input_size: int, path: Path | None, threads: int | None, device: str):
    """A session on the export of ``net``, from the cache file ``path`` (exported there first when missing).

    ``path`` None exports to a temporary folder and keeps nothing (a custom
    module's code is not part of any key). ``net`` is moved to the CPU for the
    export and its check, and back to ``device`` after them.
    """
    if path is None:
        with tempfile.TemporaryDirectory(prefix="imgdedup-onnx-") as tmp:
            tmp_path = Path(tmp) / "model.onnx"
            export(net, tmp_path, input_size, model_name, device)
            data = tmp_path.read_bytes()
        source: Any = data
    else:
        folder = path.parent
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=folder)
            os.close(fd)
            try:
                export(net, Path(tmp_name), input_size, model_name, device)
                os.chmod(tmp_name, 0o644)  # mkstemp made it owner-only; the cache may be shared
                os.replace(tmp_name, path)  # atomic: concurrent workers never read half a file
            finally:
                if os.path.exists(tmp_name):
                    os.unlink(tmp_name)
            log.info("exported %s to %s", model_name, path)
        source = str(path)
    return new_session(source, threads, device)


def new_session(source, threads: int | None, device: str):
    """An ONNX Runtime session on ``source`` (a file name or the model's bytes).

    ``threads`` None is ONNX Runtime's default (all cores); on ``device``
    "cuda" the CUDA provider comes first when onnxruntime has one.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = int(threads or 0)
    options.log_severity_level = 3
    # Idle ORT threads sleep instead of spinning: they would steal the cores the decoding threads use
    # between runs (measured end to end on 2 cores: 157 img/s without spinning, 142 with).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            log.warning("onnxruntime has no CUDA provider; ONNX inference runs on the CPU")
    session = ort.InferenceSession(source, sess_options=options, providers=providers)
    return session


def export(net, path: Path, input_size: int, model_name: str, device: str) -> None:
    """Export ``net`` to ONNX at ``path`` (dynamic batch, inputs (N, 3, S, S)) and check it against torch.

    Raises
    ------
    RuntimeError
        If ONNX Runtime's output on a random batch differs from torch's by
        more than ``EXPORT_ATOL`` (relative to the output's largest value, when above 1).
    """
    import torch

    net.to("cpu").eval()  # in place: the caller's module
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3, input_size, input_size)).astype(np.float32))
    try:
        import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)

        dynamo = True
    except ImportError:
        dynamo = False
    with warnings.catch_warnings():
        # The TorchScript exporter, used only when onnxscript is missing, announces its own deprecation.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings(
            "ignore", message=r".*legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        if dynamo:
            torch.onnx.export(
                net,
                (x,),
                str(path),
                dynamo=True,
                verbose=False,
                external_data=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            )
        else:
            torch.onnx.export(
                net,
                (x,),
                str(path),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=17,
            )
    # Check the file before trusting it (and caching it for every later run), against torch on the CPU
    # where ``x`` is: the network goes back to ``device`` only after.
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    got = session.run(None, {INPUT_NAME: x.numpy()})[0]
    with torch.inference_mode():
        want = net(x).numpy()
    net.to(device)
    err = float(np.abs(got - want).max())
    if got.shape != want.shape or not err <= EXPORT_ATOL * max(1.0, float(np.abs(want).max())):
        raise RuntimeError(f"ONNX export of {model_name} disagrees with torch (max abs diff {err:.3g})")
