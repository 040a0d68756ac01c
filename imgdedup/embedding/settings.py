"""The embedder's arguments: their choices, and the checks run before anything heavy is built.

Every check here runs before torch is imported (``Embedder(pooling="max")`` fails
in milliseconds, with a message naming the argument and its value).

The choices are :mod:`imgdedup.config`'s (defined there once; config imports no
other library module). Imports only the standard library, :mod:`imgdedup.config`
and :mod:`imgdedup.errors`.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgdedup import config as _config
from imgdedup.errors import ConfigError

__all__ = ["DEFAULT_MODEL", "DEVICES", "LAYERS", "POOLINGS", "RUNTIMES", "Arguments", "check_arguments", "parse_spec"]

#: Name of the default model (``Embedder()``).
DEFAULT_MODEL = "efficientnet_lite0"
#: Global pooling of the last feature map: average, or generalised mean.
POOLINGS = _config.POOLINGS
#: EfficientNet-Lite0's feature layers: the 1x1 head convolution (1280-d) or the last MBConv block (320-d);
#: the config's "auto" is resolved by ``Config.embed_layer`` before an embedder is built.
LAYERS = tuple(layer for layer in _config.LAYERS if layer != "auto")
DEVICES = _config.DEVICES
RUNTIMES = _config.RUNTIMES


@dataclass(frozen=True)
class Arguments:
    """What the checks learn about the arguments of an :class:`~imgdedup.embedding.embedder.Embedder`.

    Attributes
    ----------
    kind : {"lite0", "torchvision", "timm", "custom"}
        Where the network comes from (``"custom"``: a module passed in).
    name : str
        The torchvision or timm model name, ``DEFAULT_MODEL`` for Lite0, ``""`` for a custom module.
    weights_path : str or None
        ``weights_path`` as a ``str``.
    """

    kind: str
    name: str
    weights_path: str | None


def parse_spec(spec: Any) -> tuple[str, str]:
    """'efficientnet_lite0' | 'torchvision:<name>' | 'timm:<name>' -> (kind, name)."""
    msg = f"model must be {DEFAULT_MODEL!r}, 'torchvision:<name>', 'timm:<name>' or a torch.nn.Module; got {spec!r}"
    if not isinstance(spec, str):
        raise ConfigError(msg)
    spec = spec.strip()
    if spec in (DEFAULT_MODEL, "efficientnet-lite0"):
        return "lite0", DEFAULT_MODEL
    kind, sep, name = spec.partition(":")
    if sep and kind in ("torchvision", "timm") and name.strip():
        return kind, name.strip()
    raise ConfigError(msg)


def ort_available() -> bool:
    """Whether ``onnxruntime`` can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def check_arguments(
    model: Any,
    pooling: Any,
    mirror: Any,
    layer: Any,
    grayscale: Any,
    trim: Any,
    device: Any,
    runtime: Any,
    threads: Any,
    batch_size: Any,
    weights_path: Any,
    cache_dir: Any,
    transform: Any,
    input_size: Any,
) -> Arguments:
    """Check the :class:`~imgdedup.embedding.embedder.Embedder` arguments (same names and meaning).

    A model that is not a string is taken as a custom module here; that it is a
    ``torch.nn.Module`` is checked once torch is imported.

    Raises
    ------
    imgdedup.errors.ConfigError
        (a ``ValueError``) naming the first invalid argument and its value.
    """
    kind, name = ("custom", "") if not isinstance(model, str) else parse_spec(model)
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
        raise ConfigError(
            "grayscale and trim belong to the built-in preprocessing; a custom transform must do them itself"
        )
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
    if runtime == "onnx" and not ort_available():
        raise ConfigError("runtime='onnx' needs the package 'onnxruntime', which is not installed")
    return Arguments(kind, name, weights_path)


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")


def _check_positive_int(name: str, value: Any, minimum: int = 1, optional: bool = False) -> None:
    if value is None and optional:
        return
    # numbers.Integral covers Python's and numpy's integers without importing numpy for the check.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}{' or None' if optional else ''}; got {value!r}")
