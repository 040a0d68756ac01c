"""imagededup's ``handlers.search``: ``from imgdedup.handlers.search import BKTree``."""

from imgdedup.handlers.search.bktree import BKTree

__all__ = ["BKTree"]
