"""Named configurations (``default.yaml``, ...), shipped as package data: ``--config NAME`` loads ``NAME.yaml`` from here."""
