"""The image and compose file, built and run for real (needs a container engine).

.ci/run prepares one (podman behind the Docker CLI) before the tests; without
an engine these tests skip and say so. Each step's time is printed (-s shows it).
"""
import io
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.live_server import REPO, free_port

pytestmark = pytest.mark.container


def engine_available():
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


if not engine_available():
    pytest.skip("no container engine answers `docker info` (CI prepares one with shared/tools/container-engine.sh)",
                allow_module_level=True)


def run(*args, env=None, timeout=600):
    started = time.time()
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"[{time.time() - started:6.1f}s] {' '.join(args)}")
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def wait_for(url, predicate, timeout=60):
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        try:
            last = requests.get(url, timeout=2)
            if predicate(last):
                return last
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never satisfied the check; last answer: {last and last.text}")


@pytest.fixture
def stack(tmp_path):
    """A compose project on a free port, serving a writable copy of models/."""
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    for path in [models, *models.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)  # the trainer runs as a non-root uid
    port = free_port()
    env = {**os.environ, "MNIST_PORT": str(port), "MODELS_HOST_DIR": str(models),
           "COMPOSE_PROJECT_NAME": f"mnist-test-{uuid.uuid4().hex[:8]}"}
    try:
        yield env, port, models
    finally:
        subprocess.run(["docker", "compose", "down", "-v", "--timeout", "5"], cwd=REPO, env=env,
                       capture_output=True, timeout=120)


def test_image_and_compose_end_to_end(stack, mnist_test):
    env, port, models = stack
    url = f"http://127.0.0.1:{port}"
    run("hadolint", "Dockerfile")
    run("docker", "compose", "config", "--quiet", env=env)
    run("docker", "compose", "build", "service", env=env)
    size = int(run("docker", "image", "inspect", "mnist-serving:latest", "--format", "{{.Size}}").strip())
    print(f"image size: {size / 1e6:.0f} MB")
    assert size <= 300e6

    run("docker", "compose", "up", "-d", "service", env=env)
    started = time.time()
    health = wait_for(url + "/health", lambda r: r.status_code == 200).json()
    print(f"[{time.time() - started:6.1f}s] /health answered 200")
    assert health["model"]["version"] == "1"

    images, labels = mnist_test
    buf = io.BytesIO()
    Image.fromarray(images[0]).save(buf, format="PNG")
    r = requests.post(url + "/predict", files={"image": ("d.png", buf.getvalue(), "image/png")}, timeout=10)
    assert r.status_code == 200 and r.json()["predictions"][0]["digit"] == int(labels[0])

    assert run("docker", "compose", "exec", "-T", "service", "id", "-u", env=env).strip() != "0"

    mnist_dir = Path(os.environ["MNIST_DIR"]).resolve()
    run("docker", "compose", "run", "--rm", "-v", f"{mnist_dir}:/data:ro", "trainer",
        "--preset", "fast", "--epochs", "1", "--no-download", env=env)
    assert (models / "mnist" / "2" / "model.npz").is_file()
    started = time.time()
    wait_for(url + "/health", lambda r: r.json().get("model", {}).get("version") == "2", timeout=30)
    print(f"[{time.time() - started:6.1f}s] the running service switched to version 2")

    started = time.time()
    run("docker", "compose", "down", env=env)
    assert time.time() - started < 30  # within stop_grace_period: gunicorn took SIGTERM as PID 1
