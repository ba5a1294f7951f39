"""The NumPy-only loader in models/README.md must agree with the project's own loader."""
import re
from pathlib import Path

import numpy as np

from neuralnet import Activation, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Network, Reshape
from neuralnet.model_io import load_version, save_version

README = Path(__file__).parents[1] / "models" / "README.md"


def readme_loader(version_dir):
    """Execute the README's first python block with its path pointed at ``version_dir``."""
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace = {}
    exec(block.replace('"models/mnist/6"', repr(str(version_dir))), namespace)
    return namespace["predict_proba"]


def test_readme_forward_pass_matches_load_version(tmp_path):
    rng = np.random.default_rng(0)
    net = Network()
    net.add(Dense(784, 24, rng=rng)).add(Activation("relu")).add(Dropout(0.3))
    net.add(Dense(24, 16, rng=rng)).add(Activation("tanh"))
    net.add(Dense(16, 10, rng=rng)).add(Activation("softmax"))
    card = {"input": {"scale": 1 / 255, "mean": 0.1, "std": 0.3}}
    path = save_version(net, card, tmp_path, "mnist")

    pixels = rng.integers(0, 256, size=(7, 28, 28)).astype(np.uint8)
    loaded, _ = load_version(path)
    expected = loaded.predict_proba((pixels.reshape(7, -1) / 255 - 0.1) / 0.3)
    got = readme_loader(path)(pixels)

    assert got.shape == (7, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=1e-5)


def test_readme_forward_pass_runs_a_convolutional_network(tmp_path):
    rng = np.random.default_rng(1)
    norm = BatchNorm(3)
    norm.running_mean[:], norm.running_var[:] = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    net = Network().add(Reshape((28, 28, 1))).add(Conv2D(1, 3, kernel=3, stride=2, padding=1, rng=rng))
    net.add(norm).add(Activation("relu")).add(MaxPool2D(2))  # 28 -> 14 -> 7
    net.add(Conv2D(3, 4, kernel=2, rng=rng)).add(Flatten()).add(Dense(6 * 6 * 4, 10, rng=rng))
    net.add(Activation("softmax"))
    path = save_version(net, {"input": {"scale": 1 / 255, "mean": 0.0, "std": 1.0}}, tmp_path, "mnist")
    pixels = rng.integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    loaded, _ = load_version(path)
    expected = loaded.predict_proba(pixels.reshape(5, -1).astype(np.float32) / 255)
    np.testing.assert_allclose(readme_loader(path)(pixels), expected, rtol=1e-4, atol=1e-6)
