"""One frozen configuration object, loaded from YAML and overridden by flags.

``configs/default.yaml`` mirrors the defaults below (a test keeps them equal), so a
user can copy it, change a value and pass ``--config``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from imgdedup.errors import ConfigError

HASH_METHODS = ("phash", "dhash", "ahash", "whash")
METHODS = HASH_METHODS + ("cnn", "hybrid")
KEEP_POLICIES = ("resolution",)
POOLINGS = ("avg", "gem")
RUNTIMES = ("auto", "onnx", "torch")
LAYERS = ("auto", "head", "block")
DEVICES = ("auto", "cpu", "cuda")
#: Per-method defaults, chosen on the transformed-copies benchmark (README, "Accuracy per method").
#: hybrid: a pair counts when cosine >= 0.975, or when the smaller of its trimmed phash and dhash
#: distances is <= 15 and its cosine >= hybrid_floor (0.875).
#: cnn alone: 0.94 gives the best F1 on clusters, which is what `apply` acts on.
METHOD_DEFAULTS = {
    "threshold": {"hybrid": 15, None: 10},
    "min_similarity": {"hybrid": 0.975, None: 0.94},
}


def method_default(name: str, method: str) -> Any:
    """The default ``threshold`` or ``min_similarity`` of ``method``."""
    table = METHOD_DEFAULTS[name]
    return table.get(method, table[None])


@dataclass(frozen=True)
class Config:
    """Every setting of a run. Build with :func:`load_config`, never mutate."""

    method: str = "hybrid"
    threshold: int | None = None  # None: the method's default (METHOD_DEFAULTS)
    min_similarity: float | None = None  # None: the method's default (METHOD_DEFAULTS)
    hybrid_floor: float = 0.875
    model: str = "efficientnet_lite0"
    layer: str = "auto"
    pooling: str = "gem"
    mirror: bool = True
    grayscale: bool = True
    trim: bool = True
    runtime: str = "auto"
    device: str = "auto"
    embed_batch_size: int = 32
    store: str | None = None
    rule_max_resolution_ratio: float | None = None
    rule_max_aspect_difference: float | None = None
    rule_folders: str = "any"
    rule_ignore: tuple[str, ...] = ()
    review_bits: int = 2
    review_similarity: float = 0.03
    verify: bool = True
    verify_aligned: float = 0.85
    verify_colour: float = 0.6
    verify_inliers: int = 15
    recursive: bool = True
    compat: bool = False
    chunk_size: int = 2000
    n_workers: int = 2
    threads_per_worker: int = 1
    address: str | None = None
    max_image_pixels: int = 178_956_970
    thumbnail_size: int = 160
    keep: str = "resolution"

    def __post_init__(self) -> None:
        if isinstance(self.rule_ignore, list):  # YAML gives lists; keep the config hashable
            object.__setattr__(self, "rule_ignore", tuple(self.rule_ignore))
        for name in METHOD_DEFAULTS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, method_default(name, self.method))
        validate_config(self)

    def replace(self, **changes: Any) -> "Config":
        """A copy with ``changes`` applied (``None`` values are ignored).

        When ``method`` changes, a ``threshold`` or ``min_similarity`` that is
        the old method's default (and not in ``changes``) becomes the new one's.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        method = changes.get("method", self.method)
        if method != self.method:
            for name in METHOD_DEFAULTS:
                if name not in changes and getattr(self, name) == method_default(name, self.method):
                    changes[name] = method_default(name, method)
        return dataclasses.replace(self, **changes)

    @property
    def embed_layer(self) -> str:
        """``layer`` with ``auto`` resolved: the last block for EfficientNet-Lite0, the head for other models."""
        if self.layer != "auto":
            return self.layer
        return "block" if self.model == "efficientnet_lite0" else "head"

    @property
    def hash_methods(self) -> tuple[str, ...]:
        """The hashes this run needs: its own, or the one cnn (phash) and hybrid use."""
        if self.method in HASH_METHODS:
            return (self.method,)
        return ("phash",)

    @property
    def features(self) -> tuple[str, ...]:
        """What the store must hold for every image of this run (compat hashes are kept apart)."""
        hashes = tuple(f"hash:{m}{':compat' if self.compat else ''}" for m in self.hash_methods)
        return hashes + (("embedding",) if self.method in ("cnn", "hybrid") else ())

    def hash_array(self, method: str) -> str:
        """The store's array of ``method`` hashes on this run's pixel path."""
        return f"hashes_{method}{'_compat' if self.compat else ''}"

    @property
    def pair_rules(self):
        from imgdedup.search.rules import PairRules

        return PairRules(self.rule_max_resolution_ratio, self.rule_max_aspect_difference, self.rule_folders, self.rule_ignore)

    @property
    def verify_settings(self):
        from imgdedup.search.verify import VerifySettings

        return VerifySettings(aligned=self.verify_aligned, colour=self.verify_colour, inliers=self.verify_inliers)

    @property
    def uses_embeddings(self) -> bool:
        return "embedding" in self.features


