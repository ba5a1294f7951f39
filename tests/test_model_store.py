"""Hot-swap rules: the newest valid version serves; broken versions never do."""
import json
import logging
import time

import numpy as np
import pytest

from service import create_app
from service.model_store import ModelStore
from tests.helpers import tiny_network, write_version


def store_for(models_dir, **kwargs):
    store = ModelStore(models_dir, "mnist", interval=0, **kwargs)
    store.refresh()
    return store


def test_serves_the_newest_version(models_dir):
    write_version(models_dir, tiny_network(seed=1))
    assert store_for(models_dir).current.version == 2


def test_pinned_version_is_served_even_when_newer_exist(models_dir):
    write_version(models_dir)
    assert store_for(models_dir, pinned=1).current.version == 1


def test_temp_and_non_integer_directories_are_ignored(models_dir):
    (models_dir / "mnist" / ".tmp-2-abc").mkdir()
    (models_dir / "mnist" / "latest").mkdir()
    (models_dir / "mnist" / "0").mkdir()
    assert store_for(models_dir).current.version == 1


def corrupt(path, how):
    if how == "truncated_npz":
        data = (path / "model.npz").read_bytes()
        (path / "model.npz").write_bytes(data[: len(data) // 2])
    elif how == "missing_card":
        (path / "model.json").unlink()
    elif how == "bad_json":
        (path / "model.json").write_text("{not json")
    elif how == "wrong_shape":
        card = json.loads((path / "model.json").read_text())
        card["architecture"]["input_size"] = 100
        (path / "model.json").write_text(json.dumps(card))
    elif how == "not_a_digit_model":
        card = json.loads((path / "model.json").read_text())
        card["architecture"]["layers"][-2]["out"] = 3
        card["architecture"]["output_size"] = 3
        (path / "model.json").write_text(json.dumps(card))


@pytest.mark.parametrize("how", ["truncated_npz", "missing_card", "bad_json", "wrong_shape", "not_a_digit_model"])
def test_a_broken_new_version_is_skipped_and_the_old_keeps_serving(models_dir, how, caplog):
    store = store_for(models_dir)
    corrupt(write_version(models_dir), how)
    with caplog.at_level(logging.ERROR, logger="service.model_store"):
        assert store.refresh().version == 1
    assert any("skipping mnist version 2" in r.getMessage() for r in caplog.records)


def test_rejections_are_counted_in_metrics(models_dir):
    corrupt(write_version(models_dir), "bad_json")
    text = create_app({"models_dir": models_dir, "reload_interval": 0, "access_log": False}).test_client() \
        .get("/metrics").get_data(as_text=True)
    assert 'mnist_model_reloads_total{result="failure"} 1.0' in text
    assert 'mnist_model_reloads_total{result="success"} 1.0' in text
    assert 'mnist_model_info{name="mnist",version="1"} 1.0' in text


def test_broken_newest_at_startup_falls_back_to_the_previous_version(models_dir):
    corrupt(write_version(models_dir), "truncated_npz")
    assert store_for(models_dir).current.version == 1


def test_a_failed_version_is_not_retried_until_its_files_change(models_dir, monkeypatch):
    store = store_for(models_dir)
    path = write_version(models_dir)
    good_card = (path / "model.json").read_text()
    corrupt(path, "bad_json")
    calls = []
    import service.model_store as ms

    real_load = ms.load
    monkeypatch.setattr(ms, "load", lambda *a: calls.append(a) or real_load(*a))
    store.refresh()
    store.refresh()
    assert len(calls) == 1  # remembered as broken
    time.sleep(0.01)
    (path / "model.json").write_text(good_card)  # fixed in place: size/mtime change
    assert store.refresh().version == 2


def test_a_broken_version_asked_for_by_requests_is_loaded_once(models_dir, monkeypatch):
    """Requests naming a broken older version, and the poller, share one memory of the failure."""
    from service.model_store import VersionUnavailable

    rejected = []
    store = store_for(models_dir, on_reject=lambda version, reason: rejected.append(version))
    broken = write_version(models_dir)
    (broken / "model.npz").write_bytes(b"not a zip")
    write_version(models_dir, tiny_network(seed=3))
    store.refresh()
    assert store.current.version == 3 and rejected == []  # newest first: version 2 was never needed
    calls = []
    import service.model_store as ms

    real_load = ms.load
    monkeypatch.setattr(ms, "load", lambda *a: calls.append(a[1]) or real_load(*a))
    for _ in range(3):
        with pytest.raises(VersionUnavailable, match="version 2 of 'mnist' failed validation: model.npz"):
            store.version(2)
    assert calls == [2] and rejected == [2]  # one load, one rejection counted
    assert store.version(1).version == 1 and store.version(1) is store.version(1)  # loaded once, then cached
    assert calls == [2, 1]


def test_swap_replaces_a_single_reference_and_reports_it(models_dir):
    swaps = []
    store = store_for(models_dir, on_swap=lambda previous, model: swaps.append((previous, model)))
    before = store.current
    write_version(models_dir, tiny_network(seed=3))
    store.refresh()
    assert swaps[-1] == (before, store.current) and store.current.version == 2
    assert before.version == 1  # the old object is untouched: in-flight requests finish on it


def test_removing_the_newest_version_rolls_back(models_dir):
    import shutil

    store = store_for(models_dir)
    newest = write_version(models_dir, tiny_network(seed=5))
    assert store.refresh().version == 2
    shutil.rmtree(newest)  # an operator withdraws a bad release
    assert store.refresh().version == 1


def test_poller_picks_up_new_versions(models_dir):
    app = create_app({"models_dir": models_dir, "reload_interval": 0.05, "access_log": False})
    client = app.test_client()
    write_version(models_dir, tiny_network(seed=4))
    deadline = time.time() + 5
    while client.get("/health").get_json()["model"]["version"] != "2" and time.time() < deadline:
        time.sleep(0.02)
    assert client.get("/health").get_json()["model"]["version"] == "2"
    r = client.post("/predict", data=b"", content_type="image/png")
    assert r.status_code == 400


def test_self_check_refuses_a_model_that_outputs_nan(models_dir):
    net = tiny_network()
    net.dense_layers()[0].W[:] = np.float32(3e38)  # finite weights, but the products overflow to inf/nan
    write_version(models_dir, net)
    assert store_for(models_dir).current.version == 1
