"""imagededup's ``CNN`` over :class:`imgdedup.embedding.embedder.Embedder`, with the options the guide shows.

::

    CNN()                                            # EfficientNet-Lite0, offline, ONNX Runtime on CPU
    CNN(model_name="vgg16", input_size=(224, 224))   # any torchvision classification model by name
    CNN(model_name="vgg16", feature_extraction_layer="fc2")   # a named layer (see imgdedup.compat.layers)
    CNN(batch_size=32, use_gpu=True)                 # CUDA when present, else the CPU with one warning

Encodings are L2-normalised float32 vectors, so cosine similarity is a dot
product; maps of float16 copies search the same way.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

import numpy as np
from PIL import Image

from imgdedup.compat.base import DuplicateFinder, save_json
from imgdedup.errors import ImageLoadError
from imgdedup.imaging.discover import discover_images, read_bytes

_DEFAULT_MODEL = "efficientnet_lite0"
#: Layers of the default model: its head convolution (1280-d) or its last block (320-d).
LITE0_LAYERS = ("head", "block")


class CNN(DuplicateFinder):
    """CNN embeddings with imagededup's ``CNN`` verbs; the default model works offline.

    Parameters
    ----------
    verbose : bool
        Accepted for imagededup's signature; nothing is printed.
    model_config : imagededup's ``CustomModel`` or None
        Anything with ``model`` (a ``torch.nn.Module``) and ``transform``
        (``PIL.Image -> (3, H, W)``) attributes, used instead of a named model.
    model_name : str or None
        ``"efficientnet_lite0"`` (the default, weights shipped as a package),
        any torchvision classification model (``"vgg16"``, ``"resnet50"``;
        torchvision's default weights from torch's cache, downloaded once with
        a network), ``"torchvision:<name>"`` or ``"timm:<name>"``.
    input_size : int or (int, int) or None
        Side of the square model input; default the model's own.
    batch_size : int
        Images per inference call.
    feature_extraction_layer : str or None
        The layer whose output is the encoding (pooled when it is a feature
        map): ``"head"`` or ``"block"`` for the default model; for torchvision
        models a feature-extraction node name or a Keras-style name such as
        VGG's ``"fc1"`` / ``"fc2"``. Default: the features before the classifier.
    use_gpu : bool or None
        True: CUDA when present, else the CPU with one warning. False: the CPU.
        None: CUDA when present, silently.
    **embedder_options
        Any other :class:`~imgdedup.embedding.embedder.Embedder` argument
        (``pooling``, ``mirror``, ``runtime``, ``threads``, ``weights_path``, ...).
        A model cut at a layer, or given as ``model_config``, runs in eager
        torch unless ``runtime="onnx"``: its ONNX export cannot be cached.
    """

    def __init__(
        self,
        verbose: bool = True,
        model_config=None,
        model_name: Optional[str] = None,
        input_size: int | tuple[int, int] | None = None,
        batch_size: int = 32,
        feature_extraction_layer: Optional[str] = None,
        use_gpu: Optional[bool] = None,
        model: Optional[str] = None,
        **embedder_options: Any,
    ) -> None:
        from imgdedup.embedding.embedder import Embedder

        if model is not None and model_name is not None:
            raise ValueError("give the model once: `model_name` (or its older name `model`), not both")
        name = model_name if model_name is not None else (model if model is not None else _DEFAULT_MODEL)
        self.verbose = verbose
        self.results: dict | None = None
        options = dict(
            embedder_options, batch_size=batch_size, device=_device(use_gpu, embedder_options.get("device", "auto"))
        )
        side = _input_side(input_size)
        if side is not None:
            options["input_size"] = side
        if model_config is not None:
            if getattr(model_config, "model", None) is None or getattr(model_config, "transform", None) is None:
                raise ValueError("No value provided for model and/or transform in model_config ..")
            net = model_config.model
            if feature_extraction_layer is not None:
                from imgdedup.compat.layers import feature_extractor

                net = feature_extractor(net, feature_extraction_layer, type(net).__name__)
            options.setdefault("runtime", "torch")  # see _torchvision_embedder
            self.embedder = Embedder(model=net, transform=model_config.transform, **options)
            return
        if not isinstance(name, str):
            raise ValueError(f"`model_name` must be a model name such as 'vgg16', got {name!r}")
        kind, short = _model_kind(name)
        spec = _DEFAULT_MODEL if kind == "lite0" else f"{kind}:{short}"
        if kind == "lite0":
            if feature_extraction_layer is not None:
                options["layer"] = _lite0_layer(feature_extraction_layer)
            self.embedder = Embedder(model=spec, **options)
        elif kind == "torchvision":
            self.embedder = _torchvision_embedder(short, feature_extraction_layer, options)
        else:
            if feature_extraction_layer is not None:
                raise ValueError(
                    f"`feature_extraction_layer` is for torchvision models and {_DEFAULT_MODEL!r}, not {spec!r}"
                )
            self.embedder = Embedder(model=spec, **options)

    def encode_image(self, image_file=None, image_array: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """Encode one image: a ``(1, D)`` float32 array, or ``None`` if the file is not a readable image."""
        if image_file is not None:
            if not Path(image_file).is_file():
                raise ValueError("Please provide either image file path or image array!")
            try:
                return self.embedder.embed_bytes([Path(image_file).read_bytes()])
            except ImageLoadError:
                return None
        if isinstance(image_array, np.ndarray):
            if image_array.ndim == 2:
                image_array = np.repeat(image_array[..., np.newaxis], 3, axis=2)
            if image_array.ndim != 3 or image_array.shape[2] != 3:
                raise ValueError(f"`image_array` must have shape (H, W) or (H, W, 3), got {image_array.shape}")
            return self.embedder.embed_images([Image.fromarray(image_array.astype("uint8"))])
        raise ValueError("Please provide either image file path or image array!")

    def encode_images(
        self, image_dir=None, recursive: bool = False, num_enc_workers: int = 0, image_list: Optional[Iterable] = None
    ) -> Dict[str, np.ndarray]:
        """Encode every readable image: ``{name: (D,) float32}``, unreadable files left out.

        With ``image_dir``, names are paths relative to it (imagededup's keys);
        with ``image_list``, the paths as given (``str`` of each). Each image
        is decoded once. ``num_enc_workers`` is accepted for imagededup's
        signature: the embedder already decodes on its own threads.
        """
        if isinstance(num_enc_workers, bool) or not isinstance(num_enc_workers, int) or num_enc_workers < 0:
            raise ValueError(f"`num_enc_workers` must be an int >= 0, got {num_enc_workers!r}")
        if image_list is not None:
            if image_dir is not None:
                raise ValueError("give `image_dir` or `image_list`, not both")
            if isinstance(image_list, (str, os.PathLike)):
                raise ValueError("`image_list` must be a list of paths, not one path")
            names = [os.fspath(p) for p in image_list]
            datas = [_read(Path(n).read_bytes) for n in names]
        else:
            if image_dir is None or not os.path.isdir(image_dir):
                raise ValueError("Please provide a valid directory path!")
            records = discover_images(image_dir, recursive=recursive)
            names = [r.id for r in records]
            datas = [_read(lambda r=r: read_bytes(image_dir, r)) for r in records]
        readable = [k for k, d in enumerate(datas) if d is not None]
        vectors, ok = embed_readable(self.embedder, [datas[k] for k in readable])
        return {names[k]: vectors[n] for n, k in enumerate(readable) if ok[n]}

    @staticmethod
    def _check_threshold(threshold: float) -> None:
        if not isinstance(threshold, float):
            raise TypeError("Threshold must be a float between -1.0 and 1.0")
        if not -1.0 <= threshold <= 1.0:
            raise ValueError("Threshold must be a float between -1.0 and 1.0")

    def find_duplicates(
        self,
        image_dir=None,
        encoding_map: Optional[Dict[str, np.ndarray]] = None,
        min_similarity_threshold: float = 0.9,
        scores: bool = False,
        outfile: Optional[str] = None,
        recursive: bool = False,
        num_enc_workers: int = 0,
        num_sim_workers: int = 0,
    ) -> Dict:
        """Every image with cosine similarity >= ``min_similarity_threshold`` to each image, most similar first.

        ``encoding_map`` values may be any float dtype (float16 copies too) and
        need not be unit length.
        """
        from imgdedup.pipeline.results import duplicates_map
        from imgdedup.search.cosine import cosine_pairs

        self._check_threshold(min_similarity_threshold)
        if image_dir:
            encoding_map = self.encode_images(image_dir, recursive=recursive)
        elif encoding_map is None or not len(encoding_map):
            raise ValueError("Provide either an image directory or encodings!")
        names = list(encoding_map)
        vectors = np.asarray([np.ravel(encoding_map[n]) for n in names], dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        i, j, similarity = cosine_pairs(vectors, min_similarity_threshold)
        results = duplicates_map(names, i, j, similarity, scores=scores, higher_is_closer=True)
        if scores:
            results = {k: [(name, float(s)) for name, s in v] for k, v in results.items()}
        self.results = results
        if outfile:
            save_json(results, outfile)
        return results


def embed_readable(embedder, datas: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Embed encoded files, each decoded once: ``(N, D)`` vectors and an ``(N,)`` bool "readable" mask.

    A batch holding an unreadable file is embedded again one file at a time,
    so that file costs only itself.
    """
    vectors = np.zeros((len(datas), embedder.dim), dtype=np.float32)
    ok = np.ones(len(datas), dtype=bool)
    step = embedder.batch_size
    for start in range(0, len(datas), step):
        batch = datas[start : start + step]
        try:
            vectors[start : start + len(batch)] = embedder.embed_bytes(batch)
            continue
        except ImageLoadError:
            pass
        for k, data in enumerate(batch, start=start):
            try:
                vectors[k] = embedder.embed_bytes([data])[0]
            except ImageLoadError:
                ok[k] = False
    return vectors, ok


def _read(read) -> bytes | None:
    try:
        return read()
    except (OSError, ImageLoadError):
        return None


def _device(use_gpu: Optional[bool], device: str) -> str:
    if use_gpu is None:
        return device
    if not isinstance(use_gpu, bool):
        raise ValueError(f"`use_gpu` must be True, False or None, got {use_gpu!r}")
    if not use_gpu:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    warnings.warn("use_gpu=True but CUDA is not available; CNN runs on the CPU", UserWarning, stacklevel=3)
    return "cpu"


def _input_side(input_size: Any) -> int | None:
    if input_size is None:
        return None
    if isinstance(input_size, (tuple, list)):
        if len(input_size) != 2 or input_size[0] != input_size[1]:
            raise ValueError(
                f"`input_size` must be one side or a square (S, S): the whole image is resized to it; "
                f"got {input_size!r}"
            )
        input_size = input_size[0]
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"`input_size` must be an int >= 32 or (S, S), got {input_size!r}")
    return input_size


