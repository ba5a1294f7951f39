"""Model versions on disk: round trip, atomic numbering, refusal of anything broken."""
import numpy as np
import pytest

from neuralnet import Activation, Dense, Dropout, Network
from neuralnet.model_io import ModelFormatError, list_versions, load_version, save_version
from tests.helpers import edit_card, rewrite_npz, tiny_network, truncate_and_rehash, write_version


def test_round_trip_predicts_identically(tmp_path):
    rng = np.random.default_rng(0)
    net = Network().add(Dense(784, 32, rng=rng)).add(Activation("tanh")).add(Dropout(0.2))
    net.add(Dense(32, 10, rng=rng)).add(Activation("softmax"))
    path = save_version(net, {"loss": "softmax_cross_entropy"}, tmp_path, "mnist")
    loaded, card = load_version(path)
    x = rng.random((20, 784), dtype=np.float32)
    assert np.array_equal(loaded.predict_proba(x), net.predict_proba(x))
    assert card["name"] == "mnist" and card["version"] == 1 and card["loss"] == "softmax_cross_entropy"
    assert [layer["type"] for layer in card["architecture"]["layers"]] == [
        "dense", "activation", "dropout", "dense", "activation"]
    with np.load(path / "model.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["W0", "W1", "b0", "b1", "probe_inputs", "probe_outputs"]
        assert npz["W0"].shape == (784, 32) and npz["W0"].dtype == np.float32
        # the probe batch's outputs are the network's own
        probe = npz["probe_inputs"].astype(np.float32) / 255
        assert npz["probe_inputs"].shape == (64, 784) and np.array_equal(npz["probe_outputs"], net.forward(probe))


def test_versions_count_up_and_ignore_everything_else(tmp_path):
    paths = [write_version(tmp_path) for _ in range(3)]
    assert [p.name for p in paths] == ["1", "2", "3"]
    (tmp_path / "mnist" / ".tmp-9-x").mkdir()
    (tmp_path / "mnist" / "latest").mkdir()
    (tmp_path / "mnist" / "7.bak").mkdir()
    (tmp_path / "mnist" / "12").write_text("a file, not a version")
    assert list_versions(tmp_path / "mnist") == [1, 2, 3]
    assert write_version(tmp_path).name == "4"
    assert list_versions(tmp_path / "nothing-here") == []


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_nothing_behind(tmp_path, failure):
    write_version(tmp_path)

    def broken_artifact(path):
        raise failure

    with pytest.raises(type(failure)):
        save_version(tiny_network(), {}, tmp_path, "mnist", artifacts={"plot.png": broken_artifact})
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == ["1"]


def test_artifacts_land_in_the_version_directory(tmp_path):
    path = save_version(tiny_network(), {}, tmp_path, "mnist", artifacts={"notes.txt": lambda p: p.write_text("hi")})
    assert (path / "notes.txt").read_text() == "hi"
    assert oct(path.stat().st_mode & 0o777) == "0o755"  # readable by a service running as another user


def garbage_npz(path):
    """Junk in place of the npz, with no checksum in the card to catch it first."""
    (path / "model.npz").write_bytes(b"garbage")
    edit_card(path, lambda c: c["files"]["model.npz"].pop("sha256"))


BROKEN = {
    "missing card": (lambda p: (p / "model.json").unlink(), "no model.json"),
    "missing weights": (lambda p: (p / "model.npz").unlink(), "no model.npz"),
    "invalid json": (lambda p: (p / "model.json").write_text("{oops"), "not valid JSON"),
    "wrong format": (lambda p: edit_card(p, lambda c: c.update(format="keras")), "not a mnist-serving/model card"),
    "future format": (lambda p: edit_card(p, lambda c: c.update(format_version=2)), "unsupported format_version"),
    "truncated npz": (lambda p: (p / "model.npz").write_bytes((p / "model.npz").read_bytes()[:1000]),
                      "does not match the checksum"),
    "garbage npz": (lambda p: garbage_npz(p), "not a readable npz"),
    "wrong shape": (lambda p: rewrite_npz(p, W0=np.zeros((784, 15), np.float32)), "has shape (784, 15)"),
    "nan weights": (lambda p: rewrite_npz(p, b1=np.full(10, np.nan, np.float32)), "NaN or infinity"),
    "int weights": (lambda p: rewrite_npz(p, b1=np.zeros(10, np.int32)), "b1 must be float32, not int32"),
    "missing array": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"][0].update(weights="W9")),
                      "missing array"),
    "unknown activation": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"][1].update(name="swish")),
                           "layers[1].name must be one of relu"),
    "unknown layer": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"][1].update(type="conv")),
                      "layers[1].type must be dense, conv2d, maxpool2d"),
    # the card's fields are checked for type and range before anything uses them
    "files is a list": (lambda p: edit_card(p, lambda c: c.update(files=[])), "files must be an object"),
    "files entry is a list": (lambda p: edit_card(p, lambda c: c["files"].update({"model.npz": []})),
                              "files.model.npz must be an object"),
    "checksum not hex": (lambda p: edit_card(p, lambda c: c["files"]["model.npz"].update(sha256=7)),
                         "sha256 must be 64 lower-case hex digits"),
    "input is a list": (lambda p: edit_card(p, lambda c: c.update(input=[])), "input must be an object"),
    "zero std": (lambda p: edit_card(p, lambda c: c.update(input={"std": 0})), "input.std must be positive"),
    "text mean": (lambda p: edit_card(p, lambda c: c.update(input={"mean": "0"})), "input.mean must be a finite"),
    "other scale": (lambda p: edit_card(p, lambda c: c.update(input={"scale": 1})), "input.scale must be 1/255"),
    "metrics is a list": (lambda p: edit_card(p, lambda c: c.update(metrics=[])), "metrics must be an object"),
    "accuracy over 1": (lambda p: edit_card(p, lambda c: c.update(metrics={"test_accuracy": 99.2})),
                        "test_accuracy must be a number in [0, 1]"),
    "layers not a list": (lambda p: edit_card(p, lambda c: c["architecture"].update(layers={})),
                          "architecture.layers must be a list"),
    "layer not an object": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"].insert(0, "dense")),
                            "layers[0] must be an object"),
    "width is text": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"][0].update(out="16")),
                      "layers[0].out must be a positive integer"),
    "boolean size": (lambda p: edit_card(p, lambda c: c["architecture"].update(input_size=True)),
                     "input_size must be a positive integer"),
    "dropout rate 1": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"].insert(2, {
        "type": "dropout", "rate": 1})), "rate must be a number in [0, 1)"),
    "deeply nested card": (lambda p: (p / "model.json").write_text("[" * 100_000 + "]" * 100_000),
                           "not valid JSON"),
    # a truncated npz whose checksum was updated to match: the zip reader must refuse it, not crash
    "truncated npz, checksum matching": (lambda p: truncate_and_rehash(p), "not a readable npz"),
    # a card that lies about the architecture: it loads and predicts, but not what was trained
    "card says sigmoid for relu": (lambda p: edit_card(p, lambda c: c["architecture"]["layers"][1].update(
        name="sigmoid")), "does not give the outputs recorded"),
    "card says std 2": (lambda p: edit_card(p, lambda c: c.update(input={"std": 2.0})),
                        "does not give the outputs recorded"),
    "probe outputs missing": (lambda p: rewrite_npz(p, probe_outputs=None), "malformed probe arrays"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_version_is_refused_with_a_one_line_reason(tmp_path, case):
    breaker, message = BROKEN[case]
    path = write_version(tmp_path)
    breaker(path)
    with pytest.raises(ModelFormatError) as err:
        load_version(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_pickled_array_is_never_loaded(tmp_path):
    path = write_version(tmp_path)
    rewrite_npz(path, W0=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ModelFormatError, match="not a readable npz"):
        load_version(path)


def test_a_stray_file_named_like_the_next_version_is_stepped_over(tmp_path):
    write_version(tmp_path)
    (tmp_path / "mnist" / "2").write_text("not a version: a file")
    assert write_version(tmp_path).name == "3"
