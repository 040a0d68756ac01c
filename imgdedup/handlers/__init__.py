"""imagededup's ``handlers`` import paths, kept for code written against it (and the guide).

Thin adapters only: :mod:`imgdedup.handlers.search` holds ``BKTree`` over
:class:`imgdedup.search.hamming.BKTree`.

May import: ``imgdedup.search``, ``imgdedup.imaging.hashing``.
"""
