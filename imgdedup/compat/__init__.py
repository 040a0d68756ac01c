"""imagededup compatibility: its hash classes and its evaluation, over imgdedup's library.

May import: ``imgdedup.imaging``, ``imgdedup.search``, ``imgdedup.embedding`` (the CNN), ``imgdedup.pipeline.results``
(inside functions: it imports the pipeline package).
"""
