"""Named exceptions: the CLI turns each into ``Error: ...`` with exit code 1."""


class ImgdedupError(Exception):
    """Base class for every error imgdedup raises on purpose."""


class ConfigError(ImgdedupError, ValueError):
    """A configuration value or parameter is invalid."""


class InputError(ImgdedupError):
    """An input folder or file cannot be used (missing, not a folder, ...)."""


class ImageLoadError(ImgdedupError):
    """One image could not be read or decoded; the run records it and goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutputError(ImgdedupError):
    """The output folder cannot be written."""


class StoreError(ImgdedupError):
    """The store cannot be used: busy, another layout, or built with another model."""


class APIError(ImgdedupError):
    """The Prefect API a flow run needs cannot be reached or started."""
