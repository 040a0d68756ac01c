"""One frozen configuration object, loaded from YAML and overridden by flags.

``configs/default.yaml`` mirrors the defaults below (a test keeps them equal), so a
user can copy it, change a value and pass ``--config``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from imgdedup.errors import ConfigError

HASH_METHODS = ("phash", "dhash", "ahash", "whash")
METHODS = HASH_METHODS + ("cnn", "hybrid")
POOLINGS = ("avg", "gem")
RUNTIMES = ("auto", "onnx", "torch")
LAYERS = ("auto", "head", "block")
DEVICES = ("auto", "cpu", "cuda")
#: How `apply` picks the file a cluster keeps (imgdedup.actions.plan applies them).
KEEP_POLICIES = ("resolution", "largest", "oldest", "newest")
FOLDER_RULES = ("any", "same", "different")
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


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a constrained setting must be, in words; pydantic ignores it, error messages use it."""

    text: str


# Constrained types, written once: the Config model, the flow's parameters (Prefect
# builds its UI form from them) and the click options (click_type) all use these.
Method = Literal[METHODS]
Threshold = Annotated[int, Field(ge=0, le=64, strict=True), Rule("an int in 0..64")]
Cosine = Annotated[float, Field(ge=-1.0, le=1.0, strict=True), Rule("a cosine similarity in -1..1")]
PositiveInt = Annotated[int, Field(ge=1, strict=True), Rule("a positive int")]
PositiveNumber = Annotated[float, Field(gt=0, strict=True), Rule("a positive number or null")]
Flag = Annotated[bool, Field(strict=True), Rule("true or false")]
FolderRule = Literal[FOLDER_RULES]


class Config(BaseModel):
    """Every setting of a run. Build with :func:`load_config`, never mutate (the model is frozen).

    Invalid settings raise :class:`ConfigError` naming the setting, the rule and the value.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Method = "hybrid"
    threshold: Threshold = None  # None: the method's default (METHOD_DEFAULTS)
    min_similarity: Cosine = None  # None: the method's default (METHOD_DEFAULTS)
    hybrid_floor: Cosine = 0.875
    model: Annotated[
        str,
        Field(strict=True, pattern=r"\S"),
        Rule("a model name such as 'efficientnet_lite0' or 'torchvision:resnet50'"),
    ] = "efficientnet_lite0"
    layer: Literal[LAYERS] = "auto"
    pooling: Literal[POOLINGS] = "gem"
    mirror: Flag = True
    grayscale: Flag = True
    trim: Flag = True
    runtime: Literal[RUNTIMES] = "auto"
    device: Literal[DEVICES] = "auto"
    embed_batch_size: PositiveInt = 32
    store: Optional[Annotated[str, Field(strict=True), Rule("a folder path")]] = None
    rule_max_resolution_ratio: Optional[PositiveNumber] = None
    rule_max_aspect_difference: Optional[PositiveNumber] = None
    rule_folders: FolderRule = "any"
    rule_ignore: Annotated[tuple[str, ...], Rule("a list of glob patterns")] = ()
    review_bits: Threshold = 2
    review_similarity: Annotated[float, Field(ge=0, le=2, strict=True), Rule("a number in 0..2")] = 0.03
    verify: Flag = True
    verify_floor: Cosine = 0.85  # hybrid with verify: pairs past the rule with cosine >= this are candidates
    verify_neighbours: PositiveInt = 3  # ... when among the 3 most similar pairs of either image
    verify_near_floor: Cosine = 0.7  # ... and pairs within `verify_near_bits` (trimmed hashes) with cosine >= this
    verify_near_bits: Threshold = 4
    verify_aligned: Cosine = 0.9
    verify_fine: Cosine = 0.85
    verify_colour: Cosine = 0.85
    verify_inliers: Annotated[int, Field(ge=3, strict=True), Rule("an int >= 3")] = 12
    verify_registered: Cosine = 0.9
    verify_blocks: Annotated[float, Field(gt=0, strict=True), Rule("a positive number")] = 1.0
    recursive: Flag = True
    compat: Flag = False
    chunk_size: PositiveInt = 2000
    n_workers: PositiveInt = 2
    threads_per_worker: PositiveInt = 1
    find_workers: Optional[PositiveInt] = None  # processes `find` reads, hashes and embeds on; None: one per core
    search_block: PositiveInt = 200_000  # most images per search partition (fewer for the workers)
    address: Optional[Annotated[str, Field(strict=True), Rule("a string like tcp://host:8786")]] = None
    max_image_pixels: PositiveInt = 178_956_970
    thumbnail_size: Annotated[int, Field(ge=16, le=1024, strict=True), Rule("an int in 16..1024")] = 160
    keep: Literal[KEEP_POLICIES] = "resolution"

    def __init__(self, **settings: Any) -> None:
        try:
            super().__init__(**settings)
        except ValidationError as exc:
            raise ConfigError(_first_error(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _method_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            if isinstance(data.get("rule_ignore"), list):  # YAML gives lists; keep the config hashable
                data["rule_ignore"] = tuple(data["rule_ignore"])
            method = data.get("method", "hybrid")
            for name in METHOD_DEFAULTS:
                if data.get(name) is None and method in METHODS:
                    data[name] = method_default(name, method)
        return data

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
        return Config(**{**self.settings(), **changes})

    def settings(self) -> dict[str, Any]:
        """Every setting by name, as :class:`Config` takes them."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    @property
    def embed_layer(self) -> str:
        """``layer`` with ``auto`` resolved: the last block for EfficientNet-Lite0, the head for other models."""
        if self.layer != "auto":
            return self.layer
        return "block" if self.model == "efficientnet_lite0" else "head"

    @property
    def hash_methods(self) -> tuple[str, ...]:
        """The whole-image hashes this run needs: its own, or phash for cnn (its distances to the keeper).

        hybrid needs none: its hashes are taken on the image as the embedder prepares it
        (``TRIMMED_HASH_ARRAYS``, written by the embed task), so its hash task decodes no pixels.
        Decoding a 2 MP JPEG even at 1/8 scale costs about as much as the embedder's own decode.
        """
        if self.method in HASH_METHODS:
            return (self.method,)
        return () if self.method == "hybrid" else ("phash",)

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

        return PairRules(
            self.rule_max_resolution_ratio, self.rule_max_aspect_difference, self.rule_folders, self.rule_ignore
        )

    @property
    def verify_settings(self):
        from imgdedup.search.verify import VerifySettings

        return VerifySettings(
            aligned=self.verify_aligned,
            fine=self.verify_fine,
            colour=self.verify_colour,
            inliers=self.verify_inliers,
            registered=self.verify_registered,
            blocks=self.verify_blocks,
        )

    @property
    def uses_embeddings(self) -> bool:
        return "embedding" in self.features


