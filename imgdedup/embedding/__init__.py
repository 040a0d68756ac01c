"""Embedding: CNN feature vectors of images.

Holds the networks (``models``: EfficientNet-Lite0, torchvision and timm models, built
lazily) and the embedder (``embedder``: validation, ONNX export and cache, ONNX Runtime
or torch inference, a decode pool).

May import: ``imgdedup.imaging``, ``imgdedup.errors``, numpy, onnxruntime; torch and
torchvision only inside the functions that build or export a network.
"""
