"""Shared fixtures: a fresh app per test over a throwaway model store."""
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralnet import Activation, Dense, Network
from neuralnet.model_io import save_version
from service import create_app

REPO = Path(__file__).resolve().parents[1]
COMMITTED_MODEL = REPO / "models" / "mnist" / "1"


def tiny_network(seed=0):
    """784-16-10 with random weights: a valid model that loads in a millisecond."""
    rng = np.random.default_rng(seed)
    net = Network().add(Dense(784, 16, rng=rng)).add(Activation("relu"))
    return net.add(Dense(16, 10, rng=rng)).add(Activation("softmax"))


def write_version(models_dir, network=None, name="mnist", **card):
    """Write ``network`` (default: a tiny random one) as the next version; return its path."""
    card = {"loss": "softmax_cross_entropy", "metrics": {"test_accuracy": 0.5}, **card}
    return save_version(network or tiny_network(), card, models_dir, name)


def png(pixels, mode=None, fmt="PNG", **save):
    """Encode an array (or PIL image) as image bytes."""
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels))
    if mode:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


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
def mnist_test():
    """``(images (10000, 28, 28) uint8, labels (10000,))`` of the real test set, or skip."""
    from trainer.data import read_idx

    root = Path(os.environ.get("MNIST_DIR", "")).expanduser()
    images, labels = root / "t10k-images-idx3-ubyte.gz", root / "t10k-labels-idx1-ubyte.gz"
    if not os.environ.get("MNIST_DIR") or not images.exists():
        pytest.skip("MNIST_DIR not set or t10k files missing: real-digit tests need the MNIST test set")
    return read_idx(images), read_idx(labels)
