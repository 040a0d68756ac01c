"""Review: what a person reads to decide.

Holds the static HTML report (``report``), its thumbnails (``thumbnails``) and
the Jinja2 templates and static CSS/JS both ship as package data (``templating``).

May import: ``imgdedup.imaging`` (thumbnails), ``imgdedup.storage`` and
``imgdedup.errors``.
"""
