"""Start the real gunicorn server on 127.0.0.1 for integration tests."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``with LiveServer(models_dir, tmp_path) as server: requests.get(server.url + "/health")``."""

    def __init__(self, models_dir, workdir, workers=2, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(workdir) / f"gunicorn-{self.port}.log"
        self.env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port), "WORKERS": str(workers),
                    "MODELS_DIR": str(models_dir), "RELOAD_INTERVAL": "0.2", "LOG_LEVEL": "INFO",
                    "PROMETHEUS_MULTIPROC_DIR": str(Path(workdir) / f"metrics-{self.port}"),
                    **{k.upper(): str(v) for k, v in env.items()}}
        self.proc = None

    def __enter__(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(REPO / "service" / "gunicorn.conf.py"),
             "service:create_app()"], cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.wait_ready()
        except BaseException:  # __exit__ will not run: never leave a server behind
            self.__exit__()
            raise
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                # liveness, not readiness: tests of a server without a model start it too
                if requests.get(self.url + "/health/live", timeout=1).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or too busy booting to answer in 1 s
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not ready after {timeout}s:\n{self.read_log()}")

    def wait_models_loaded(self, timeout=30):
        """Wait until every worker has loaded a model (its log line), not just the first to answer.

        A load generator that connects earlier hands all its keep-alive
        connections to the workers that are up, and measures fewer of them.
        """
        workers = int(self.env["WORKERS"])
        deadline = time.time() + timeout
        while self.read_log().count("serving mnist version") < workers:
            if time.time() > deadline:
                raise RuntimeError(f"not every worker loaded a model in {timeout}s:\n{self.read_log()}")
            time.sleep(0.1)

    def read_log(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal the master and wait; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __exit__(self, *exc):
        self.stop()
        self.log.close()
