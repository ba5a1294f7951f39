"""The real thing: gunicorn with two workers on 127.0.0.1, driven over HTTP."""
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.client import Client, ServiceError
from tests.helpers import form, png, tiny_network, write_version
from tests.live_server import LiveServer

pytestmark = pytest.mark.integration

DIGIT = png(np.pad(np.full((16, 4), 255, np.uint8), ((6, 6), (12, 12))))


def metric(server, name, **labels):
    text = requests.get(server.url + "/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture
def server(models_dir, tmp_path):
    with LiveServer(models_dir, tmp_path) as live:
        yield live


def test_counts_add_up_across_workers(server):
    n = 120
    server.wait_models_loaded()

    def post(_):  # a new connection each, four at a time: a busy worker leaves the next accept to the other
        return requests.post(server.url + "/predict", data=DIGIT, headers={"Content-Type": "image/png"},
                             timeout=5).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(post, range(n))) == [200] * n
    assert metric(server, "mnist_http_requests_total", route="/predict", status="200") == n
    assert metric(server, "mnist_images_predicted_total") == n
    served_by = {json.loads(line)["pid"] for line in server.read_log().splitlines()
                 if '"route":"/predict"' in line}
    assert len(served_by) == 2  # both workers took part, and the counts still add up


def test_counts_survive_a_worker_crash(server):
    client = Client(server.url)
    for _ in range(10):
        client.predict(DIGIT)
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True, check=True)
    workers = [int(pid) for pid in children.stdout.split()]
    os.kill(workers[0], signal.SIGKILL)  # gunicorn replaces it
    time.sleep(1.0)
    server.wait_ready()
    for _ in range(5):
        client.predict(DIGIT)
    assert metric(server, "mnist_http_requests_total", route="/predict", status="200") == 15
    assert metric(server, "mnist_model_info", version="1") == 1


