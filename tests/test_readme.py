"""The README's examples work verbatim: its curl lines, run with bash from the repo root,
against the real server with the committed model, answer with the documented digits."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import COMMITTED_MODEL
from tests.live_server import LiveServer

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/api.md"]
MAX_README_LINES = 250
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SAMPLE = re.compile(r"(examples/[\w.-]+)")

pytestmark = pytest.mark.integration


def code_blocks(doc):
    """``[(language, text), ...]`` of the fenced code blocks in ``doc``, in order."""
    return FENCE.findall((REPO / doc).read_text())


def shell_commands(text):
    """The commands of a shell block: a command goes on over lines ending in ``|`` or ``\\``,
    or while a single-quoted string is open (a ``python3 -c '...'`` script)."""
    commands, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        if pending.count("'") % 2 == 0 and not line.rstrip().endswith(("|", "\\")):
            commands.append(pending.strip())
            pending = ""
    return commands


def curl_lines(doc):
    """The shell commands of ``doc`` that call the service: ``curl ... localhost:8000 ...``."""
    return [command for lang, text in code_blocks(doc) if lang in ("bash", "sh")
            for command in shell_commands(text) if "curl " in command and "localhost:8000" in command]


def documented_digits():
    """``{"examples/digit.png": "7", "examples/number.png": "721", ...}`` from the table in examples/README.md."""
    rows = re.findall(r"^\| `([\w.-]+)` \| (\d+) \|", (REPO / "examples" / "README.md").read_text(), re.M)
    return dict((f"examples/{name}", digits) for name, digits in rows)


def test_readme_is_short_and_starts_with_the_run_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= MAX_README_LINES
    _, first = code_blocks("README.md")[0]
    for command in ("docker compose up -d", "python3 -m venv .venv", "pip install -e . && mnist-serve",
                    "pip install -e '.[test]' && python -m pytest"):
        assert command in first


def test_every_sample_is_documented_small_and_shipped():
    digits = documented_digits()
    assert {"examples/digit.png", "examples/photo.jpg", "examples/drawing.png"} <= set(digits)
    for path in digits:
        assert (REPO / path).stat().st_size < 50_000, path
    for doc in DOCS:
        for line in curl_lines(doc):
            assert set(SAMPLE.findall(line)) <= set(digits), (doc, line)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    tmp = tmp_path_factory.mktemp("readme")
    shutil.copytree(COMMITTED_MODEL, tmp / "models" / "mnist" / "6")
    with LiveServer(tmp / "models", tmp, api_key="", access_log="true") as live:
        live.wait_models_loaded()
        yield live


def run_verbatim(line, server):
    """Run ``line`` with bash from the repo root against ``server``; ``(stdout, new access-log lines)``."""
    seen = len(server.read_log().splitlines())
    # python3 is this interpreter, as in the activated venv the README sets up
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", line.replace("localhost:8000", f"127.0.0.1:{server.port}")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (line, done.stderr)
    access = [json.loads(entry) for entry in server.read_log().splitlines()[seen:]
              if entry.startswith("{") and '"logger":"service.access"' in entry]
    return done.stdout, access


def check_answer(line, out):
    """The body must be what the route promises, with each posted sample's documented digit."""
    expected = [documented_digits()[path] for path in SAMPLE.findall(line)]
    path = re.search(r"localhost:8000(\S*)", line).group(1)
    if path == "/predict":
        assert [str(p["digit"]) for p in json.loads(out)["predictions"]] == expected
        assert all(p["status"] == "ok" for p in json.loads(out)["predictions"])
    elif path == "/read":
        assert [r["text"] for r in json.loads(out)["readings"]] == expected
    elif path.endswith("/infer"):
        labels = {o["name"]: o["data"] for o in json.loads(out)["outputs"]}["label"]
        assert [str(label) for label in labels] == expected
    elif path == "/health":
        assert json.loads(out)["status"] == "ok"
    elif path.startswith("/v2/models/"):
        assert json.loads(out)["name"] == "mnist"
    elif path == "/metrics":
        assert re.search(r"^mnist_images_predicted_total \d", out, re.M)
    elif path == "/openapi.json":  # the script prints the described paths
        assert "'/predict'" in out and "'/v2/models/{name}/infer'" in out
    else:
        pytest.fail(f"no check for {line!r}: add one here")


@pytest.mark.parametrize("doc", DOCS)
def test_curl_examples_answer_as_documented(doc, server):
    lines = curl_lines(doc)
    assert lines, f"no curl examples in {doc}"
    for line in lines:
        out, access = run_verbatim(line, server)
        assert access and all(a["status"] == 200 for a in access), (line, access)
        check_answer(line, out)
