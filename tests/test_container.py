"""The image and compose file, built and run for real (needs a container engine).

.ci/run prepares one (podman behind the Docker CLI) before the tests; without
an engine these tests skip and say so. Each step's time is printed (-s shows it).
Podman runs no HEALTHCHECK on its own here, so the tests poll /health and run
the healthcheck commands themselves with `exec`.
"""
import json
import os
import shutil
import subprocess
import time
import tomllib
import uuid

import pytest
import requests

from neuralnet.model_io import list_versions
from tests.helpers import png
from tests.live_server import REPO, free_port

pytestmark = pytest.mark.container
IMAGE = "mnist-serving:latest"  # the tag docker-compose.yml gives its build
TRAINER_UID = "4242"            # any non-root id: the compose `user:` of the trainer


def engine_available():
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


if not engine_available():
    pytest.skip("no container engine answers `docker info` (CI prepares one with shared/tools/container-engine.sh)",
                allow_module_level=True)


def run(*args, env=None, timeout=600, check=True):
    """Run a command in the repo, print how long it took; its stdout (or the whole result)."""
    started = time.time()
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"[{time.time() - started:6.1f}s] {' '.join(args)[:160]}")
    if not check:
        return done
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def wait_for(url, predicate, timeout=60):
    """Poll ``url`` until ``predicate(response)``; print the wait; return the response."""
    started, last = time.time(), None
    while time.time() < started + timeout:
        try:
            last = requests.get(url, timeout=2)
            if predicate(last):
                print(f"[{time.time() - started:6.1f}s] waited for {url}")
                return last
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never satisfied the check; last answer: {last is not None and last.text}")


def image_healthcheck():
    """The image's HEALTHCHECK command. Podman's Docker API leaves it out of
    Config (the image has it: docker manifest format), so ask podman then."""
    config = json.loads(run("docker", "image", "inspect", IMAGE))[0]["Config"]
    if "Healthcheck" in config:
        return config["Healthcheck"]["Test"]
    assert shutil.which("podman"), f"{IMAGE} has no HEALTHCHECK: {config}"
    return json.loads(run("podman", "image", "inspect", IMAGE, "--format", "{{json .HealthCheck.Test}}"))


def predict(url, image):
    r = requests.post(url + "/predict", files={"image": ("digit.png", png(image), "image/png")}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def image():
    run("docker", "compose", "build", "service")
    return IMAGE


@pytest.fixture
def container(image):
    """``start(*env)``: the image on its own, no volumes, on a free port; removed afterwards."""
    names = []

    def start(*env):
        name, port = f"mnist-alone-{uuid.uuid4().hex[:8]}", free_port()
        names.append(name)
        env_args = [arg for pair in env for arg in ("-e", pair)]
        run("docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", *env_args, image)
        return name, f"http://127.0.0.1:{port}"

    yield start
    for name in names:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)


@pytest.fixture
def stack(tmp_path):
    """A compose project on a free port, serving a writable copy of models/ (never the repo's)."""
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    for path in [models, *models.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)  # the trainer runs as TRAINER_UID, not as us
    port = free_port()
    env = {**os.environ, "MNIST_PORT": str(port), "MODELS_HOST_DIR": str(models),
           "UID": TRAINER_UID, "GID": TRAINER_UID, "COMPOSE_PROJECT_NAME": f"mnist-test-{uuid.uuid4().hex[:8]}"}
    try:
        yield env, f"http://127.0.0.1:{port}", models
    finally:
        # --profile train: without it `down -v` leaves the trainer-only MNIST volume behind
        subprocess.run(["docker", "compose", "--profile", "train", "down", "-v", "--timeout", "5"],
                       cwd=REPO, env=env, capture_output=True, timeout=120)


def test_dockerfile_lints_clean_and_compose_file_is_valid():
    run("hadolint", "Dockerfile")
    run("docker", "compose", "config", "--quiet")


