"""Faults in the model store: whatever sits on disk, the service keeps serving and says what it refused.

For a version directory that is broken in any way, the store promises
(service/model_store.py, neuralnet/model_io.py, neuralnet/model_card.py):

- only that version is refused; the newest valid one serves, whether it is
  older or was written after the broken one;
- the refusal is logged once and counted once in
  ``mnist_model_reloads_total{result="failure"}`` (per process), however
  often the store rescans or a request names the version, until its files
  change;
- /health lists it under ``rejected_versions`` with a reason that names no
  filesystem path, and answers a JSON 503 ``no_model`` (never a 500) when
  nothing valid is left;
- a request naming it (``/v2/models/mnist/versions/<v>/ready``) gets a JSON
  404 ``version_not_found``, never a 500.

Names that are not versions at all (``²``, ``٣``, ``07``, a regular file) are
a different case: models/README.md says readers ignore them, so they are
neither served nor listed as rejected nor counted, even when they hold a
valid model.

The first half runs in process (create_app over a throwaway store), where
each fault costs milliseconds. The second starts the real gunicorn server
with two workers for what only processes show: every worker boots past a
broken version, a worker killed and replaced does too, and the poller picks
up a valid version written beside a broken one. Every response body, in
both halves, is checked for the temporary store's path.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import warnings

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from service.model_store import ModelStore
from service.state import state
from tests.helpers import edit_card, png, tiny_network, truncate_and_rehash, write_version
from tests.live_server import LiveServer

BROKEN_READY = "/v2/models/mnist/versions/{}/ready"


# --- ways to break a version directory --------------------------------------------------------------
#
# Each breaker takes the version directory the trainer just wrote and ``outside``, a directory beside
# the store (never inside MODELS_DIR) where it may put the targets of links. Each entry pairs a breaker
# with a regex the reason must match, so a version refused for the wrong reason fails too.

def card_edit(change):
    return lambda version, outside: edit_card(version, change)


def link_version_out(version, outside):
    """The version directory becomes a link to an intact copy of itself outside the store."""
    copy = outside / f"copy-of-{version.name}"
    shutil.copytree(version, copy)
    shutil.rmtree(version)
    version.symlink_to(copy, target_is_directory=True)


def link_file_out(filename):
    """``filename`` becomes a link to a byte-identical copy outside: only the link is wrong."""
    def breaker(version, outside):
        copy = outside / f"{version.name}-{filename}"
        shutil.copy(version / filename, copy)
        (version / filename).unlink()
        (version / filename).symlink_to(copy)
    return breaker


def replace_with_directory(filename):
    """Unreadable even to root (chmod 000 is not): a directory where the file should be."""
    def breaker(version, outside):
        (version / filename).unlink()
        (version / filename).mkdir()
    return breaker


def card_link_loop(version, outside):
    """model.json links to itself: resolving it raises, which is no ModelFormatError."""
    (version / "model.json").unlink()
    (version / "model.json").symlink_to("model.json")


REFUSED = {
    "files is a list": (card_edit(lambda c: c.update(files=[])), r"files must be an object"),
    "files entry is a list": (card_edit(lambda c: c["files"].update({"model.npz": []})),
                              r"files\.model\.npz must be an object"),
    "input is a list": (card_edit(lambda c: c.update(input=[])), r"input must be an object"),
    "metrics is a list": (card_edit(lambda c: c.update(metrics=[])), r"metrics must be an object"),
    "accuracy is 99": (card_edit(lambda c: c["metrics"].update(test_accuracy=99)),
                       r"test_accuracy must be a number in \[0, 1\]"),
    "truncated npz, checksum matching": (lambda version, outside: truncate_and_rehash(version),
                                         r"not a readable npz"),
    "card says sigmoid for relu": (card_edit(lambda c: c["architecture"]["layers"][1].update(name="sigmoid")),
                                   r"does not give the outputs recorded"),
    "version dir links outside": (link_version_out, r"links outside the model store"),
    "model.npz links outside": (link_file_out("model.npz"), r"links outside the model store"),
    "model.json links outside": (link_file_out("model.json"), r"links outside the model store"),
    "model.npz is a directory": (replace_with_directory("model.npz"), r"model\.npz is not a regular file"),
    "model.json is a directory": (replace_with_directory("model.json"), r"model\.json is not a regular file"),
    "model.json is a link loop": (card_link_loop, r"unreadable|model\.json"),
}


def copy_of_a_valid_version(name):
    """A directory called ``name`` holding a complete, valid model (which must still not be served)."""
    def make(model_dir, outside):
        shutil.copytree(write_version(outside / name, tiny_network(seed=9)), model_dir / name)
    return make


# Not versions at all: ignored, as models/README.md says, even with a valid model inside.
NOT_VERSIONS = {
    "²": copy_of_a_valid_version("²"),  # str.isdigit() is True, int() raises
    "٣": copy_of_a_valid_version("٣"),  # str.isdigit() is True, and int() says 3
    "07": copy_of_a_valid_version("07"),  # a leading zero
    # a regular file; named 9, not 2: save_version cannot write version 2 past a file called 2
    "9": lambda model_dir, outside: (model_dir / "9").write_text("a regular file, not a directory"),
}


# --- helpers ------------------------------------------------------------------------------------------

@pytest.fixture
def outside(tmp_path):
    """A directory beside the store, for the targets of links that lead out of it."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