def _first_error(exc: ValidationError) -> str:
    """One line naming the first invalid setting, e.g. "`threshold` must be an int in 0..64, got 65"."""
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "configuration"
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        known = ", ".join(sorted(Config.model_fields))
        return f"unknown setting(s) {name!r}; known: {known}"
    return f"`{name}` must be {describe(name)}, got {value!r}"


def describe(name: str) -> str:
    """What setting ``name`` must be, in words (its choices, or the :class:`Rule` of its type)."""
    info = Config.model_fields[name]
    choices = literal_choices(info.annotation)
    if choices:
        return f"one of {', '.join(map(str, choices))}"
    metadata = list(info.metadata)
    for arg in get_args(info.annotation):  # Optional[Annotated[...]]
        metadata += list(getattr(arg, "__metadata__", ()))
    return next((item.text for item in metadata if isinstance(item, Rule)), "valid")


def literal_choices(annotation: Any) -> tuple:
    """The values of a ``Literal`` annotation (also inside ``Optional``), else ``()``."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    for arg in get_args(annotation):
        if get_origin(arg) is Literal:
            return get_args(arg)
    return ()


def click_type(annotation: Any):
    """The click parameter type of a constrained type above.

    Choices become ``click.Choice``; ranges stay plain ``int``/``float`` here, because
    :class:`Config` checks them once and its message names the setting and the rule.
    """
    import click

    choices = literal_choices(annotation)
    if choices:
        return click.Choice(choices)
    base = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    return {int: click.INT, float: click.FLOAT}.get(base, click.STRING)


def validate_config(config: Config) -> None:
    """Kept for callers of earlier versions: a built :class:`Config` is always valid."""
    Config(**config.settings())


def config_fields() -> tuple[str, ...]:
    return tuple(Config.model_fields)


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