def test_image_is_small_installed_and_free_of_build_tools(image):
    size = int(run("docker", "image", "inspect", image, "--format", "{{.Size}}").strip())
    print(f"image size: {size / 1e6:.0f} MB")
    assert size <= 300e6
    # installed, not a source tree: the distribution's metadata is there and no /src was copied
    probe = ("import importlib.metadata as m, importlib.util as u, os, shutil; "
             "print(os.getuid(), shutil.which('gcc'), shutil.which('cc'), u.find_spec('pip'), "
             "os.path.exists('/root/.cache/pip'), os.path.exists('/src'), m.version('mnist-serving'), "
             "shutil.which('mnist-train') is not None)")
    out = run("docker", "run", "--rm", "--entrypoint", "python3", image, "-c", probe).split()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert out == ["10001", "None", "None", "None", "False", "False", version, "True"]


def test_image_alone_serves_its_baked_model_and_healthcheck_tells_apart(container, mnist_test):
    healthcheck = image_healthcheck()
    assert healthcheck[0] == "CMD" and "curl" not in " ".join(healthcheck)
    serving, url = container()
    health = wait_for(url + "/health", lambda r: r.status_code == 200).json()
    assert health["model"]["version"] == str(max(list_versions(REPO / "models" / "mnist")))  # the shipped CNN
    images, labels = mnist_test
    assert predict(url, images[0])["predictions"][0]["digit"] == int(labels[0])
    # the installed package carries the drawing page and the V2 route's compiled JSON libraries
    page = requests.get(url + "/", timeout=5)
    assert page.status_code == 200 and 'id="pad"' in page.text
    v2 = requests.post(url + "/v2/models/mnist/infer", timeout=10, data=json.dumps(
        {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [4, 28, 28], "data": images[:4].tolist()}]}))
    assert v2.status_code == 200, v2.text
    assert [o["data"] for o in v2.json()["outputs"] if o["name"] == "label"] == [labels[:4].tolist()]
    assert run("docker", "exec", serving, *healthcheck[1:], check=False).returncode == 0
    # gunicorn's master is PID 1 (mnist-serve execs it), so it gets docker stop's SIGTERM
    assert "gunicorn" in run("docker", "exec", serving, "cat", "/proc/1/cmdline")
    # a clean start: no control socket in ~ (gunicorn 27's default), no error or traceback in the log
    assert run("docker", "exec", serving, "test", "-e", "/home/app/.gunicorn", check=False).returncode != 0
    logs = run("docker", "logs", serving, check=False)
    assert '"level":"error"' not in logs.stdout + logs.stderr and "Traceback" not in logs.stdout + logs.stderr

    missing, url = container("MODEL_NAME=no-such-model")
    wait_for(url + "/health/live", lambda r: r.status_code == 200)
    assert requests.get(url + "/health", timeout=2).status_code == 503
    assert run("docker", "exec", missing, *healthcheck[1:], check=False).returncode != 0


def test_compose_serves_trains_hot_swaps_and_stops_gracefully(image, stack, mnist_test, mnist_dir):
    env, url, models = stack
    images, labels = mnist_test
    committed = str(max(list_versions(models / "mnist")))
    run("docker", "compose", "up", "-d", "service", env=env)
    assert wait_for(url + "/health", lambda r: r.status_code == 200).json()["model"]["version"] == committed
    answer = predict(url, images[0])
    assert answer["model"]["version"] == committed and answer["predictions"][0]["digit"] == int(labels[0])
    assert run("docker", "compose", "exec", "-T", "service", "id", "-u", env=env).strip() not in ("", "0")
    compose_check = json.loads(run("docker", "compose", "config", "--format", "json", env=env))
    healthcheck = compose_check["services"]["service"]["healthcheck"]["test"][1:]
    assert run("docker", "compose", "exec", "-T", "service", *healthcheck,
               env=env, check=False).returncode == 0

    # the real MNIST, bind-mounted over the data volume: nothing downloads
    run("docker", "compose", "run", "--rm", "-v", f"{mnist_dir}:/data:ro", "trainer",
        "--preset", "fast", "--epochs", "1", "--no-download", env=env)
    trained = str(int(committed) + 1)
    new = models / "mnist" / trained / "model.npz"
    assert new.is_file() and new.stat().st_uid == int(TRAINER_UID)
    wait_for(url + "/health", lambda r: r.json().get("model", {}).get("version") == trained, timeout=30)
    # that was one worker; the other polls the store on its own and follows within RELOAD_INTERVAL (5 s)
    deadline = time.time() + 10
    while predict(url, images[1])["model"]["version"] != trained:
        assert time.time() < deadline, "a worker still served the old version 10 s after the other swapped"
        time.sleep(0.2)
    assert all(predict(url, images[1])["model"]["version"] == trained for _ in range(8))  # new connections each

    container_id = run("docker", "compose", "ps", "-q", "service", env=env).strip()
    started = time.time()
    run("docker", "compose", "stop", "service", env=env)
    assert time.time() - started < 30  # inside stop_grace_period: no SIGKILL needed
    assert run("docker", "inspect", container_id, "--format", "{{.State.ExitCode}}").strip() == "0"


