"""Actions: acting on a run's duplicates, journalled and undoable.

Holds loading a run, path safety, the action plan, the journal, file operations,
apply and undo (``actions``).

May import: ``imgdedup.imaging.discover`` (content digests) and ``imgdedup.errors``.
Local files only.
"""