def assert_no_path(text, tmp_path):
    """The store lives under ``tmp_path``; no response may show where."""
    for root in {str(tmp_path), str(tmp_path.resolve())}:
        assert root not in text, f"response quotes the filesystem path {root}: {text[:500]}"


def assert_clean_reason(reason, version):
    """One line, and no slash but in ``<version>/model.json`` or ``<version>/model.npz``.

    Those two relative names (which say which file of the version is at fault)
    are what the store uses for links; anything else with a slash would be a
    filesystem path.
    """
    assert reason and "\n" not in reason, reason
    assert "/" not in re.sub(rf"\b{version}/model\.(?:json|npz)\b", "", reason), reason


def get(client, url, tmp_path):
    """A GET through the test client that may not be a 500 nor show a path."""
    response = client.get(url)
    assert response.status_code != 500, response.get_data(as_text=True)
    assert_no_path(response.get_data(as_text=True), tmp_path)
    return response


def reloads(text, result):
    """``mnist_model_reloads_total{result=...}`` in a /metrics body (0 when the series does not exist)."""
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "mnist_model_reloads_total" and s.labels.get("result") == result)


def app_over(config, models_dir):
    app = create_app({**config, "models_dir": models_dir})
    return app.test_client(), state(app).store


def assert_version_not_found(response):
    """A JSON 404 ``version_not_found``, from the test client or from requests."""
    body = response.get_json(silent=True) if hasattr(response, "get_json") else response.json()
    assert (response.status_code, (body or {}).get("code")) == (404, "version_not_found"), body


# --- in process: versions that are refused ------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_a_refused_version_is_skipped_counted_once_and_reported(kind, config, models_dir, outside, tmp_path,
                                                                 caplog):
    """v1 valid, v2 broken, v3 valid written later: v1 serves, then v3; v2 is refused exactly once.

    Once at start, and never again: not by the rescans that find v3, nor by
    requests that name v2 (the store remembers the failure until the files
    change), so the log and the failure counter say it once.
    """
    breaker, reason = REFUSED[kind]
    breaker(write_version(models_dir), outside)
    client, store = app_over(config, models_dir)
    assert store.current.version == 1  # the older valid version serves meanwhile

    write_version(models_dir, tiny_network(seed=1))
    for _ in range(3):
        store.refresh()
    assert store.current.version == 3  # the newer valid version is found past the broken one
    for _ in range(2):
        ready = get(client, BROKEN_READY.format(2), tmp_path)
        assert_version_not_found(ready)
        assert re.search(reason, ready.get_json()["error"])

    health = get(client, "/health", tmp_path)
    assert health.status_code == 200, health.get_json()
    body = health.get_json()
    assert body["model"]["version"] == "3"
    assert [r["version"] for r in body["rejected_versions"]] == ["2"]
    assert re.search(reason, body["rejected_versions"][0]["reason"]), body["rejected_versions"]
    assert_clean_reason(body["rejected_versions"][0]["reason"], 2)

    text = get(client, "/metrics", tmp_path).get_data(as_text=True)
    assert reloads(text, "failure") == 1
    assert reloads(text, "success") == 2  # v1 at start, v3 later
    skips = [r for r in caplog.records if r.getMessage().startswith("skipping mnist version 2 ")]
    assert len(skips) == 1, [r.getMessage() for r in skips]


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_with_only_a_refused_version_health_is_503_no_model(kind, config, outside, tmp_path):
    """Nothing valid on disk: /health says so as a JSON 503 with the refusal, not a 500."""
    breaker, reason = REFUSED[kind]
    store_dir = tmp_path / "only-broken"
    breaker(write_version(store_dir), outside)
    client, store = app_over(config, store_dir)
    for _ in range(3):
        store.refresh()

    health = get(client, "/health", tmp_path)
    assert health.status_code == 503 and health.is_json, health.get_data(as_text=True)
    body = health.get_json()
    assert body["code"] == "no_model" and body["status"] == "unavailable"
    assert [r["version"] for r in body["rejected_versions"]] == ["1"]
    assert re.search(reason, body["rejected_versions"][0]["reason"])
    assert_clean_reason(body["rejected_versions"][0]["reason"], 1)

    ready = get(client, "/v2/health/ready", tmp_path)
    assert ready.status_code == 503 and ready.get_json()["code"] == "no_model"
    assert_version_not_found(get(client, BROKEN_READY.format(1), tmp_path))
    text = get(client, "/metrics", tmp_path).get_data(as_text=True)
    assert (reloads(text, "failure"), reloads(text, "success")) == (1, 0)


