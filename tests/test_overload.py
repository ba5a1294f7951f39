"""Overload against the real gunicorn: 256 connections on 2 workers, every answer either served or a quick 503.

The load generator (tests/loadgen.py) keeps 256 keep-alive connections busy
and times each answer by status. Figures against issue 15's bar (p99 <= 100
ms) come from benchmarks/overload_bench.py (docs/reliability.md); this test
holds the behaviour, with bounds loose enough for a busy CI machine: nothing but 200s
and 503 ``overloaded`` with Retry-After, no resets or timeouts, and accepted
requests served in under half the median time of the same load without a
bound, with a shorter tail. Behind the shipped nginx, nginx refuses past its
own bound before a request reaches the service.
"""
import shutil

import pytest

from tests import loadgen
from tests.helpers import COMMITTED_MODEL, REPO
from tests.live_server import LiveServer
from tests.replicas import Nginx

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIGIT = (REPO / "examples" / "digit.png").read_bytes()
CONNECTIONS, SECONDS = 256, 4


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("overload")
    shutil.copytree(COMMITTED_MODEL, root / "models" / "mnist" / "1")
    return root


def overload(models, limit):
    with LiveServer(models / "models", models, workers=2, MAX_QUEUED_REQUESTS=limit) as server:
        server.wait_models_loaded()
        request = loadgen.png_post("127.0.0.1", server.port, DIGIT)
        result = loadgen.run("127.0.0.1", server.port, request, CONNECTIONS, SECONDS)
        metrics = __import__("requests").get(server.url + "/metrics", timeout=10).text
    return result, metrics


@pytest.fixture(scope="module")
def bounded(models):
    return overload(models, 8)


def test_every_answer_is_served_or_refused_with_retry_after(bounded):
    result, metrics = bounded
    assert result.errors == {}, result.errors  # no resets, timeouts or refused connections
    served, refused = result.count(200), result.count(503, "overloaded")
    assert served + refused == len(result.answers), {(s, c) for s, c, _, _ in result.answers}
    assert served > 100 and refused > 100, (served, refused)
    assert {ra for s, _, _, ra in result.answers if s == 503} == {"1"}
    counted = next(float(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith('mnist_errors_total{code="overloaded"}'))
    assert counted == refused
    assert 'mnist_requests_held 0.0' in metrics  # every admitted request was released


def test_the_bound_keeps_accepted_requests_fast(bounded, models):
    unbounded, _ = overload(models, 1_000_000)
    assert unbounded.count(503) == 0 and unbounded.errors == {}
    served, served_unbounded = bounded[0].latencies(200), unbounded.latencies(200)
    p50, p50_unbounded = loadgen.percentile(served, 50), loadgen.percentile(served_unbounded, 50)
    p99, p99_unbounded = loadgen.percentile(served, 99), loadgen.percentile(served_unbounded, 99)
    # the median is the steady figure on a shared machine; the tail must not be worse either
    assert p50 < p50_unbounded / 2 and p99 < p99_unbounded and p99 < 1.0, (p50, p50_unbounded, p99, p99_unbounded)
    assert loadgen.percentile(bounded[0].latencies(503), 99) < 1.0


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed (Debian package 'nginx')")
def test_nginx_refuses_past_its_bound_before_the_service_has_to(models):
    """The shipped nginx config in front: past its bound on model requests in flight, nginx
    itself answers 503 ``overloaded`` with Retry-After (its request ID: test_deploy.py), so the
    service, whose own bound is higher, never refuses; every other request is served."""
    with LiveServer(models / "models", models, workers=2) as server, \
            Nginx([server.port], models, model_requests=4) as front:
        server.wait_models_loaded()
        request = loadgen.png_post("127.0.0.1", front.port, DIGIT)
        result = loadgen.run("127.0.0.1", front.port, request, 64, 2)
        metrics = __import__("requests").get(server.url + "/metrics", timeout=10).text
        log = front.access_log()
    assert result.errors == {}, result.errors
    served, refused = result.count(200), result.count(503, "overloaded")
    assert served + refused == len(result.answers) and served > 20 and refused > 100, (served, refused)
    assert {ra for s, _, _, ra in result.answers if s == 503} == {"1"}
    assert 'mnist_errors_total{code="overloaded"}' not in metrics  # nginx refused them all
    answered = [e for e in log if e["uri"] == "/predict"]
    assert sum(e["status"] == 503 and e["upstream"] == "" for e in answered) == refused  # none reached a replica
