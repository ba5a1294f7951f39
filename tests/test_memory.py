"""Memory is bounded by the limits: the worst legal batches keep a worker under 512 MB, answered in time."""
import time

import pytest
import requests

from tests.live_server import LiveServer
from tests.worst_case import batch, multipart, peak_rss_mb, worker_pids

pytestmark = pytest.mark.integration

BOUND_MB = 512


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import shutil

    from tests.helpers import COMMITTED_MODEL

    root = tmp_path_factory.mktemp("memory")
    shutil.copytree(COMMITTED_MODEL, root / "models" / "mnist" / "1")
    with LiveServer(root / "models", root, workers=1) as live:  # one worker: every request lands on it
        live.wait_models_loaded()
        yield live


def post(server, images):
    body, content_type = multipart(images)
    start = time.perf_counter()
    r = requests.post(server.url + "/predict", data=body, headers={"Content-Type": content_type}, timeout=60)
    return r, time.perf_counter() - start


@pytest.mark.parametrize("kind", ["webp_rgba", "png_rgba", "tiff_16bit", "png_iccp"])
def test_the_worst_legal_batches_are_answered_within_the_memory_bound(server, kind):
    images = batch(kind)
    r, seconds = post(server, images)
    assert r.status_code == 200 and len(r.json()["predictions"]) == len(images)
    assert seconds < 30
    [pid] = worker_pids(server.proc.pid)
    assert peak_rss_mb(pid) <= BOUND_MB


def test_a_batch_over_the_pixel_limits_is_refused_before_decoding(server):
    """16 lossless WebP of 6300x6300 (1.5 kB each) took 7.4 GB when they were decoded; now it is a 413 at once."""
    [pid] = worker_pids(server.proc.pid)
    r, seconds = post(server, batch("webp_over_limit"))
    assert r.status_code == 413 and r.json()["code"] == "image_too_large"
    assert "12000000" in r.json()["error"] and seconds < 2
    assert peak_rss_mb(pid) <= BOUND_MB


def test_the_request_pixel_budget_is_summed_over_the_batch(server):
    one = batch("png_grey_bomb")[0]  # a 12 MP greyscale PNG of a few kB; five of them are over 50 MP
    r, _ = post(server, [one] * 5)
    assert r.status_code == 413 and r.json()["code"] == "too_many_pixels"
    assert "MAX_REQUEST_PIXELS" in r.json()["error"]
    assert post(server, [one] * 4)[0].status_code == 200