# --- in process: names that are not versions ----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(NOT_VERSIONS))
def test_a_name_that_is_not_a_version_is_ignored(name, config, models_dir, outside, tmp_path):
    """Beside v1 and a v2 written later: v2 serves, and the stray entry is never loaded nor counted.

    ``٣`` matters most: int("٣") == 3, so a reader that took str.isdigit()
    for a version test would serve it as version 3, or crash on ``²``.
    """
    NOT_VERSIONS[name](models_dir / "mnist", outside)
    client, store = app_over(config, models_dir)
    assert write_version(models_dir, tiny_network(seed=1)).name == "2"
    for _ in range(3):
        store.refresh()
    assert store.current.version == 2

    health = get(client, "/health", tmp_path)
    assert health.status_code == 200 and health.get_json()["rejected_versions"] == []
    assert get(client, "/v2/models/mnist", tmp_path).get_json()["versions"] == ["1", "2"]
    assert_version_not_found(get(client, BROKEN_READY.format(urllib.parse.quote(name)), tmp_path))
    assert reloads(get(client, "/metrics", tmp_path).get_data(as_text=True), "failure") == 0


@pytest.mark.parametrize("name", sorted(NOT_VERSIONS))
def test_with_only_a_name_that_is_not_a_version_health_is_503_no_model(name, config, outside, tmp_path):
    """A store holding only a stray entry has no versions at all: a 503 that says so, nothing rejected."""
    store_dir = tmp_path / "only-strays"
    (store_dir / "mnist").mkdir(parents=True)
    NOT_VERSIONS[name](store_dir / "mnist", outside)
    client, _ = app_over(config, store_dir)

    health = get(client, "/health", tmp_path)
    assert health.status_code == 503 and health.is_json
    body = health.get_json()
    assert body["code"] == "no_model" and body["rejected_versions"] == []
    assert "no versions of 'mnist'" in body["reason"]


# --- in process: a FIFO where a file should be --------------------------------------------------------

def finishes(fn, fifo, seconds=3.0):
    """Run ``fn`` in a thread; False if it was still blocked after ``seconds``.

    A FIFO blocks whoever opens it for reading until a writer comes. If ``fn``
    is stuck there, a writer opens and closes the FIFO, so the reader sees an
    empty file and the thread ends instead of hanging the test run.
    """
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(seconds)
    if not thread.is_alive():
        return True
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # succeeds: the stuck reader holds it open
    thread.join(seconds)
    return False


@pytest.mark.parametrize("filename", ["model.npz", "model.json"])
def test_a_fifo_in_a_version_is_refused_without_blocking_the_store(filename, models_dir):
    """Anyone who can write to the store can leave a FIFO; a scan blocked on it holds the store's lock.

    Under gunicorn a worker scans in create_app, before it answers anything:
    blocked there, it never answers, not even /health/live.
    """
    broken = write_version(models_dir)
    (broken / filename).unlink()
    os.mkfifo(broken / filename)
    store = ModelStore(models_dir, "mnist", interval=0)
    assert finishes(store.refresh, broken / filename), f"the scan blocked opening a FIFO named {filename}"
    assert store.current.version == 1
    assert [r["version"] for r in store.rejected()] == ["2"]


# --- in process: a refused version, fixed in place -----------------------------------------------------

def test_a_fixed_version_is_retried_despite_a_dangling_link_beside_it(models_dir):
    """A refused version is retried when its files change, seen through their sizes and mtimes.

    Only model.json and model.npz are read, so a dangling link beside them (a
    plot linked to a file since deleted) is harmless, and must not hide the
    fix from the store either.
    """
    broken = write_version(models_dir)
    good_card = (broken / "model.json").read_text()
    (broken / "training.png").symlink_to("deleted-plot.png")
    (broken / "model.json").write_text("{not json")
    store = ModelStore(models_dir, "mnist", interval=0)
    with warnings.catch_warnings():
        # what the dangling link does to the scan is also an unclosed-iterator ResourceWarning, which
        # the "link loop" cases above report; here only the retry is judged
        warnings.simplefilter("ignore", ResourceWarning)
        assert store.refresh().version == 1
        (broken / "model.json").write_text(good_card)  # the operator fixes the card in place
        assert store.refresh().version == 2, store.rejected()


# --- live: gunicorn with two workers ------------------------------------------------------------------

DIGIT = png(np.pad(np.full((16, 4), 255, np.uint8), ((6, 6), (12, 12))))


