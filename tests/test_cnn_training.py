"""A small convolutional network learns real MNIST digits in seconds, through the trainer's own builder."""
from dataclasses import replace

import numpy as np
import pytest

from trainer import augment
from trainer.data import load_mnist
from trainer.presets import preset
from trainer.train import build_network


def test_a_tiny_cnn_learns_a_real_subset_of_mnist(mnist_dir):
    mnist = load_mnist(mnist_dir)
    x = mnist.x_train[:5000].reshape(-1, 784).astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[mnist.y_train[:5000]]
    x_test = mnist.x_test[:1000].reshape(-1, 784).astype(np.float32) / 255
    cfg = preset("cnn", conv=((8, 3),), hidden=(32,), epochs=4, lr=3e-3, augment="none")
    rng = np.random.default_rng(0)
    net = build_network(cfg, rng)
    net.fit(x, y, epochs=cfg.epochs, batch_size=64, lr=cfg.lr, optimizer="adam", schedule="cosine", rng=rng)
    assert net.accuracy(x_test, mnist.y_test[:1000]) > 0.93  # 94-96% over seeds 0-2
    # inference mode: batch norm uses its running statistics, so one image alone gets the batch's answer
    np.testing.assert_allclose(net.predict_proba(x_test[:1]), net.predict_proba(x_test[:50])[:1], rtol=1e-5)


def test_the_cnn_preset_builds_the_documented_network():
    net = build_network(preset("cnn"), np.random.default_rng(0))
    kinds = [layer.describe()["type"] for layer in net.layers]
    assert kinds == ["reshape", "conv2d", "batchnorm", "activation",  # the first convolution strides
                     "conv2d", "maxpool2d", "batchnorm", "activation", "flatten",
                     "dense", "batchnorm", "activation", "dense", "activation"]
    assert net.predict_proba(np.zeros((2, 784), np.float32)).shape == (2, 10)


def test_a_strided_block_shrinks_the_image_by_its_stride_instead_of_a_pool(tmp_path):
    from neuralnet.model_io import load_version, save_version

    net = build_network(preset("cnn", conv=((8, 5, 2), (6, 3)), hidden=(16,)), np.random.default_rng(0))
    kinds = [layer.describe()["type"] for layer in net.layers]
    assert kinds[:9] == ["reshape", "conv2d", "batchnorm", "activation",
                         "conv2d", "maxpool2d", "batchnorm", "activation", "flatten"]
    assert net.layers[1].describe()["stride"] == 2 and net.layers[4].describe()["stride"] == 1
    assert net.layers[9].W.shape == (7 * 7 * 6, 16)  # 28 -> 14 by the stride, 14 -> 7 by the pool
    # the model format carries the stride: the loaded network answers bit for bit the same
    x = np.random.default_rng(1).random((5, 784), dtype=np.float32)
    loaded, _ = load_version(save_version(net, {"name": "m"}, tmp_path, "m"))
    assert np.array_equal(loaded.predict_proba(x), net.predict_proba(x))


def test_augmenters_keep_float32_and_the_range():
    x = np.random.default_rng(0).random((16, 784), dtype=np.float32)
    for name, f in augment.AUGMENTERS.items():
        if f is not None:
            out = f(x, np.random.default_rng(1))
            assert out.dtype == np.float32 and out.shape == x.shape, name  # float64 would double training time
            assert out.min() >= 0 and out.max() <= 1 + 1e-6, name


def test_stroke_width_thickens_and_thins():
    x = np.zeros((2, 28, 28), np.float32)
    x[:, 10:18, 13:15] = 1  # a bar two pixels wide
    out = augment.stroke_width(x.reshape(2, 784), np.array([1, -1], np.float32)).reshape(2, 28, 28)
    assert out[0].sum() > x[0].sum() and out[1].sum() < x[1].sum()


def test_the_ablation_walks_from_the_notebook_through_the_mlp_to_the_cnn_preset():
    from benchmarks.ablation import configs

    rows = {name: cfg for name, _, cfg in configs()}
    assert replace(rows["notebook"], preset="notebook") == preset("notebook")
    assert replace(rows["shift"], preset="mlp") == preset("mlp")
    assert replace(rows["batch-64"], preset="cnn") == preset("cnn") == preset("default")


def test_forward_cost_times_trained_and_untrained_networks_side_by_side(capsys):
    from benchmarks.forward_cost import main
    from tests.helpers import COMMITTED_MLP

    main(["--versions", str(COMMITTED_MLP), "--conv", "32:5:2,48:3", "--hidden", "128", "--rounds", "1",
          "--calls", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][2:]
    assert len(rows) == 2
    assert rows[0].startswith(f"| {COMMITTED_MLP} | 5.1 | ") and rows[0].endswith(" | 100% |")
    # 32 5x5 filters, 48 3x3x32 filters, 7*7*48 -> 128 -> 10, their biases and the batch norms' scales
    assert rows[1].startswith("| conv 32:5:2,48:3, dense 128 | 1.3 | ")


@pytest.mark.parametrize("n, batch, count", [(55_000, 128, 10), (1_000, 128, 3), (300, 128, 10)])
def test_torch_compare_turns_cover_an_epoch_once_in_whole_batches(n, batch, count):
    from benchmarks.torch_compare import segments

    turns = segments(n, batch, count, np.random.default_rng(0))
    assert len(turns) == min(count, -(-n // batch))
    assert sorted(np.concatenate(turns)) == list(range(n))  # every sample once
    assert all(len(t) % batch == 0 for t in turns[:-1])  # only the last turn may end in a short batch
