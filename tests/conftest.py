"""Shared fixtures: a fresh app per test over a throwaway model store, and the real MNIST when there is one.

Helpers that are not fixtures live in tests/helpers.py.
"""
import os
import shutil
from pathlib import Path

import pytest

from service import create_app
from tests.helpers import COMMITTED_MODEL, write_version


@pytest.fixture
def models_dir(tmp_path):
    """A model store holding version 1 of a tiny random model."""
    root = tmp_path / "models"
    write_version(root)
    return root


@pytest.fixture
def real_models_dir(tmp_path):
    """A model store holding a copy of the committed default model as version 1."""
    root = tmp_path / "models" / "mnist"
    root.mkdir(parents=True)
    shutil.copytree(COMMITTED_MODEL, root / "1")
    return root.parent


@pytest.fixture
def config(models_dir):
    return {"models_dir": models_dir, "reload_interval": 0, "access_log": False, "log_level": "WARNING"}


@pytest.fixture
def app(config):
    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def mnist_dir():
    """The real gzipped MNIST files, from $MNIST_DIR: an absolute Path to the directory holding
    all four .gz files, or skip, saying what is missing."""
    from trainer.data import FILES

    if not os.environ.get("MNIST_DIR"):
        pytest.skip("MNIST_DIR not set: these tests need the real MNIST (its four .gz files)")
    path = Path(os.environ["MNIST_DIR"]).expanduser().resolve()  # absolute: some tests symlink to these files
    missing = [f"{name}.gz" for name in FILES if not (path / f"{name}.gz").is_file()]
    if missing:
        pytest.skip(f"MNIST_DIR={path} lacks {', '.join(missing)}: these tests need the real MNIST")
    return path


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    """``(images (10000, 28, 28) uint8, labels (10000,))`` of the real test set, or skip."""
    from trainer.data import TEST_IMAGES, TEST_LABELS, read_idx

    return read_idx(mnist_dir / f"{TEST_IMAGES}.gz"), read_idx(mnist_dir / f"{TEST_LABELS}.gz")
