"""torchvision models by name for the compat ``CNN``: their weights as torchvision finds them, their layers by name.

A model named ``"vgg16"`` gets torchvision's default ImageNet weights from
torch's hub cache (``torch.hub.get_dir()/checkpoints``, moved with
``TORCH_HOME``), downloading them there once when a network is reachable.
Offline with no cached file, :func:`ensure_weights` raises a
:class:`~imgdedup.errors.ConfigError` naming the model, the file and the folder
to put it in, instead of a socket traceback.

A layer is named as torchvision's feature extraction names its graph nodes
(``torchvision.models.feature_extraction.get_graph_node_names``, eval mode:
``"features.29"``, ``"avgpool"``, ``"classifier.4"``), or with the Keras names
the guide uses, translated by :func:`keras_style_names`: for VGG ``fc1``,
``fc2``, ``flatten``, ``block<b>_conv<c>`` and ``block<b>_pool``; for ResNet
``avg_pool``. Keras layers include their activation, so ``fc2`` is the ReLU
after the second fully connected layer (``classifier.4``).

torch and torchvision are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgdedup.embedding.models import ensure_torchvision_weights, torchvision_default_weights, torchvision_weights_file
from imgdedup.errors import ConfigError


def torchvision_weights(name: str):
    """torchvision's default weights enum member for the classification model ``name``."""
    import torchvision

    classifiers = torchvision.models.list_models(module=torchvision.models)  # not detection, segmentation, video
    if name not in classifiers:
        raise ConfigError(
            f"`model_name` {name!r} is not a torchvision classification model; known: {', '.join(sorted(classifiers))}"
        )
    return torchvision_default_weights(name)


def weights_file(name: str) -> Path:
    """Where torchvision keeps (or will keep) the default weights of model ``name``."""
    torchvision_weights(name)  # validates the name
    return torchvision_weights_file(name)


def ensure_weights(name: str) -> Path:
    """The cached weights file of torchvision model ``name``, downloaded first if missing.

    Raises
    ------
    imgdedup.errors.ConfigError
        The file is not cached and cannot be downloaded (no network): the
        message names the model, the file, its URL and the folder to put it in
        (see :func:`imgdedup.embedding.models.ensure_torchvision_weights`).
    """
    torchvision_weights(name)  # validates the name
    return ensure_torchvision_weights(name, alternative="or pass weights_path=<state dict file>")


def load_torchvision(name: str, weights_path: str | None = None):
    """torchvision model ``name`` in eval mode: default weights from torch's cache, or the state dict at ``weights_path``."""
    import torchvision

    from imgdedup.embedding.models import load_state_dict

    if weights_path is not None:
        torchvision_weights(name)  # validates the name
        model = torchvision.models.get_model(name, weights=None)
        model.load_state_dict(load_state_dict(weights_path), strict=True)
        return model.eval()
    ensure_weights(name)
    return torchvision.models.get_model(name, weights=torchvision_weights(name)).eval()


def keras_style_names(model: Any) -> dict[str, str]:
    """Keras layer names of ``model`` -> torchvision graph node names (VGG and ResNet; empty otherwise)."""
    import torchvision
    from torch import nn

    names: dict[str, str] = {}
    if isinstance(model, torchvision.models.VGG):
        block, conv, pending = 1, 0, None
        for index, layer in enumerate(model.features):
            if isinstance(layer, nn.Conv2d):
                conv += 1
                pending = f"block{block}_conv{conv}"
            elif isinstance(layer, nn.ReLU) and pending:
                names[pending] = f"features.{index}"  # Keras convolutions include their ReLU
                pending = None
            elif isinstance(layer, nn.MaxPool2d):
                names[f"block{block}_pool"] = f"features.{index}"
                block, conv = block + 1, 0
        names.update({"flatten": "flatten", "fc1": "classifier.1", "fc2": "classifier.4"})
    elif isinstance(model, torchvision.models.ResNet):
        names["avg_pool"] = "flatten"
    return names


def layer_node(model: Any, layer: str, label: str) -> str:
    """The graph node that ``layer`` names in ``model``.

    Raises
    ------
    ValueError
        ``layer`` is neither a node name nor a Keras-style name of ``model``;
        the message lists the valid ones.
    """
    from torchvision.models.feature_extraction import get_graph_node_names

    if not isinstance(layer, str) or not layer:
        raise ValueError(f"`feature_extraction_layer` must be a layer name, got {layer!r}")
    aliases = keras_style_names(model)
    _, nodes = get_graph_node_names(model.eval())
    node = aliases.get(layer, layer)
    # A module holding several nodes ("layer4", "features.3") names its last one, as in create_feature_extractor.
    if node == nodes[0] or not any(n == node or n.startswith(node + ".") for n in nodes):  # nodes[0] is the input
        keras = f"Keras-style names {', '.join(aliases)}; " if aliases else ""
        raise ValueError(
            f"`feature_extraction_layer` {layer!r} is not a layer of {label}; valid: {keras}"
            f"torchvision node names {', '.join(nodes[1:])}"
        )
    return node


def feature_extractor(model: Any, layer: str, label: str):
    """``model`` cut at ``layer``: a ``torch.fx.GraphModule`` returning that layer's output tensor.

    A feature map (N, C, H, W) is pooled by the embedder; (N, D) is used as it is.
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    node = layer_node(model, layer, label)
    extractor = create_feature_extractor(model.eval(), return_nodes={node: "features"})
    # It returns {"features": tensor}; return the tensor itself, as the embedder expects of a module.
    graph = extractor.graph
    output = next(n for n in graph.nodes if n.op == "output")
    output.args = (output.args[0]["features"],)
    extractor.recompile()
    # Name the class after what it computes: the embedder's identity shows "custom:torchvision.<model>:<layer>".
    type(extractor).__module__, type(extractor).__qualname__ = "torchvision", f"{label}:{layer}"
    return extractor.eval()