def test_compose_lb_profile_builds_nginx_and_spreads_requests_over_three_replicas(image, stack, mnist_test):
    env, _, _ = stack
    lb_port = free_port()
    env = {**env, "MNIST_LB_PORT": str(lb_port)}
    url = f"http://127.0.0.1:{lb_port}"
    images, labels = mnist_test
    run("docker", "compose", "--profile", "lb", "build", "nginx", env=env)
    try:
        run("docker", "compose", "--profile", "lb", "up", "-d", env=env)
        names = run("docker", "compose", "--profile", "lb", "ps", "-q", "service", "replica", env=env).split()
        # every replica ready before nginx sees traffic: a replica still loading its model answers
        # 503, and nginx's passive check would rightly leave it out for fail_timeout
        check = image_healthcheck()[1:]
        for name in names:
            deadline = time.time() + 60
            while run("docker", "exec", name, *check, check=False).returncode != 0:
                assert time.time() < deadline, f"{name} never became ready"
                time.sleep(0.5)
        wait_for(url + "/health", lambda r: r.status_code == 200)
        for i in range(30):
            assert predict(url, images[i])["predictions"][0]["digit"] == int(labels[i])
        served = {}
        for name in names:
            logs = run("docker", "logs", name, check=False)
            served[name] = (logs.stdout + logs.stderr).count('"path":"/predict"')
        assert len(served) == 3 and all(served.values()) and sum(served.values()) == 30, served
    finally:
        subprocess.run(["docker", "compose", "--profile", "lb", "down", "--timeout", "5"],
                       cwd=REPO, env=env, capture_output=True, timeout=120)


def test_trainer_refuses_a_models_directory_its_user_cannot_write(image, stack, tmp_path):
    """The README's lost run: the host's ./models belongs to someone else. It must fail at once, saying how.

    Run detached and inspected afterwards: this engine's attached `run` exits 0 whatever the container does.
    """
    env, _, _ = stack
    locked = tmp_path / "locked-models"
    locked.mkdir(mode=0o755)  # ours (root's); the trainer runs as TRAINER_UID
    env = {**env, "MODELS_HOST_DIR": str(locked)}
    started = time.time()
    name = run("docker", "compose", "run", "-d", "trainer", "--preset", "fast", "--no-download", env=env).split()[-1]
    try:
        while run("docker", "inspect", name, "--format", "{{.State.Status}}").strip() != "exited":
            assert time.time() - started < 60, "the trainer is still running: it did not stop at the pre-flight"
            time.sleep(0.5)
        code = run("docker", "inspect", name, "--format", "{{.State.ExitCode}}").strip()
        logs = run("docker", "logs", name, check=False)
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)
    assert code == "2", logs.stdout + logs.stderr
    output = logs.stdout + logs.stderr
    assert "cannot write model versions to /models/mnist (Permission denied)" in output
    assert "env UID=$(id -u) GID=$(id -g)" in output and "Traceback" not in output
    assert list(locked.iterdir()) == []
