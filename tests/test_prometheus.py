"""/metrics as Prometheus itself sees it: promtool's linter and a real scrape."""
import json
import shutil
import subprocess
import time
import urllib.request

import numpy as np
import pytest
import requests

from tests.helpers import png
from tests.live_server import LiveServer, free_port

pytestmark = pytest.mark.integration
needs = pytest.mark.skipif(not (shutil.which("promtool") and shutil.which("prometheus")),
                           reason="promtool/prometheus not installed (Debian package 'prometheus')")


@pytest.fixture
def server(models_dir, tmp_path):
    with LiveServer(models_dir, tmp_path) as live:
        for _ in range(5):
            requests.post(live.url + "/predict", data=png(np.zeros((28, 28), np.uint8)),
                          headers={"Content-Type": "image/png"}, timeout=5)
        requests.post(live.url + "/predict", data=b"junk", headers={"Content-Type": "image/png"}, timeout=5)
        yield live


@needs
def test_promtool_accepts_the_exposition(server):
    text = requests.get(server.url + "/metrics", timeout=5).text
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == "" and lint.stderr.strip() == ""  # not even a lint warning


@needs
def test_a_real_prometheus_scrapes_the_service(server, tmp_path):
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: mnist\n    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n")
    with open(tmp_path / "prometheus.log", "wb") as log:
        prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        target = wait_for_target(port)
        assert target["health"] == "up", target
        value = wait_for_query(port, 'sum(mnist_http_requests_total{route="/predict",status="200"})')
        assert value == 5
        assert wait_for_query(port, 'mnist_model_info{name="mnist",version="1"}') == 1
    finally:
        prom.terminate()
        prom.wait(10)


def get_json(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.load(r)


def wait_for_target(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            targets = get_json(f"http://127.0.0.1:{port}/api/v1/targets")["data"]["activeTargets"]
            if targets and targets[0]["health"] != "unknown":
                return targets[0]
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError("Prometheus never scraped the service")


def wait_for_query(port, query, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.request.quote(query)}"
        result = get_json(url)["data"]["result"]
        if result:
            return float(result[0]["value"][1])
        time.sleep(0.25)
    raise AssertionError(f"no result for {query}")
