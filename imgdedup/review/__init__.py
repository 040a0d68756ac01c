"""Review: what a person reads to decide, and where they decide.

Holds the static HTML report (``report``), its thumbnails (``thumbnails``), the
Jinja2 templates and static CSS/JS shipped as package data (``templating``),
and ``imgdedup review``: the decisions file (``decisions``), one review's state
(``session``) and the local web app over it (``app``, FastAPI + uvicorn, loaded
only by that command).

May import: ``imgdedup.imaging`` (thumbnails), ``imgdedup.storage``,
``imgdedup.actions`` (apply and undo from the page) and ``imgdedup.errors``.
"""
