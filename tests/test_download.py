"""The downloader against real HTTP servers on 127.0.0.1 serving the real MNIST files.

Most tests leave the 9.7 MB training images in place and fetch only the other
three files; one test downloads all four and loads them.
"""
import gzip
import io
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from trainer import data
from trainer.data import FILES, SHA256, DataError
from trainer.download import DEFAULT_MIRRORS, Progress, download_mnist, fetch_mnist, resolve_mirrors

SMALL = [data.TRAIN_LABELS, data.TEST_IMAGES, data.TEST_LABELS]  # in FILES order


@dataclass
class Mirror:
    url: str
    requests: list = field(default_factory=list)  # paths asked for, in order


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the tests read the downloader's log, not the server's
        pass


class TruncatingHandler(QuietHandler):
    """Promises the whole file, sends half, hangs up: a connection dropped mid-transfer."""

    def do_GET(self):
        body = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])


@pytest.fixture
def serve():
    """serve(directory, handler) -> Mirror: an HTTP server on a free 127.0.0.1 port, stopped after the test."""
    running = []

    def start(directory, handler=QuietHandler):
        mirror = Mirror("")

        class Recording(handler):
            def do_GET(self):
                mirror.requests.append(self.path)
                super().do_GET()

        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Recording, directory=str(directory)))
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # quick shutdown
        thread.start()
        running.append((server, thread))
        mirror.url = f"http://127.0.0.1:{server.server_address[1]}/mnist"  # no trailing slash on purpose
        return mirror

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join()


def mirror_dir(path, mnist_dir, names=SMALL, corrupt=None):
    """A directory to serve, holding ``mnist/NAME.gz`` for ``names`` from MNIST_DIR;
    ``corrupt`` (name -> bytes) replaces some of them."""
    files = path / "mnist"
    files.mkdir(parents=True)
    for name in names:
        (files / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    for name, content in (corrupt or {}).items():
        (files / f"{name}.gz").unlink()
        (files / f"{name}.gz").write_bytes(content)
    return path


@pytest.fixture
def good(tmp_path, mnist_dir, serve):
    return serve(mirror_dir(tmp_path / "good", mnist_dir))


@pytest.fixture
def data_dir(tmp_path, mnist_dir):
    """An MNIST directory that already has the training images, so only SMALL is missing."""
    path = tmp_path / "data"
    path.mkdir()
    (path / f"{data.TRAIN_IMAGES}.gz").symlink_to(mnist_dir / f"{data.TRAIN_IMAGES}.gz")
    return path


@pytest.fixture
def closed_port():
    """A base URL on which nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def silent_port():
    """A base URL whose server accepts connections but never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


def assert_downloaded(data_dir, mnist_dir, names):
    """Each name landed as NAME.gz with the real content, and no temporary file is left."""
    for name in names:
        assert gzip.decompress((data_dir / f"{name}.gz").read_bytes()) == gzip.decompress(
            (mnist_dir / f"{name}.gz").read_bytes())
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(f"{n}.gz" for n in FILES)


def test_happy_path(data_dir, mnist_dir, good):
    written = download_mnist(data_dir, [good.url], timeout=5, progress=False)
    assert written == [data_dir / f"{name}.gz" for name in SMALL]
    assert_downloaded(data_dir, mnist_dir, SMALL)
    assert good.requests == [f"/mnist/{name}.gz" for name in SMALL]
    assert download_mnist(data_dir, [good.url], progress=False) == [] and len(good.requests) == 3  # nothing missing


def flip_a_byte(gz):
    """Damaged in transit: the gzip CRC no longer matches."""
    return gz[:2000] + bytes([gz[2000] ^ 0xFF]) + gz[2001:]


def forged(gz):
    """A well-formed gzip of different content: only the SHA-256 check can catch it."""
    raw = bytearray(gzip.decompress(gz))
    raw[-1] ^= 0x01
    return gzip.compress(bytes(raw), compresslevel=1)


@pytest.mark.parametrize("damage, logged", [(flip_a_byte, "not a valid gzip file"), (forged, "checksum mismatch")])
def test_corrupt_copy_falls_back_to_next_mirror(tmp_path, data_dir, mnist_dir, good, serve, caplog, damage, logged):
    bad_labels = damage((mnist_dir / f"{data.TEST_LABELS}.gz").read_bytes())
    bad = serve(mirror_dir(tmp_path / "bad", mnist_dir, corrupt={data.TEST_LABELS: bad_labels}))
    download_mnist(data_dir, [bad.url, good.url], timeout=5, progress=False)
    assert_downloaded(data_dir, mnist_dir, SMALL)
    assert good.requests == [f"/mnist/{data.TEST_LABELS}.gz"]  # only the corrupt one came from mirror 2
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"{bad.url}/{data.TEST_LABELS}.gz: {logged}")