def test_hot_swap_under_load_drops_no_request(server, models_dir):
    client = Client(server.url, retries=0)
    seen, failures, stop = set(), [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                seen.add(client.predict_response([DIGIT])["model"]["version"])
            except Exception as exc:  # any failure at all is what this test looks for
                failures.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    write_version(models_dir, tiny_network(seed=7))
    deadline = time.time() + 10
    while "2" not in seen and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # both workers have had time to swap
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert seen == {"1", "2"}
    assert client.health()["model"]["version"] == "2"


def test_corrupt_version_is_skipped_while_serving(server, models_dir):
    bad = models_dir / "mnist" / "2"
    bad.mkdir()
    (bad / "model.json").write_text("{half a card")
    time.sleep(1.0)  # several poll intervals
    health = Client(server.url).health()
    assert health["status"] == "ok" and health["model"]["version"] == "1"
    assert "skipping mnist version 2" in server.read_log()


def test_sigterm_lets_in_flight_requests_finish(models_dir, tmp_path):
    """Two uploads are half sent when SIGTERM arrives: both are still read to the end and answered."""
    big = png(np.random.default_rng(0).integers(0, 256, (1500, 1500), dtype=np.uint8))
    boundary = "inflight"
    body = form([("image", (f"{i}.png", big)) for i in range(16)], boundary)
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    with LiveServer(models_dir, tmp_path, max_batch_images=64, max_upload_bytes=100_000_000) as live:
        # both workers booted: one that gets SIGTERM before it has installed gunicorn's handlers
        # misses it, and the master waits out the graceful timeout for it
        live.wait_models_loaded()
        results, half_sent, signalled = [], [threading.Event(), threading.Event()], threading.Event()

        def upload(i):
            with socket.create_connection(("127.0.0.1", live.port), timeout=60) as sock:
                sock.sendall(head + body[:len(body) // 2])
                half_sent[i].set()
                signalled.wait(30)
                sock.sendall(body[len(body) // 2:])
                response = http.client.HTTPResponse(sock)
                response.begin()
                results.append((response.status, len(json.loads(response.read())["predictions"])))

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        assert all(event.wait(30) for event in half_sent)
        started = time.time()
        live.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the workers have the signal before the rest of the bodies arrive
        signalled.set()
        for t in threads:
            t.join()
        code = live.stop()
    assert results == [(200, 16), (200, 16)]
    assert code == 0 and time.time() - started < 25


def test_client_retries_503_then_raises_service_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with LiveServer(empty, tmp_path) as live:
        assert requests.get(live.url + "/health", timeout=5).status_code == 503
        # no_model asks for Retry-After: 5; max_wait keeps this test short (and under keepalive's 5 s)
        client = Client(live.url, retries=2, backoff=0.05, max_wait=0.3)
        started = time.time()
        with pytest.raises(ServiceError) as err:
            client.predict(DIGIT)
        assert err.value.status == 503 and err.value.code == "no_model"
        assert time.time() - started >= 2 * 0.3  # it waited twice, as long as it may, for Retry-After


def test_client_sends_paths_files_and_pil_images(server, tmp_path):
    from PIL import Image

    path = tmp_path / "digit.png"
    path.write_bytes(DIGIT)
    client = Client(server.url)
    with open(path, "rb") as f:
        results = client.predict_batch([str(path), path, DIGIT, f, Image.open(path)])
    assert len({r["digit"] for r in results}) == 1 and len(results) == 5
    with pytest.raises(ServiceError) as err:
        client.predict(b"not an image")
    assert err.value.status == 400 and err.value.code == "invalid_image"


def test_keep_alive_connections_are_recycled_so_workers_share_the_load(server):
    """One pool of keep-alive connections opened at once must not pin every request on one worker."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for i in range(1, 101):
        conn.request("GET", "/health/live")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert (response.getheader("Connection") == "close") == (i == 100), i  # the 100th says goodbye
    assert response.will_close
    conn.close()

    with requests.Session() as session:  # 4 connections hammered at once: both workers end up serving
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=4)
        session.mount("http://", adapter)
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda _: session.post(server.url + "/predict", data=DIGIT, timeout=10,
                                                         headers={"Content-Type": "image/png"}).status_code,
                                  range(800)))
    assert codes == [200] * 800
    served_by = {json.loads(line)["pid"] for line in server.read_log().splitlines() if '"route":"/predict"' in line}
    assert len(served_by) == 2


def test_sigterm_answers_kept_alive_connections_with_connection_close(models_dir, tmp_path):
    """A client whose pooled connection is reused just after SIGTERM gets an answer that says
    "Connection: close", not a reset: it reconnects (to another replica) without an error."""
    with LiveServer(models_dir, tmp_path) as live:
        live.wait_models_loaded()
        conns = [http.client.HTTPConnection("127.0.0.1", live.port, timeout=10) for _ in range(4)]
        for conn in conns:  # kept alive, probably on both workers
            conn.request("GET", "/health/live")
            first = conn.getresponse()
            first.read()
            assert first.status == 200 and not first.will_close
        live.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the workers have stopped accepting; their open connections remain
        for conn in conns:
            conn.request("POST", "/predict", DIGIT, {"Content-Type": "image/png"})
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["predictions"]
            assert response.getheader("Connection") == "close"
            conn.close()
        assert live.stop() == 0


def test_nothing_is_written_to_the_home_directory(models_dir, tmp_path):
    """gunicorn 27's control socket would go to ~/.gunicorn, which a read-only container cannot create."""
    home = tmp_path / "home"
    home.mkdir()
    with LiveServer(models_dir, tmp_path, home=home) as live:
        live.wait_models_loaded()
        assert requests.get(live.url + "/health", timeout=5).status_code == 200
        log = live.read_log()
    assert list(home.iterdir()) == []
    assert "Control server" not in log and "control socket" not in log.lower()


def test_the_start_log_names_the_store_and_warns_when_it_is_empty(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with LiveServer(empty, tmp_path) as live:
        log = live.read_log()
    assert f"no versions of 'mnist' in {empty / 'mnist'}: /health will answer 503" in log
    assert '"level":"warning"' in log