def call(server, method, path, tmp_path, **kwargs):
    """One request on a new connection (so either worker may answer); never a 500, never a path."""
    response = requests.request(method, server.url + path, timeout=5, **kwargs)
    assert response.status_code != 500, response.text
    assert_no_path(response.text, tmp_path)
    return response


def predict(server, tmp_path):
    response = call(server, "POST", "/predict", tmp_path, data=DIGIT, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    return response.json()


def live_reloads(server, tmp_path, result):
    return reloads(call(server, "GET", "/metrics", tmp_path).text, result)


def sweep(server, tmp_path, broken):
    """Every endpoint that describes the store: none may answer 500 or show the store's path."""
    for path in ("/health", "/v2/health/ready", "/v2/models/mnist", f"/v2/models/mnist/versions/{broken}",
                 BROKEN_READY.format(broken), "/metrics"):
        call(server, "GET", path, tmp_path)
    assert_version_not_found(call(server, "GET", BROKEN_READY.format(broken), tmp_path))
    call(server, "POST", "/predict", tmp_path, data=b"not an image", headers={"Content-Type": "image/png"})


def wait_for(condition, timeout, message):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message()
        time.sleep(0.05)


def workers(server):
    out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


@pytest.fixture
def broken_newest(models_dir):
    """The store: v1 valid, v2 newer with a card whose ``files`` is a list."""
    edit_card(write_version(models_dir), lambda c: c.update(files=[]))
    return models_dir


@pytest.mark.integration
def test_every_worker_boots_past_a_broken_newest_version(broken_newest, tmp_path):
    """A fresh start must not depend on the newest version being good, in any worker."""
    with LiveServer(broken_newest, tmp_path) as server:
        server.wait_models_loaded()
        time.sleep(1.0)  # five polls at RELOAD_INTERVAL=0.2 s: none may log or count v2 again
        health = call(server, "GET", "/health", tmp_path)
        assert health.status_code == 200
        assert health.json()["model"]["version"] == "1"
        assert [r["version"] for r in health.json()["rejected_versions"]] == ["2"]
        assert predict(server, tmp_path)["model"]["version"] == "1"
        assert live_reloads(server, tmp_path, "failure") == 2  # once in each worker
        sweep(server, tmp_path, 2)
        log = server.read_log()
    assert log.count("serving mnist version 1 ") == 2
    assert log.count("skipping mnist version 2 ") == 2
    assert "Traceback" not in log


@pytest.mark.integration
def test_a_worker_killed_beside_a_broken_version_is_replaced_and_serves(broken_newest, tmp_path):
    """The replacement boots past the broken version as the first workers did; nothing else stops."""
    with LiveServer(broken_newest, tmp_path) as server:
        server.wait_models_loaded()
        before = workers(server)
        assert len(before) == 2
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        for _ in range(10):  # the other worker answers while the master replaces this one
            predict(server, tmp_path)
        wait_for(lambda: server.read_log().count("serving mnist version 1 ") == 3, 15,
                 lambda: f"no replacement worker loaded the model:\n{server.read_log()}")
        wait_for(lambda: len(workers(server)) == 2 and victim not in workers(server), 5,
                 lambda: f"workers are {workers(server)}")
        (replacement,) = workers(server) - before
        assert server.proc.poll() is None  # the master keeps running

        def replacement_served():
            predict(server, tmp_path)
            return replacement in {json.loads(line).get("pid") for line in server.read_log().splitlines()
                                   if '"route":"/predict"' in line}

        wait_for(replacement_served, 10, lambda: f"worker {replacement} never answered a prediction")
        assert live_reloads(server, tmp_path, "failure") == 3  # each of the three processes, once
        sweep(server, tmp_path, 2)
        log = server.read_log()
    assert log.count("skipping mnist version 2 ") == 3
    assert "Traceback" not in log


@pytest.mark.integration
def test_a_valid_version_written_beside_a_broken_one_is_hot_swapped(broken_newest, tmp_path):
    """A fix released as v3 while the broken v2 stays on disk is served within one poll (+2 s slack)."""
    with LiveServer(broken_newest, tmp_path) as server:
        server.wait_models_loaded()
        write_version(broken_newest, tiny_network(seed=1))
        wait_for(lambda: server.read_log().count("serving mnist version 3 ") == 2, 0.2 + 2.0,
                 lambda: f"v3 not served by both workers in time:\n{server.read_log()}")
        assert predict(server, tmp_path)["model"]["version"] == "3"
        health = call(server, "GET", "/health", tmp_path).json()
        assert health["model"]["version"] == "3"
        assert [r["version"] for r in health["rejected_versions"]] == ["2"]
        assert live_reloads(server, tmp_path, "failure") == 2  # v2 was not retried on the way to v3
        sweep(server, tmp_path, 2)
        log = server.read_log()
    assert log.count("skipping mnist version 2 ") == 2
    assert "Traceback" not in log