def test_dead_and_missing_mirrors_fall_back(tmp_path, data_dir, mnist_dir, good, serve, closed_port, caplog):
    empty = serve(mirror_dir(tmp_path / "empty", mnist_dir, names=[]))
    download_mnist(data_dir, [closed_port, empty.url, good.url], timeout=5, progress=False)
    assert_downloaded(data_dir, mnist_dir, SMALL)
    lines = [r.getMessage() for r in caplog.records]
    # the refusing mirror is given up after its first failure; a 404 is per file
    assert [line for line in lines if line.startswith(closed_port)] == [
        f"{closed_port}{data.TRAIN_LABELS}.gz: unreachable ([Errno 111] Connection refused); "
        "skipping this mirror from now on"]
    assert [line for line in lines if "404" in line] == [f"{empty.url}/{n}.gz: HTTP 404 File not found" for n in SMALL]


def test_dropped_connection_falls_back(tmp_path, data_dir, mnist_dir, good, serve, caplog):
    cut = serve(mirror_dir(tmp_path / "cut", mnist_dir), handler=TruncatingHandler)
    download_mnist(data_dir, [cut.url, good.url], timeout=5, progress=False)
    assert_downloaded(data_dir, mnist_dir, SMALL)
    assert len(cut.requests) == 3 and len(good.requests) == 3
    assert all("connection closed after" in r.getMessage() for r in caplog.records) and len(caplog.records) == 3


def test_silent_mirror_times_out_and_falls_back(data_dir, mnist_dir, good, silent_port, caplog):
    download_mnist(data_dir, [silent_port, good.url], timeout=0.3, progress=False)
    assert_downloaded(data_dir, mnist_dir, SMALL)
    assert [r.getMessage() for r in caplog.records] == [
        f"{silent_port}{data.TRAIN_LABELS}.gz: no answer within 0.3 s; skipping this mirror from now on"]


def test_all_mirrors_bad_leaves_nothing_and_says_what_to_do(tmp_path, data_dir, mnist_dir, serve, closed_port):
    forged_copies = {name: forged((mnist_dir / f"{name}.gz").read_bytes()) for name in SMALL}
    bad = serve(mirror_dir(tmp_path / "bad", mnist_dir, corrupt=forged_copies))
    empty = serve(mirror_dir(tmp_path / "empty", mnist_dir, names=[]))
    with pytest.raises(DataError) as err:
        download_mnist(data_dir, [closed_port, empty.url, bad.url], timeout=5, progress=False)
    message = str(err.value)
    assert "\n" not in message and message.startswith("could not download 3 MNIST file(s) from any mirror")
    assert f"(tried {closed_port}, {empty.url}/, {bad.url}/)" in message
    listed = ", ".join(f"{n}.gz" for n in SMALL)
    assert (f"put {listed} (gzip or raw IDX) in {data_dir.resolve()}, "
            "or list reachable mirrors in $MNIST_MIRRORS") in message
    assert [p.name for p in data_dir.iterdir()] == [f"{data.TRAIN_IMAGES}.gz"]  # no partial or temporary files
    assert len(bad.requests) == 3  # every forged copy was fetched and refused


