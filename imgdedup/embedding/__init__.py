"""Embedding: CNN feature vectors of images.

Holds the networks (``models``: EfficientNet-Lite0, torchvision and timm models, built
lazily), the embedder's argument choices and checks (``settings``), the ONNX export, its
cache and sessions (``onnx_cache``), decoding and preprocessing on a thread pool
(``decode_pool``), and the embedder itself (``embedder``: ONNX Runtime or torch inference).

May import: ``imgdedup.imaging``, ``imgdedup.errors``, numpy, onnxruntime; torch and
torchvision only inside the functions that build or export a network; ``imgdedup.config``
for the choices of pooling, layer, device and runtime (``settings``), which are defined there once.
"""
