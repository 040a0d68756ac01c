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
    assert load_config("default").method == "phash"


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
