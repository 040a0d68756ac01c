"""imagededup's ``utils`` import paths, kept for code written against it (and the guide).

Thin adapters only: :mod:`imgdedup.utils.image_utils` (``preprocess_images``
over :func:`imgdedup.imaging.preprocess.preprocess_images`),
:mod:`imgdedup.utils.plotter` (``plot_duplicates``: the review report of
:func:`imgdedup.review.report.render_report`) and ``CustomModel``.

May import: ``imgdedup.imaging``, ``imgdedup.search``, ``imgdedup.pipeline.results``,
``imgdedup.review``; torch only inside functions.
"""

from typing import Any, Callable, NamedTuple, Optional

from imgdedup.utils.plotter import plot_duplicates


class CustomModel(NamedTuple):
    """imagededup's model description for ``CNN(model_config=...)``.

    ``model``: a ``torch.nn.Module`` mapping (N, 3, H, W) float32 to features;
    ``transform``: ``PIL.Image -> (3, H, W)`` tensor or array.
    """

    name: str = "default_model"
    model: Optional[Any] = None
    transform: Optional[Callable[[Any], Any]] = None


__all__ = ["CustomModel", "plot_duplicates"]