def validate_config(config: Config) -> None:
    """Raise :class:`ConfigError` naming the first invalid setting."""
    if config.method not in METHODS:
        raise ConfigError(f"`method` must be one of {', '.join(METHODS)}, got {config.method!r}")
    if not _is_int(config.threshold) or not 0 <= config.threshold <= 64:
        raise ConfigError(f"`threshold` must be an int in 0..64 for hash methods, got {config.threshold!r}")
    for name in ("min_similarity", "hybrid_floor"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
            raise ConfigError(f"`{name}` must be a cosine similarity in -1..1, got {value!r}")
    for name, choices in (("pooling", POOLINGS), ("runtime", RUNTIMES), ("device", DEVICES), ("layer", LAYERS)):
        if getattr(config, name) not in choices:
            raise ConfigError(f"`{name}` must be one of {', '.join(choices)}, got {getattr(config, name)!r}")
    if not isinstance(config.model, str) or not config.model.strip():
        raise ConfigError(f"`model` must be a model name such as 'efficientnet_lite0' or 'torchvision:resnet50', got {config.model!r}")
    if not _is_int(config.embed_batch_size) or config.embed_batch_size < 1:
        raise ConfigError(f"`embed_batch_size` must be a positive int, got {config.embed_batch_size!r}")
    for name in ("rule_max_resolution_ratio", "rule_max_aspect_difference"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"`{name}` must be a positive number or null, got {value!r}")
    if config.rule_folders not in ("any", "same", "different"):
        raise ConfigError(f"`rule_folders` must be one of any, same, different, got {config.rule_folders!r}")
    if not isinstance(config.rule_ignore, tuple) or not all(isinstance(p, str) for p in config.rule_ignore):
        raise ConfigError(f"`rule_ignore` must be a list of glob patterns, got {config.rule_ignore!r}")
    for name in ("verify_aligned", "verify_colour"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
            raise ConfigError(f"`{name}` must be a number in -1..1, got {value!r}")
    if not _is_int(config.verify_inliers) or config.verify_inliers < 3:
        raise ConfigError(f"`verify_inliers` must be an int >= 3, got {config.verify_inliers!r}")
    if not _is_int(config.review_bits) or not 0 <= config.review_bits <= 64:
        raise ConfigError(f"`review_bits` must be an int in 0..64, got {config.review_bits!r}")
    if isinstance(config.review_similarity, bool) or not isinstance(config.review_similarity, (int, float)) or not 0 <= config.review_similarity <= 2:
        raise ConfigError(f"`review_similarity` must be a number in 0..2, got {config.review_similarity!r}")
    if config.store is not None and not isinstance(config.store, str):
        raise ConfigError(f"`store` must be a folder path, got {config.store!r}")
    if not _is_int(config.chunk_size) or config.chunk_size < 1:
        raise ConfigError(f"`chunk_size` must be a positive int, got {config.chunk_size!r}")
    if not _is_int(config.n_workers) or config.n_workers < 1:
        raise ConfigError(f"`n_workers` must be a positive int, got {config.n_workers!r}")
    if not _is_int(config.threads_per_worker) or config.threads_per_worker < 1:
        raise ConfigError(f"`threads_per_worker` must be a positive int, got {config.threads_per_worker!r}")
    if not _is_int(config.max_image_pixels) or config.max_image_pixels < 1:
        raise ConfigError(f"`max_image_pixels` must be a positive int, got {config.max_image_pixels!r}")
    if not _is_int(config.thumbnail_size) or not 16 <= config.thumbnail_size <= 1024:
        raise ConfigError(f"`thumbnail_size` must be an int in 16..1024, got {config.thumbnail_size!r}")
    if config.keep not in KEEP_POLICIES:
        raise ConfigError(f"`keep` must be one of {', '.join(KEEP_POLICIES)}, got {config.keep!r}")
    if config.address is not None and not isinstance(config.address, str):
        raise ConfigError(f"`address` must be a string like tcp://host:8786, got {config.address!r}")
    for name in ("recursive", "compat", "mirror", "grayscale", "trim", "verify"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"`{name}` must be true or false, got {getattr(config, name)!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def config_fields() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Config))


def _check_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"a configuration must be a mapping of settings, got {type(data).__name__}")
    known = set(config_fields())
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    return dict(data)


def config_from_mapping(data: Mapping[str, Any]) -> Config:
    """Build a config from a mapping, rejecting unknown keys with a clear message.

    Settings left out (or null) take their defaults; ``threshold`` and
    ``min_similarity`` the defaults of the mapping's ``method``.
    """
    return Config(**{k: v for k, v in _check_keys(data).items() if v is not None})


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or a bare name looked up as ``NAME.yaml`` among the named configs.

    A value that looks like a path (it has a folder or a ``.yaml``/``.yml`` suffix) must
    be that file: a typo in it is an error, never another file of the same name. A bare
    name is looked up in ``./configs/`` first, then in the configurations shipped with
    the package (``imgdedup.configs``), so ``--config default`` works after ``pip install``.
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        if path.is_file():
            return path
        raise ConfigError(f"configuration file {str(name_or_path)!r} not found")
    for folder in (Path.cwd() / "configs", packaged_configs_folder()):
        candidate = folder / f"{path.name}.yaml"
        if candidate.is_file():
            return candidate
    names = ", ".join(sorted(p.stem for p in packaged_configs_folder().glob("*.yaml")))
    raise ConfigError(f"configuration {str(name_or_path)!r} not found (a .yaml path, or one of: {names})")


def packaged_configs_folder() -> Path:
    """The folder of the named configurations installed with the package."""
    import importlib.resources

    return Path(str(importlib.resources.files("imgdedup.configs")))


def load_config(name_or_path: str | Path | None = None, **overrides: Any) -> Config:
    """Load a named or given YAML configuration, then apply non-None overrides.

    Per-method defaults follow the final ``method``: ``load_config(method="hybrid")``
    gets hybrid's threshold unless one is given.
    """
    import yaml

    settings: dict[str, Any] = {}
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        settings.update(_check_keys(data))
    settings.update(_check_keys({k: v for k, v in overrides.items() if v is not None}))
    return config_from_mapping(settings)
