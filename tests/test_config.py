from pathlib import Path

import pytest
import yaml

from imgdedup.config import Config, config_fields, load_config
from imgdedup.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_default_yaml_equals_config_defaults():
    """configs/default.yaml states exactly the built-in defaults."""
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert set(data) == set(config_fields())
    assert Config(**data) == Config()


def test_named_config_and_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("method: dhash\nthreshold: 6\n")
    config = load_config(path, threshold=4)
    assert (config.method, config.threshold) == ("dhash", 4)
    assert load_config("default").method == "hybrid"


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"method": "md5"}, "`method` must be one of phash, dhash, ahash, whash, cnn, hybrid, got 'md5'"),
        ({"min_similarity": 1.5}, "`min_similarity` must be a cosine similarity in -1..1, got 1.5"),
        ({"pooling": "max"}, "`pooling` must be one of avg, gem, got 'max'"),
        ({"threshold": 65}, "`threshold` must be an int in 0..64"),
        ({"threshold": True}, "`threshold` must be an int in 0..64"),
        ({"chunk_size": 0}, "`chunk_size` must be a positive int"),
        ({"recursive": "yes"}, "`recursive` must be true or false"),
    ],
)
def test_invalid_settings_are_named(changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(**changes)


def test_unknown_key_and_missing_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("thresold: 3\n")
    with pytest.raises(ConfigError, match="unknown setting.*'thresold'"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config("no-such-config")


def test_threshold_and_similarity_defaults_follow_the_method(tmp_path):
    assert (load_config(method="phash").threshold, load_config().threshold) == (10, 15)
    assert (load_config(method="cnn").min_similarity, load_config(method="hybrid").min_similarity) == (0.94, 0.975)
    assert load_config("default", method="hybrid").threshold == 15  # null in the YAML keeps the method's default
    path = tmp_path / "hybrid.yaml"
    path.write_text("method: hybrid\n")
    assert load_config(path).threshold == 15 and load_config(path, method="phash").threshold == 10
    assert load_config(path, threshold=12).threshold == 12
    assert Config(method="hybrid", min_similarity=0.9).min_similarity == 0.9
    assert (
        load_config(method="phash").replace(method="hybrid").threshold == 15
    )  # the old method's default follows the method
    assert load_config(method="phash", threshold=12).replace(method="hybrid").threshold == 12


def test_embedding_layer_auto_is_the_last_block_for_lite0_only():
    assert load_config().embed_layer == "block"
    assert load_config(model="torchvision:resnet18").embed_layer == "head"
    assert load_config(layer="head").embed_layer == "head"
    with pytest.raises(ConfigError, match="`layer` must be one of auto, head, block"):
        load_config(layer="middle")
