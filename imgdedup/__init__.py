"""imgdedup: duplicate and near-duplicate image detection as a real workflow.

The library is plain functions and small classes; it never imports Prefect or
torch, so it is fast to import and usable without an orchestrator.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
