"""imagededup compatibility: its hash classes and its evaluation, over imgdedup's library.

May import: ``imgdedup.imaging``, ``imgdedup.search``, ``imgdedup.pipeline.results``.
"""
