"""Three replicas sharing one models directory behind the shipped nginx config, with a real Prometheus.

All on 127.0.0.1, each replica a real gunicorn (one worker each here: three
replicas already more than fill two cores). What holds:

- nginx spreads requests over all three, and passes request IDs through;
- a version written into the shared store is served by all three within
  RELOAD_INTERVAL + 2 s;
- a replica killed (SIGKILL) under load loses only requests it had in flight,
  and the other two take over at once;
- Prometheus scrapes all three, the sums over replicas equal the requests
  sent, the alert rules load and evaluate, and every dashboard query answers;
- the Deployment's memory request covers the RSS measured here.
"""
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import COMMITTED_MODEL, tiny_network, write_version
from tests.replicas import (
    SCRAPE_JOB,
    Nginx,
    Prometheus,
    Replicas,
    alert_queries,
    crash,
    dashboard_queries,
    process_tree,
    rss_bytes,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed (Debian package 'nginx')")]
needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None,
                                      reason="prometheus not installed (Debian package 'prometheus')")

REPO = Path(__file__).resolve().parents[1]
DIGIT = (REPO / "examples" / "digit.png").read_bytes()       # 28x28, an MNIST 7
DIGIT_V2 = (REPO / "examples" / "digit-v2.json").read_bytes()
RELOAD_INTERVAL = 1.0
# A worker's worst case with every limit spent, measured in docs/reliability.md#memory (428 MB there)
WORST_CASE_WORKER_BYTES = 450 * 10**6
PNG = {"Content-Type": "image/png"}


def store_with_committed_model(root):
    shutil.copytree(COMMITTED_MODEL, root / "models" / "mnist" / "1")
    return root / "models"


def counter(server, name, **labels):
    text = requests.get(server.url + "/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def predictions_answered(server):
    return counter(server, "mnist_http_requests_total", route="/predict", status="200")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    models = store_with_committed_model(tmp)
    with Replicas(models, tmp, 3, workers=1, reload_interval=RELOAD_INTERVAL, access_log="true") as replicas, \
            Nginx(replicas.ports, tmp) as front:
        yield SimpleNamespace(replicas=replicas.servers, front=front, models=models, tmp=tmp)


def test_requests_spread_over_all_three_and_keep_their_ids(cluster):
    before = [predictions_answered(s) for s in cluster.replicas]
    n = 90

    def post(i):
        r = requests.post(cluster.front.url + "/predict", data=DIGIT, timeout=10,
                          headers={**PNG, "X-Request-ID": f"spread-{i}"})
        return r.status_code, r.headers.get("X-Request-ID"), r.json()["predictions"][0]["digit"]

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(post, range(n)))
    assert answers == [(200, f"spread-{i}", 7) for i in range(n)]
    served = [predictions_answered(s) - b for s, b in zip(cluster.replicas, before)]
    assert sum(served) == n
    assert min(served) >= n / 3 / 2, served  # each at least half its fair share

    # nginx's log and the replicas' logs name the same request IDs, over all three upstreams
    log = [e for e in cluster.front.access_log() if e["request_id"].startswith("spread-")]
    assert {e["upstream"] for e in log} == {f"127.0.0.1:{s.port}" for s in cluster.replicas}
    seen = set()
    for server in cluster.replicas:
        for line in server.read_log().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("logger") == "service.access" and entry.get("request_id", "").startswith("spread-"):
                seen.add(entry["request_id"])
    assert seen == {f"spread-{i}" for i in range(n)}


