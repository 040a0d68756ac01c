"""The ``imgdedup`` command line: thin adapters over the library.

Each command builds the config, calls the library and turns library errors into
``Error: ...`` with exit code 1 (2 for usage). May import everything in imgdedup;
Prefect only inside ``run`` and ``deploy`` (through ``imgdedup.flows``).
"""

from imgdedup.cli.main import main

__all__ = ["main"]
