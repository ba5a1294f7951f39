"""A full or read-only metrics directory degrades metrics, never predictions, and never crashes a worker.

The live tests mount a small tmpfs (as root, which CI is); where mounting is
not allowed they skip, and the in-process tests still simulate ENOSPC.
"""
import errno
import os
import subprocess
import time

import pytest
import requests

from service import create_app, metrics
from tests.helpers import png
from tests.live_server import LiveServer
from tests.worst_case import worker_pids

DIGIT = png(__import__("numpy").pad(__import__("numpy").full((16, 4), 255, "uint8"), ((6, 6), (12, 12))))
ROUTES = ("/predict", "/health", "/health/live", "/v2", "/v2/health/ready", "/v2/models/mnist", "/nothing")


def test_enospc_on_the_sample_files_keeps_metrics_in_memory(config, tmp_path, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    monkeypatch.setattr(metrics.values, "ValueClass", metrics.values.ValueClass)  # restored after the test
    client = create_app({**config, "prometheus_multiproc_dir": str(tmp_path)}).test_client()
    assert client.post("/predict", data=DIGIT, content_type="image/png").status_code == 200
    health = client.get("/health").get_json()
    assert health["metrics"].startswith("per-worker only") and "No space left on device" in health["metrics"]
    assert str(tmp_path) not in client.get("/health").get_data(as_text=True)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mnist_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text


def test_sample_files_are_allocated_whole_up_front(tmp_path):
    """Sparse files would be backed page by page at first write: SIGBUS on a full tmpfs."""
    assert metrics.reserve_sample_files(str(tmp_path), pid=4242) is None
    for prefix in metrics.SAMPLE_FILES:
        st = (tmp_path / f"{prefix}_4242.db").stat()
        assert st.st_size == metrics.SAMPLE_FILE_BYTES and st.st_blocks * 512 >= metrics.SAMPLE_FILE_BYTES


@pytest.fixture
def small_tmpfs(tmp_path):
    """``mount(options)`` -> a fresh tmpfs directory, unmounted after the test; skips if mounting is refused."""
    mounted = []

    def mount(options):
        where = tmp_path / f"tmpfs{len(mounted)}"
        where.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def exercise(server, rounds=5):
    """Requests on every route (new label sets, so new samples), all of which must be answered."""
    for _ in range(rounds):
        for route in ROUTES:
            if route == "/predict":
                r = requests.post(server.url + route, data=DIGIT, headers={"Content-Type": "image/png"}, timeout=5)
                assert r.status_code == 200 and len(r.json()["predictions"]) == 1
            else:
                assert requests.get(server.url + route, timeout=5).status_code in (200, 404)


@pytest.mark.integration
@pytest.mark.parametrize("state", ["full", "read-only"])
def test_a_broken_metrics_directory_degrades_metrics_only(models_dir, tmp_path, small_tmpfs, state):
    where = small_tmpfs("size=256k" if state == "full" else "ro,size=256k")
    if state == "full":
        subprocess.run(["dd", "if=/dev/zero", f"of={where / 'fill'}", "bs=4k"], capture_output=True)
    with LiveServer(models_dir, tmp_path, prometheus_multiproc_dir=where) as server:
        server.wait_models_loaded()
        pids = sorted(worker_pids(server.proc.pid))
        exercise(server)
        time.sleep(0.5)
        assert sorted(worker_pids(server.proc.pid)) == pids  # no worker died and was replaced
        health = requests.get(server.url + "/health", timeout=5).json()
        assert health["status"] == "ok" and health["metrics"].startswith("per-worker only")
        scrape = requests.get(server.url + "/metrics", timeout=5)
        assert scrape.status_code == 200 and "mnist_http_requests_total" in scrape.text
        assert server.proc.poll() is None
        log = server.read_log()
    assert log.count("metrics directory unusable") == 2  # once per worker, not per request
    assert "Traceback" not in log


@pytest.mark.integration
def test_a_healthy_metrics_directory_is_not_degraded(models_dir, tmp_path, small_tmpfs):
    where = small_tmpfs("size=16m")
    with LiveServer(models_dir, tmp_path, prometheus_multiproc_dir=where) as server:
        server.wait_models_loaded()
        exercise(server, rounds=2)
        assert requests.get(server.url + "/health", timeout=5).json()["metrics"] == "ok"
        text = requests.get(server.url + "/metrics", timeout=5).text
        # both workers' counts add up in one scrape
        assert 'mnist_http_requests_total{method="POST",route="/predict",status="200"} 2.0' in text