def test_nginx_answers_its_own_errors_in_the_services_shape(cluster):
    r = requests.post(cluster.front.url + "/predict", data=b"x" * (10 * 2**20 + 1), headers=PNG, timeout=10)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large" and r.headers["X-Request-ID"]
    r = requests.get(cluster.front.url + "/metrics", timeout=5)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    # the service's own errors pass through untouched
    r = requests.post(cluster.front.url + "/predict", data=b"junk", headers=PNG, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "invalid_image"


def test_the_deployments_memory_request_covers_the_measured_rss(cluster):
    """Sized from measurement: a pod is gunicorn's master plus WORKERS workers like these."""
    deployment = yaml.safe_load((REPO / "deploy" / "kubernetes" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    workers = int(next(e["value"] for e in container["env"] if e["name"] == "WORKERS"))
    request = int(container["resources"]["requests"]["memory"].removesuffix("Mi")) * 2**20
    limit = int(container["resources"]["limits"]["memory"].removesuffix("Gi")) * 2**30
    for server in cluster.replicas:
        master, *worker_pids = process_tree(server.proc.pid)
        assert worker_pids
        pod = rss_bytes(master) + workers * max(rss_bytes(pid) for pid in worker_pids)
        print(f"replica {server.port}: master {rss_bytes(master) / 2**20:.0f} MiB, worker "
              f"{max(rss_bytes(p) for p in worker_pids) / 2**20:.0f} MiB -> pod of {workers} workers "
              f"{pod / 2**20:.0f} MiB (request {request / 2**20:.0f} MiB)")
        assert pod <= request
        assert rss_bytes(master) + workers * WORST_CASE_WORKER_BYTES <= limit


def test_a_new_version_reaches_all_three_within_the_reload_interval(cluster):
    # written by the trainer's own writer (save_version: a .tmp- directory, then one rename)
    version = write_version(cluster.models, tiny_network(seed=3)).name
    written = time.monotonic()
    took = {}
    while len(took) < 3 and time.monotonic() - written < RELOAD_INTERVAL + 2:
        for server in cluster.replicas:
            if server.port not in took:
                model = requests.get(server.url + "/health", timeout=2).json().get("model", {})
                if model.get("version") == version:
                    took[server.port] = time.monotonic() - written
        time.sleep(0.02)
    print(f"version {version} served after " + ", ".join(f"{t:.2f} s" for t in sorted(took.values())))
    assert len(took) == 3, f"only {len(took)} of 3 replicas serve version {version} after {RELOAD_INTERVAL + 2} s"
    assert max(took.values()) <= RELOAD_INTERVAL + 2
    # and every answer through the front end now comes from it
    for _ in range(9):
        r = requests.post(cluster.front.url + "/predict", data=DIGIT, headers=PNG, timeout=5)
        assert r.status_code == 200 and r.json()["model"]["version"] == version


@needs_prometheus
def test_prometheus_scrapes_all_three_and_the_sums_match(cluster):
    route = "/v2/models/<name>/infer"  # a route no other test here uses: its counts start at 0
    good, bad = 45, 6
    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(
            lambda i: requests.post(cluster.front.url + "/v2/models/mnist/infer",
                                    data=DIGIT_V2 if i < good else b"{not json", timeout=10).status_code,
            range(good + bad)))
    assert sorted(statuses) == [200] * good + [400] * bad
    direct = [counter(s, "mnist_http_requests_total", route=route) for s in cluster.replicas]
    assert sum(direct) == good + bad and min(direct) > 0

    with Prometheus([s.port for s in cluster.replicas], cluster.tmp) as prom:
        prom.wait_for(lambda: len(prom.query(f'up{{job="{SCRAPE_JOB}"}} == 1')) == 3 or None)

        def total(expr):
            result = prom.query(expr)
            return float(result[0]["value"][1]) if result else None

        def settles_at(expr, expected):
            try:
                prom.wait_for(lambda: total(expr) == expected or None, timeout=10)
            except AssertionError:
                raise AssertionError(f"{expr} = {total(expr)}, not {expected}") from None
            return True

        assert settles_at(f'sum(mnist_http_requests_total{{route="{route}"}})', good + bad)
        assert settles_at(f'sum(mnist_http_requests_total{{route="{route}",status="200"}})', good)
        assert settles_at('sum(mnist_errors_total{code="invalid_json"})', bad)
        per_replica = prom.query(f'sum by (instance) (mnist_http_requests_total{{route="{route}"}})')
        assert sorted(float(r["value"][1]) for r in per_replica) == sorted(direct)
        assert total("sum(mnist_images_predicted_total)") == sum(
            counter(s, "mnist_images_predicted_total") for s in cluster.replicas)

        # the alert rules load and evaluate without error, and nothing fires on a healthy service
        def evaluated():
            rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
            return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None

        rules = prom.wait_for(evaluated)
        assert len(rules) == len(alert_queries()) and all(r["health"] == "ok" for r in rules), rules
        # (MnistServingDown is pending until the first scrapes are in: it clears within a second)
        prom.wait_for(lambda: prom.api("alerts")["alerts"] == [] or None, timeout=10)

        # every dashboard query answers with data once a few scrapes are in
        time.sleep(3)
        empty = []
        for expr in dashboard_queries():
            expr = expr.replace("$__rate_interval", "15s").replace("$job", SCRAPE_JOB).replace("$instance", ".*")
            if expr.startswith("label_values("):
                expr = expr[len("label_values("):].rsplit(",", 1)[0]
            if not prom.query(expr) and not expr.startswith("changes("):  # model-load annotations: only after a load
                empty.append(expr)
        assert empty == []


def test_a_replica_killed_under_load_loses_at_most_its_in_flight_requests(tmp_path):
    """SIGKILL, as an OOM kill or a node loss would: no graceful shutdown to hide behind."""
    models = store_with_committed_model(tmp_path)
    clients, seconds, kill_after = 6, 4.0, 1.5
    with Replicas(models, tmp_path, 3, workers=1) as replicas, Nginx(replicas.ports, tmp_path) as front:
        victim, survivors = replicas.servers[1], [replicas.servers[0], replicas.servers[2]]
        results, lock = [], threading.Lock()
        start = time.monotonic()

        def load(c):
            session = requests.Session()
            while time.monotonic() - start < seconds:
                began = time.monotonic()
                try:
                    status = session.post(front.url + "/predict", data=DIGIT, timeout=10,
                                          headers={**PNG, "X-Request-ID": f"load-{c}-{began:.6f}"}).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                with lock:
                    results.append((began, time.monotonic(), status))

        threads = [threading.Thread(target=load, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        time.sleep(kill_after)
        before_survivors = [predictions_answered(s) for s in survivors]
        killed_from = time.monotonic()
        crash(victim)
        killed_by = time.monotonic()
        for t in threads:
            t.join(seconds + 15)
        after_survivors = [predictions_answered(s) for s in survivors]
        log = front.access_log()

    failed = [r for r in results if r[2] != 200]
    in_flight = [r for r in results if r[0] < killed_by and r[1] > killed_from]
    later = [r for r in results if r[0] > killed_by]
    print(f"{len(results)} requests, {len(failed)} failed, {len(in_flight)} in flight at the kill, "
          f"{len(later)} after it")
    # every failure was in flight when the replica died, and only the victim's: no more than the
    # clients' connections, and nginx logged each against the victim
    assert all(r in in_flight for r in failed), [(round(r[0] - killed_from, 4), round(r[1] - killed_by, 4), r[2])
                                                 for r in failed if r not in in_flight]
    assert len(failed) <= clients
    victim_address = f"127.0.0.1:{victim.port}"
    for entry in log:
        if entry["status"] != 200:
            assert entry["upstream"].split(", ")[-1] == victim_address, entry
        elif ", " in entry["upstream"]:  # retried: refused by the dead replica, answered by another
            assert entry["upstream"].split(", ")[0] == victim_address, entry
    # the other two took over at once: everything sent after the kill was answered
    assert len(later) > 50 and all(r[2] == 200 for r in later)
    assert all(a > b for a, b in zip(after_survivors, before_survivors))