def test_mirrors_from_environment(data_dir, mnist_dir, good, closed_port, monkeypatch):
    monkeypatch.setenv("MNIST_MIRRORS", f" {closed_port} ,{good.url}\n")
    download_mnist(data_dir, timeout=5, progress=False)
    assert_downloaded(data_dir, mnist_dir, SMALL)
    assert len(good.requests) == 3


@pytest.mark.parametrize("mirrors, env, expected", [
    (None, {}, list(DEFAULT_MIRRORS)),
    (None, {"MNIST_MIRRORS": "  "}, list(DEFAULT_MIRRORS)),
    (None, {"MNIST_MIRRORS": "http://a/x,http://b/y/ file:///srv/mnist"},
     ["http://a/x/", "http://b/y/", "file:///srv/mnist/"]),
    (["http://arg"], {"MNIST_MIRRORS": "http://env/"}, ["http://arg/"]),
    ([], {"MNIST_MIRRORS": "http://env/"}, []),
])
def test_resolve_mirrors(mirrors, env, expected):
    assert resolve_mirrors(mirrors, env) == expected


def test_offline_load_says_which_files_to_put_where(tmp_path, closed_port):
    target = tmp_path / "new" / "mnist"
    with pytest.raises(DataError) as err:
        fetch_mnist(target, mirrors=[closed_port, closed_port.replace("http", "https")])
    message = str(err.value)
    assert "\n" not in message and "could not download 4 MNIST file(s)" in message
    assert f"put {', '.join(f'{n}.gz' for n in FILES)} (gzip or raw IDX) in {target.resolve()}" in message
    assert list(target.iterdir()) == []


def test_offline_cli_exits_nonzero_with_the_message(tmp_path, closed_port):
    env = dict(os.environ, MNIST_MIRRORS=closed_port, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.run([sys.executable, "-m", "trainer", "--data-dir", str(tmp_path / "mnist"),
                           "--models-dir", str(tmp_path / "models")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"in {(tmp_path / 'mnist').resolve()}" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "models").exists()


def test_full_download_then_load(tmp_path, mnist_dir, serve, capsys):
    everything = serve(mirror_dir(tmp_path / "all", mnist_dir, names=FILES))
    mnist = fetch_mnist(tmp_path / "mnist", mirrors=[everything.url])
    assert mnist.sha256 == SHA256 and mnist.x_train.shape == (60000, 28, 28) and mnist.y_test[0] == 7
    assert sorted(everything.requests) == sorted(f"/mnist/{n}.gz" for n in FILES)
    # progress went to stderr (not a terminal here) as a few plain lines per file
    lines = capsys.readouterr().err.splitlines()
    assert "\r" not in "".join(lines)
    for name in FILES:
        mine = [line for line in lines if f"{name}.gz" in line]
        assert mine[0] == f"downloading {everything.url}/{name}.gz" and mine[-1].startswith(f"{name}.gz: 100% (")
        assert len(mine) <= 5


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream, total", [(Terminal(), 10_000_000), (io.StringIO(), 10_000_000),
                                           (io.StringIO(), None)])
def test_progress_is_throttled(stream, total):
    meter = Progress("x.gz", total, stream)
    for got in range(0, 10_000_001, 10_000):  # 1001 updates
        meter.update(got)
    meter.update(10_000_000, done=True)
    out = stream.getvalue()
    if isinstance(stream, Terminal):
        assert out.count("\r") <= 10 and out.endswith("\rx.gz: 100% (10.0 of 10.0 MB)\n")
    elif total:
        assert out.splitlines() == [f"x.gz: {p:3d}% ({p / 10:.1f} of 10.0 MB)" for p in (25, 50, 75, 100)]
    else:
        assert out.splitlines() == ["x.gz: 4.2 MB", "x.gz: 8.4 MB", "x.gz: 10.0 MB"]
