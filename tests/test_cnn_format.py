"""Convolutional networks on disk: the same format, round trip and refusals as an MLP."""
import numpy as np
import pytest

from neuralnet.model_io import ModelFormatError, load_verified, load_version, save_version
from tests.helpers import (
    COMMITTED_DIGITS_ONLY,
    COMMITTED_MLP,
    COMMITTED_MODEL,
    edit_card,
    rehash,
    rewrite_npz,
    tiny_cnn,
    write_version,
)


def bomb(path):
    """An npz member whose header promises a 1.6 GB array: refused from the header, before any inflating."""
    import zipfile

    with zipfile.ZipFile(path / "model.npz", "a") as zf, zf.open("huge.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (20000, 20000)})
    rehash(path)


def layer(index, **change):
    return lambda c: c["architecture"]["layers"][index].update(change)


def test_a_cnn_round_trips_bit_for_bit(tmp_path):
    net = tiny_cnn()
    path = save_version(net, {"loss": "softmax_cross_entropy"}, tmp_path, "mnist")
    loaded, card, probe_checked = load_verified(path)
    x = np.random.default_rng(1).random((33, 784), dtype=np.float32)
    assert probe_checked
    assert np.array_equal(loaded.predict_proba(x), net.predict_proba(x))
    assert [spec["type"] for spec in card["architecture"]["layers"]] == [
        "reshape", "conv2d", "maxpool2d", "batchnorm", "activation", "maxpool2d", "flatten", "dense", "activation"]
    conv, norm = card["architecture"]["layers"][1], card["architecture"]["layers"][3]
    assert conv == {"type": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": 1,
                    "weights": "W0", "bias": "b0"}
    assert norm == {"type": "batchnorm", "features": 4, "eps": 1e-5,
                    "gamma": "gamma1", "beta": "beta1", "mean": "mean1", "var": "var1"}
    with np.load(path / "model.npz", allow_pickle=False) as npz:
        assert npz["W0"].shape == (3, 3, 1, 4) and npz["W2"].shape == (36, 10)
        np.testing.assert_array_equal(npz["var1"], net.layers[3].running_var)


def test_the_committed_mlp_and_cnns_all_load_and_pass_their_probes():
    _, card, probe_checked = load_verified(COMMITTED_MLP)
    assert [spec["type"] for spec in card["architecture"]["layers"]][:2] == ["dense", "activation"]
    assert card["architecture"]["layers"][0]["weights"] == "W0" and probe_checked
    _, card, probe_checked = load_verified(COMMITTED_DIGITS_ONLY)
    assert "conv2d" in [spec["type"] for spec in card["architecture"]["layers"]] and probe_checked
    assert card["training"]["preset"] == "cnn" and card["metrics"]["test_accuracy"] >= 0.995
    assert "answers" not in card  # trained before the block existed: served with temperature 1
    _, card, probe_checked = load_verified(COMMITTED_MODEL)
    assert "conv2d" in [spec["type"] for spec in card["architecture"]["layers"]] and probe_checked
    assert card["training"]["outliers"] == 8_000 and card["metrics"]["test_accuracy"] >= 0.995
    assert card["answers"]["score"] == "top2_probability"


BROKEN = {
    "kernel size does not match the weights": (lambda p: edit_card(p, layer(1, kernel=5, padding=2)),
                                               "W0 has shape (3, 3, 1, 4); expected (5, 5, 1, 4)"),
    "filters do not match": (lambda p: edit_card(p, layer(1, filters=8)), "expected (3, 3, 1, 8)"),
    "padding as wide as the kernel": (lambda p: edit_card(p, layer(1, padding=3)), "padding must be an integer"),
    "padding is text": (lambda p: edit_card(p, layer(1, padding="1")), "padding must be an integer"),
    "stride 0": (lambda p: edit_card(p, layer(1, stride=0)), "stride must be a positive integer"),
    "huge kernel": (lambda p: edit_card(p, layer(1, kernel=10_000)), "kernel must be a positive integer up to 64"),
    "stride 2 changes the shapes after it": (lambda p: edit_card(p, layer(1, stride=2)), "W2 has shape (36, 10)"),
    "pool size changed": (lambda p: edit_card(p, layer(5, size=2)), "W2 has shape (36, 10); expected (196, 10)"),
    "pool bigger than the image": (lambda p: edit_card(p, layer(5, size=64)),
                                   "would give samples of shape (0, 0, 4): empty"),
    "missing batch-norm array": (lambda p: edit_card(p, layer(3, var="var9")), "missing array 'var9'"),
    "negative variance": (lambda p: rewrite_npz(p, var1=-np.ones(4, np.float32)), "negative variance"),
    "batch-norm scale and shift swapped": (lambda p: edit_card(p, layer(3, gamma="beta1", beta="gamma1")),
                                           "does not give the outputs recorded"),
    "layer type is a list": (lambda p: edit_card(p, layer(1, type=["conv2d"])), "type must be dense, conv2d"),
    "a big kernel and padding amplify a small file": (
        lambda p: (edit_card(p, layer(1, kernel=64, padding=63)),
                   rewrite_npz(p, W0=np.zeros((64, 64, 1, 4), np.float32))),
        "layers[1] would give samples of shape (91, 91, 4): too large to serve"),
    "reshape whose product wraps around in int64": (
        lambda p: edit_card(p, layer(0, shape=[1575593, 13512196, 15596324])), "shape must be a list"),
    "input size other than 784": (
        lambda p: edit_card(p, lambda c: c["architecture"].update(input_size=100)), "input_size must be 784"),
    "float16 weights": (lambda p: rewrite_npz(p, W0=np.zeros((3, 3, 1, 4), np.float16)), "W0 must be float32"),
    "array name with a newline": (lambda p: edit_card(p, layer(1, weights="W0\nINFO forged")),
                                  "weights must name an array"),
    "arrays that would inflate to gigabytes": (lambda p: bomb(p), "the limit is 256 MiB"),
    "eps zero": (lambda p: edit_card(p, layer(3, eps=0)), "eps must be a number in [1e-12, 1)"),
    "conv weights with NaN": (lambda p: rewrite_npz(p, W0=np.full((3, 3, 1, 4), np.nan, np.float32)),
                              "W0 contains NaN"),
    "convolution without an image shape": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"].pop(0)),
                                           "conv2d layer needs images"),
    "reshape to the wrong size": (lambda p: edit_card(p, layer(0, shape=[27, 27, 1])),
                                  "cannot reshape samples of shape (784,)"),
    "reshape with a zero": (lambda p: edit_card(p, layer(0, shape=[784, 0])), "shape must be a list"),
    "card says sigmoid for relu": (lambda p: edit_card(p, layer(4, name="sigmoid")),
                                   "does not give the outputs recorded"),
    "relu moved before the pooling": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"].insert(
        2, c["architecture"]["layers"].pop(4))), "does not give the outputs recorded"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_cnn_version_is_refused_with_a_one_line_reason(tmp_path, name):
    break_it, reason = BROKEN[name]
    path = write_version(tmp_path, tiny_cnn())
    break_it(path)
    with pytest.raises(ModelFormatError) as info:
        load_version(path)
    message = str(info.value)
    assert reason in message and "\n" not in message and str(tmp_path) not in message
