"""Fetch missing MNIST files from public mirrors: verified, atomic, with fallback.

Each ``NAME.gz`` is streamed into a hidden temporary file beside its final name,
its decompressed content checked against the known SHA-256, and only then
renamed into place, so a cut-off or corrupt download never appears under the
real name. A failing mirror is logged in one line and the next one is tried.
"""
import contextlib
import gzip
import hashlib
import logging
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from http.client import HTTPException
from pathlib import Path

from trainer.data import FILES, SHA256, DataError, load_mnist, missing_files, where_to_put

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
ENV_VAR = "MNIST_MIRRORS"
CHUNK = 1 << 16
HEADERS = {"User-Agent": "mnist-serving-trainer (urllib)"}
log = logging.getLogger(__name__)


class Rejected(Exception):
    """This mirror answered, but not with a good copy of the file."""


def resolve_mirrors(mirrors=None, environ=None):
    """Base URLs, each ending in '/': ``mirrors`` if given, else $MNIST_MIRRORS
    (comma- or whitespace-separated), else :data:`DEFAULT_MIRRORS`."""
    if mirrors is None:
        env = (os.environ if environ is None else environ).get(ENV_VAR, "")
        mirrors = env.replace(",", " ").split() or DEFAULT_MIRRORS
    return [m if m.endswith("/") else m + "/" for m in mirrors]


class Progress:
    """Download progress on a stream: redrawn in place on a terminal (at most 5 times
    a second), otherwise a plain line at each quarter, so CI logs are not flooded."""

    def __init__(self, name, total, stream=None):
        self.name, self.total, self.stream = name, total, stream or sys.stderr
        self.tty, self.last, self.shown = self.stream.isatty(), 0.0, 0

    def text(self, got):
        if not self.total:
            return f"{self.name}: {got / 1e6:.1f} MB"
        return f"{self.name}: {100 * got // self.total:3d}% ({got / 1e6:.1f} of {self.total / 1e6:.1f} MB)"

    def update(self, got, done=False):
        """Report ``got`` bytes so far; ``done`` also ends the line."""
        now = time.monotonic()
        if self.tty:
            if done or now - self.last >= 0.2:
                self.last = now
                self.stream.write("\r" + self.text(got) + ("\n" if done else ""))
        else:
            # a line per quarter; every 4 MB when the server sends no Content-Length
            step = 4 * got // self.total if self.total else got // (4 << 20)
            if step > self.shown or (done and not self.total):
                self.shown = step
                self.stream.write(self.text(got) + "\n")
        self.stream.flush()


def copy_response(response, out, name, progress):
    """Stream ``response`` into file ``out``; Rejected if it ends before its Content-Length."""
    total = int(response.headers.get("Content-Length") or 0) or None
    meter = Progress(name, total) if progress else None
    got = 0
    for chunk in iter(lambda: response.read(CHUNK), b""):
        out.write(chunk)
        got += len(chunk)
        if meter:
            meter.update(got)
    # http.client returns b"" rather than raising when a server hangs up early
    if total is not None and got != total:
        raise Rejected(f"connection closed after {got} of {total} bytes")
    if meter:
        meter.update(got, done=True)


def verify(path, expected):
    """Rejected unless ``path`` is gzip whose decompressed SHA-256 is ``expected``."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise Rejected(f"not a valid gzip file ({exc})") from None
    if digest.hexdigest() != expected:
        raise Rejected(f"checksum mismatch: content SHA-256 {digest.hexdigest()[:16]}..., expected {expected[:16]}...")


def fetch(url, dest, expected, timeout, progress):
    """Download ``url`` to ``dest`` through a temporary file in the same directory; nothing is left on failure."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(urllib.request.Request(url, headers=HEADERS), timeout=timeout) as response:
                copy_response(response, out, dest.name, progress)
            out.flush()
            os.fsync(out.fileno())
        verify(tmp, expected)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; data files are for every user of the image
        os.replace(tmp, dest)
    except BaseException:  # Ctrl-C included: never leave the temporary file behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest


def explain(exc, timeout):
    """(one-line reason, whether the mirror is unreachable and so skipped for the remaining files)."""
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()  # it holds the error response open
        return f"HTTP {exc.code} {exc.reason}", False
    if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
        return f"no answer within {timeout} s", True
    if isinstance(exc, urllib.error.URLError):  # urllib wraps failures to connect in URLError
        return f"unreachable ({exc.reason})", True
    if isinstance(exc, ValueError):
        return f"not a usable URL ({exc})", True
    if isinstance(exc, Rejected):
        return str(exc), False
    return f"{type(exc).__name__}: {exc}", False  # e.g. a reset or malformed reply mid-transfer


def fetch_mnist(data_dir, mirrors=None):
    """:func:`~trainer.data.load_mnist` after downloading whatever ``data_dir`` lacks."""
    download_mnist(data_dir, mirrors)
    return load_mnist(data_dir)


def download_mnist(data_dir, mirrors=None, *, timeout=30, progress=True):
    """Download every MNIST file missing from ``data_dir`` as ``NAME.gz``, trying the mirrors
    in order; return the paths written. DataError names what is still missing and where it goes."""
    data_dir, mirrors = Path(data_dir), resolve_mirrors(mirrors)
    missing = missing_files(data_dir)
    if missing:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{data_dir}: cannot create the MNIST directory: {exc.strerror or exc}") from None
    written, dead = [], set()
    for name in missing:
        for base in (m for m in mirrors if m not in dead):
            url = base + name + ".gz"
            if progress:
                print(f"downloading {url}", file=sys.stderr, flush=True)
            try:
                written.append(fetch(url, data_dir / f"{name}.gz", SHA256[name], timeout, progress))
                break
            except (OSError, ValueError, HTTPException, Rejected) as exc:
                reason, unreachable = explain(exc, timeout)
                dead.update([base] if unreachable else [])
                log.warning("%s: %s%s", url, reason, "; skipping this mirror from now on" if unreachable else "")
    still = [name for name in FILES if name in missing_files(data_dir)]
    if still:
        tried = ", ".join(mirrors) or "none"
        raise DataError(f"could not download {len(still)} MNIST file(s) from any mirror (tried {tried}); "
                        f"{where_to_put(data_dir, still)}, or list reachable mirrors in ${ENV_VAR}")
    return written
