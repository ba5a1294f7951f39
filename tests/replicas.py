"""Several real service instances behind the shipped nginx config, and a real Prometheus, on 127.0.0.1.

Used by tests/test_replicas.py, tests/test_deploy.py (the config) and benchmarks/replicas_bench.py:

    with Replicas(models_dir, workdir, 3) as replicas, Nginx(replicas.ports, workdir) as front:
        requests.post(front.url + "/predict", ...)

Nginx runs deploy/nginx/nginx.conf itself, changed only where a test must
differ from a deployment: the upstream lists these replicas' ports, it listens
on a free port of 127.0.0.1, and its pid and temporary files live in the test's
directory instead of /tmp.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.live_server import REPO, LiveServer, free_port

NGINX_CONF = REPO / "deploy" / "nginx" / "nginx.conf"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboard.json"
SCRAPE_JOB = "mnist-serving"  # the job name the alerts and the dashboard select


def dashboard_queries():
    """Every PromQL expression of the Grafana dashboard: panels, variables and annotations."""
    board = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    queries += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    queries += [a["expr"] for a in board["annotations"]["list"]]
    return queries


def alert_queries():
    import yaml

    return [r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def upstream_servers(conf_text):
    """``[(address, parameters), ...]`` of the ``server`` lines in the mnist_serving upstream."""
    block = re.search(r"upstream mnist_serving \{(.*?)\n    \}", conf_text, re.S).group(1)
    return re.findall(r"^\s*server\s+(\S+)\s*([^;]*);", block, re.M)


def nginx_config(ports, listen_port, workdir, model_requests=None):
    """The shipped config, its upstream pointed at ``127.0.0.1:<port>`` for each port; with
    ``model_requests``, that bound on model requests in flight instead of the shipped one."""
    params = upstream_servers(NGINX_CONF.read_text())[0][1]
    lines, in_upstream, replaced = [], False, False
    for line in NGINX_CONF.read_text().splitlines():
        if line.strip().startswith("upstream mnist_serving "):
            in_upstream = True
        elif in_upstream and line.strip() == "}":
            in_upstream = False
        elif in_upstream and re.match(r"\s*server\s", line):
            if not replaced:  # the shipped server lines, all of them, become ours
                lines += [f"        server 127.0.0.1:{port} {params};" for port in ports]
                replaced = True
            continue
        lines.append(line)
    text = "\n".join(lines) + "\n"
    text, listens = re.subn(r"^(\s*)listen \d+;", rf"\g<1>listen 127.0.0.1:{listen_port};", text, flags=re.M)
    assert replaced and listens == 1, "deploy/nginx/nginx.conf: expected an upstream mnist_serving and one listen"
    if model_requests is not None:
        text, bounds = re.subn(r"limit_conn mnist_model_requests \d+;",
                               f"limit_conn mnist_model_requests {model_requests};", text)
        assert bounds == 1, "deploy/nginx/nginx.conf: expected one limit_conn on the model routes"
    text = text.replace("/tmp/", f"{workdir}/")
    if os.geteuid() == 0:
        # as root, nginx's workers would run as nobody, who cannot enter the
        # test's private temporary directory to buffer a body
        text = "user root;\n" + text
    return text


class Replicas:
    """``n`` instances of the service (gunicorn, as mnist-serve runs it) sharing one models directory."""

    def __init__(self, models_dir, workdir, n=3, workers=1, **env):
        self.servers = [LiveServer(models_dir, workdir, workers=workers, **env) for _ in range(n)]

    @property
    def ports(self):
        return [s.port for s in self.servers]

    def __enter__(self):
        with ThreadPoolExecutor(len(self.servers)) as pool:
            started = list(pool.map(_try_enter, self.servers))
        failed = [s for s, error in zip(self.servers, started) if error is not None]
        if failed:
            self.__exit__()
            raise started[self.servers.index(failed[0])]
        for s in self.servers:
            s.wait_models_loaded()
        return self

    def __exit__(self, *exc):
        for s in self.servers:
            if s.proc is not None:
                s.__exit__()


def _try_enter(server):
    try:
        server.__enter__()
        return None
    except Exception as exc:  # reported by Replicas.__enter__, after the others are up or down
        return exc


def process_tree(pid):
    """``pid`` and its children (gunicorn's master and workers), from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return [pid, *children]


def rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(pid)


def crash(server):
    """SIGKILL a replica's master and workers at once: a crash or an OOM kill, no goodbye.

    Returns once every one of them is gone (its sockets closed): until then the
    kernel still queues connections for the replica, and requests keep reaching it.
    """
    pids = process_tree(server.proc.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.wait(10)
    deadline = time.time() + 10
    while any(_alive(pid) for pid in pids):
        if time.time() > deadline:
            raise RuntimeError(f"processes {pids} outlived SIGKILL by 10 s")
        time.sleep(0.005)


def _alive(pid):
    """Running, as opposed to gone or a zombie (whose files, sockets included, are closed)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Nginx:
    """Debian's nginx running deploy/nginx/nginx.conf in front of ``ports``; its JSON access log in ``log_path``."""

    def __init__(self, ports, workdir, model_requests=None):
        self.workdir = Path(workdir) / f"nginx-{free_port()}"
        self.workdir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = self.workdir / "nginx.conf"
        self.conf.write_text(nginx_config(ports, self.port, self.workdir, model_requests))
        self.log_path = self.workdir / "access.log"
        self.proc = None

    def __enter__(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [shutil.which("nginx") or "/usr/sbin/nginx", "-e", str(self.workdir / "error.log"), "-c", str(self.conf),
             "-g", "daemon off;"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.errors()}")
            try:
                if requests.get(self.url + "/nginx/health", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"nginx did not answer in 10 s:\n{self.errors()}")

    def errors(self):
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self):
        """Every access-log entry so far, parsed."""
        self.log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            stop(self.proc, signal.SIGQUIT)  # graceful: finish what is in flight
        self.log.close()


class Prometheus:
    """A real Prometheus scraping ``ports`` every second as job mnist-serving, with the shipped alert rules."""

    def __init__(self, ports, workdir):
        self.workdir = Path(workdir) / "prometheus"
        self.workdir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{ALERTS}']\n"
            "scrape_configs:\n"
            f"  - job_name: {SCRAPE_JOB}\n"
            f"    static_configs: [{{targets: [{targets}]}}]\n")
        self.proc = None

    def __enter__(self):
        self.log = open(self.workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        body = requests.get(url, timeout=5).json()
        if body["status"] != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def wait_for(self, check, timeout=20):
        """Poll ``check()`` (returning a value, or None to go on waiting) until it returns one."""
        deadline = time.time() + timeout
        while True:
            try:
                value = check()
                if value is not None:
                    return value
            except (requests.ConnectionError, requests.Timeout, ValueError):
                pass  # not listening yet
            if time.time() > deadline:
                raise AssertionError(f"Prometheus: no answer in {timeout} s to {check}")
            time.sleep(0.25)

    def __exit__(self, *exc):
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM)
        self.log.close()


def stop(proc, sig):
    """Send ``sig``, wait up to 10 s for ``proc`` to exit, then kill it."""
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
