"""Review: what a person reads to decide.

Holds the static HTML report (``report``).

May import: ``imgdedup.imaging`` (thumbnails), ``imgdedup.storage`` and
``imgdedup.errors``.
"""