def _model_kind(name: str) -> tuple[str, str]:
    """``"lite0"``, ``"torchvision"`` or ``"timm"``, and the model's own name; a bare name is torchvision's."""
    name = name.strip()
    if name in (_DEFAULT_MODEL, "efficientnet-lite0"):
        return "lite0", _DEFAULT_MODEL
    kind, sep, short = name.partition(":")
    if not sep:
        return "torchvision", name
    if kind in ("torchvision", "timm") and short.strip():
        return kind, short.strip()
    raise ValueError(
        f"`model_name` must be {_DEFAULT_MODEL!r}, a torchvision model name ('vgg16'), "
        f"'torchvision:<name>' or 'timm:<name>', got {name!r}"
    )


def _lite0_layer(layer: Any) -> str:
    if layer in LITE0_LAYERS:
        return layer
    hint = (
        "; fc1/fc2 are VGG's layers: CNN(model_name='vgg16', feature_extraction_layer='fc2')"
        if layer in ("fc1", "fc2")
        else ""
    )
    raise ValueError(
        f"`feature_extraction_layer` {layer!r} is not a layer of {_DEFAULT_MODEL}; valid: "
        f"{', '.join(LITE0_LAYERS)}{hint}"
    )


def _torchvision_embedder(name: str, layer: Optional[str], options: dict):
    """An embedder for torchvision model ``name``: cut before its classifier, or at ``layer``."""
    from imgdedup.compat import layers
    from imgdedup.embedding.embedder import Embedder

    if layer is None:
        if options.get("weights_path") is None:
            layers.ensure_weights(name)  # a clear error offline, before torchvision tries the network
        return Embedder(model=f"torchvision:{name}", **options)
    options = dict(options)
    # The embedder exports a module it cannot name afresh at every start (and every unpickling, e.g. on each
    # Dask task): 15-30 s for a small network here. Eager torch starts at once; runtime="onnx" still exports.
    options.setdefault("runtime", "torch")
    net = layers.load_torchvision(name, options.pop("weights_path", None))
    if "input_size" not in options:
        crop = getattr(layers.torchvision_weights(name).transforms(), "crop_size", [224])
        options["input_size"] = int(crop[0])
    return Embedder(model=layers.feature_extractor(net, layer, name), **options)
