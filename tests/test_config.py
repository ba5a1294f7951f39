"""Configuration: defaults, environment, overrides, and clear errors for bad values."""
from pathlib import Path

import pytest

from service import config
from service.config import Config, ConfigError


def test_environment_then_overrides():
    cfg = Config.from_env({"MODEL_NAME": "digits", "MAX_BATCH_IMAGES": "8", "ACCESS_LOG": "off",
                           "RELOAD_INTERVAL": "0.5", "API_KEY": ""}, port=9000)
    assert (cfg.model_name, cfg.max_batch_images, cfg.access_log, cfg.reload_interval) == ("digits", 8, False, 0.5)
    assert cfg.port == 9000 and cfg.api_key == "" and cfg.pinned_version is None
    assert Config.from_env({"MODEL_VERSION": "3"}).pinned_version == 3


@pytest.mark.parametrize("env,message", [
    ({"PORT": "eighty"}, "PORT='eighty' is not a valid int"),
    ({"ACCESS_LOG": "maybe"}, "ACCESS_LOG='maybe' is not a valid bool"),
    ({"MODEL_VERSION": "newest"}, "MODEL_VERSION must be 'latest' or a positive integer"),
    ({"MAX_BATCH_IMAGES": "0"}, "MAX_BATCH_IMAGES must be at least 1"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_models_dir_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "_CHECKOUT_MODELS", tmp_path / "installed-package-has-none")
    monkeypatch.chdir(tmp_path)
    assert config.default_models_dir() == Path("/models")  # the container's
    (tmp_path / "models").mkdir()
    assert config.default_models_dir() == tmp_path / "models"  # a clone's, run from its root
    assert Config.from_env({"MODELS_DIR": "/srv/m"}).models_dir == Path("/srv/m")


def test_mnist_serve_help_is_plain_text_and_takes_a_models_dir(capsys):
    from service.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "--models-dir" in text and "``" not in text
