"""The training job on the real MNIST: accuracy, files written, the CLI, interruption."""
import json
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from trainer.__main__ import parser
from trainer.data import load_mnist
from trainer.presets import preset
from trainer.train import run

pytestmark = pytest.mark.slow


def test_short_training_beats_ninety_percent_and_writes_a_version(mnist_dir, tmp_path):
    cfg = preset("fast", epochs=1, hidden=(64,), seed=3)
    path = run(cfg, load_mnist(mnist_dir), tmp_path, "mnist")
    assert path == tmp_path / "mnist" / "1"
    card = json.loads((path / "model.json").read_text())
    assert card["metrics"]["test_accuracy"] > 0.90
    assert card["training"]["seed"] == 3 and card["training"]["hidden"] == [64]
    assert card["dataset"]["sha256"]["t10k-images-idx3-ubyte"].startswith("0fa7898d")
    confusion = card["metrics"]["confusion_matrix"]
    assert len(confusion) == 10 and sum(map(sum, confusion)) == 10000
    assert len(card["metrics"]["per_class"]["precision"]) == 10 and card["training_time_seconds"] > 0
    assert card["created_at"] and card["code_version"].startswith("0.1.0")
    with Image.open(path / "training.png") as png:
        assert png.format == "PNG" and png.size[0] > 600


def test_help_explains_every_option():
    text = parser().format_help()
    for option in ("--epochs", "--batch-size", "--lr", "--hidden", "--activation", "--loss", "--optimizer",
                   "--seed", "--val-split", "--augment", "--runs", "--preset", "--data-dir", "--models-dir",
                   "--model-name", "--schedule", "--weight-decay", "--dropout", "--init", "--conv", "--batchnorm"):
        assert option in text
    assert "notebook" in text and "800,800" in text and "32:5,64:3" in text  # the presets table


@pytest.mark.parametrize("value,expected", [("32:5,64:3", ((32, 5), (64, 3))), ("none", ()), ("8:3", ((8, 3),)),
                                            ("32:5:2,48:3", ((32, 5, 2), (48, 3)))])
def test_conv_option_parses_blocks(value, expected):
    assert parser().parse_args(["--conv", value]).conv == expected


@pytest.mark.parametrize("value", ["32", "32:0", "a:3", "32:5:0", "32:5:2:1"])
def test_conv_option_refuses_malformed_blocks(value, capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--conv", value])
    assert "FILTERS:KERNEL" in capsys.readouterr().err


def test_a_cnn_trains_from_the_command_line_and_is_served_format(mnist_dir, tmp_path):
    args = cli(tmp_path, mnist_dir, "--preset", "cnn", "--conv", "4:3", "--hidden", "16", "--epochs", "1",
               "--augment", "none")
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "conv3x3-4 bn 16-10 relu" in done.stdout
    card = json.loads((tmp_path / "mnist" / "1" / "model.json").read_text())
    assert [layer["type"] for layer in card["architecture"]["layers"]][:4] == ["reshape", "conv2d", "maxpool2d",
                                                                               "batchnorm"]
    assert card["training"]["conv"] == [[4, 3]] and card["training"]["preset"] == "cnn"
    assert card["metrics"]["test_accuracy"] > 0.9


def cli(tmp_path, mnist_dir, *args):
    return [sys.executable, "-m", "trainer", "--data-dir", str(mnist_dir), "--models-dir", str(tmp_path),
            "--no-download", *args]


def test_cli_runs_seeds_reports_mean_and_writes_successive_versions(mnist_dir, tmp_path):
    args = cli(tmp_path, mnist_dir, "--preset", "fast", "--epochs", "1", "--hidden", "32", "--runs", "2")
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "run 1/2: test accuracy" in first.stdout and "run 2/2: test accuracy" in first.stdout
    assert "test accuracy over 2 runs:" in first.stdout and "±" in first.stdout
    assert "epoch   1/1  loss" in first.stdout and "samples/s" in first.stdout and "eta" in first.stdout
    second = subprocess.run(cli(tmp_path, mnist_dir, "--preset", "fast", "--epochs", "1", "--hidden", "16"),
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == ["1", "2"]
    card = json.loads((tmp_path / "mnist" / "1" / "model.json").read_text())
    assert [r["seed"] for r in card["runs"]] == [1, 2]


def test_cli_rejects_bad_options_without_a_traceback(tmp_path, mnist_dir):
    bad = subprocess.run(cli(tmp_path, mnist_dir, "--activation", "swish"), capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr


def test_sigterm_stops_cleanly_without_a_partial_model(mnist_dir, tmp_path):
    with subprocess.Popen(cli(tmp_path, mnist_dir, "--preset", "fast", "--epochs", "50", "--hidden", "64"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.time() + 120
        for line in proc.stdout:  # wait until training is under way
            if line.startswith("epoch") or time.time() > deadline:
                break
        proc.send_signal(signal.SIGTERM)
        err = proc.stderr.read()
        assert proc.wait(60) == 130
    assert "interrupted" in err and "no model was written" in err
    model_dir = tmp_path / "mnist"
    assert not model_dir.exists() or list(model_dir.iterdir()) == []


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only tmpfs (root writes through permission bits, not through this); skips if mounting is refused."""
    where = tmp_path / "read-only"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(where)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    yield where
    subprocess.run(["umount", str(where)], check=False)


def test_an_unwritable_models_directory_stops_the_run_before_it_starts(mnist_dir, read_only_dir):
    """The run that was lost after 19 minutes: now it fails at once, says what to change, and writes nothing."""
    started = time.time()
    done = subprocess.run(cli(read_only_dir, mnist_dir, "--preset", "fast"), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and time.time() - started < 5
    assert "cannot write model versions to" in done.stderr and "Read-only file system" in done.stderr
    assert "env UID=$(id -u) GID=$(id -g) docker compose run --rm trainer" in done.stderr
    assert "Traceback" not in done.stderr and "loading MNIST" not in done.stdout
    assert list(read_only_dir.iterdir()) == []


def test_a_download_into_an_unwritable_data_directory_is_refused_before_it_starts(tmp_path, read_only_dir):
    done = subprocess.run([sys.executable, "-m", "trainer", "--data-dir", str(read_only_dir),
                           "--models-dir", str(tmp_path / "models")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "MNIST must be downloaded, but" in done.stderr, done.stderr
    assert not (tmp_path / "models").exists()  # the models check left nothing behind either
