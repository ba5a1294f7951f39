"""Slow clients must not starve the real server: gunicorn with two workers on 127.0.0.1.

Each test holds slow connections open (see tests/slowclient.py) and checks that
other clients are still answered, or that the server ends the slow ones at its
deadlines: the request head within ``keepalive``, a stalled body with a 408.
"""
import http.client
import json
import socket
import time

import pytest

from tests.live_server import LiveServer
from tests.slowclient import HOST, MODES, SlowClients, answered_share, digit_png, opening, probe_for

pytestmark = pytest.mark.integration

KEEPALIVE = 5            # service/gunicorn.conf.py: also the deadline for a whole request head
BODY_READ_TIMEOUT = 10   # seconds without a body byte before the request is answered 408
SLOW_CLIENTS, HOLD = 16, 6


@pytest.fixture
def server(models_dir, tmp_path):
    with LiveServer(models_dir, tmp_path) as live:
        yield live


def wait_for_close(sock, timeout):
    """Seconds until the server closes ``sock`` (EOF or reset); fails if it sends bytes or waits longer."""
    start = time.monotonic()
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        data = b""
    except TimeoutError:
        pytest.fail(f"the server still held the connection after {timeout} s")
    assert data == b"", f"expected the server to close the connection, it sent {data[:200]!r}"
    return time.monotonic() - start


@pytest.mark.parametrize("mode", MODES)
def test_other_clients_are_answered_while_slow_clients_hold_connections(server, mode):
    with SlowClients(server.port, mode, SLOW_CLIENTS) as slow:
        probes = probe_for(server.port, HOLD, digit_png())
    assert slow.failed_connects == 0  # the slow clients really were there
    failed = "; ".join(f"{p.path} {p.status} after {p.seconds:.2f} s {p.detail[:80]}" for p in probes if not p.ok)
    assert answered_share(probes) >= 0.95, f"of {len(probes)} probes these failed: {failed}"
    assert any(p.ok for p in probes if p.path == "/predict")  # ok: 200 with a "predictions" list
    assert "Traceback" not in server.read_log()


def test_a_request_head_that_stops_halfway_is_closed_within_keepalive(server):
    with socket.create_connection((HOST, server.port), timeout=2) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: the head goes on
        assert wait_for_close(sock, KEEPALIVE + 2) >= KEEPALIVE - 1


def test_a_body_that_stalls_is_answered_408_and_closed(server):
    with socket.create_connection((HOST, server.port), timeout=2) as sock:
        sock.sendall(opening("idle") + b"\x89PNG")  # 4 of the 100 bytes promised, then nothing
        start = time.monotonic()
        sock.settimeout(BODY_READ_TIMEOUT + 3)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            body, elapsed = response.read(), time.monotonic() - start
        except TimeoutError:
            pytest.fail(f"no answer {BODY_READ_TIMEOUT + 3} s after the body stalled")
        finally:
            response.close()
        assert response.status == 408, body
        assert response.getheader("Content-Type") == "application/json"
        assert response.getheader("Connection") == "close"
        answer = json.loads(body)
        assert answer["code"] == "request_timeout" and isinstance(answer["error"], str), answer
        assert BODY_READ_TIMEOUT - 1 <= elapsed <= BODY_READ_TIMEOUT + 3
        # the rest of the body never came, so the connection cannot carry another request
        wait_for_close(sock, 2)


def test_a_trickled_body_is_cut_off_at_the_body_timeout(models_dir, tmp_path):
    """A byte every half second never trips the read timeout; BODY_TIMEOUT bounds the whole body."""
    with LiveServer(models_dir, tmp_path, body_timeout=3) as live:
        with socket.create_connection((HOST, live.port), timeout=2) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                         b"Content-Length: 1000\r\n\r\n")
            start, answer = time.monotonic(), b""
            sock.settimeout(0.5)
            while time.monotonic() - start < 8 and not answer:
                try:
                    answer = sock.recv(4096)
                except TimeoutError:
                    sock.sendall(b"\0")
            elapsed = time.monotonic() - start
            sock.settimeout(2)
            try:
                while chunk := sock.recv(4096):  # the rest of the answer, until the server closes
                    answer += chunk
            except ConnectionResetError:
                # the server closed with our last trickled bytes unread, so its kernel answers
                # them with a reset: expected TCP, once the 408 is in
                pass
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"Connection: close" in head, answer[:300]
    assert json.loads(body) == {"error": "the body did not arrive within 3 s", "code": "request_timeout"}
    assert 3 <= elapsed < 4.5
