"""Slow clients on raw sockets, and probes that time the service meanwhile.

Shared by tests/test_slow_clients.py and benchmarks/slow_clients.py. A slow
client starts a request and then takes its time over it, which is all a
slowloris attack (or a phone on a bad network) does. Three kinds:

- ``headers``: a request line, then one header line a second, never the blank
  line that ends the head;
- ``body``: a whole head promising a 100,000-byte image, then one byte a second;
- ``idle``: a whole head promising 100 bytes, then nothing.

A server that gives each request a thread until it is read stops answering once
the slow clients outnumber its threads; one that reads without committing a
thread keeps answering, and ends the slow ones at its deadlines.
"""
import http.client
import io
import itertools
import json
import selectors
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

HOST = "127.0.0.1"  # these helpers never talk to anything else
MODES = ("headers", "body", "idle")
BODY_LENGTH = {"body": 100_000, "idle": 100}
DRIP_EVERY = 1.0       # seconds between a slow client's header lines or body bytes
RECONNECT_EVERY = 0.1  # at most this often, so a server that closes at once is not flooded
PROBE_TIMEOUT = 2.0
PROBE_PATHS = ("/health/live", "/predict")


def digit_png():
    """A 28x28 PNG of a 7 drawn in a thick, slightly blurred white stroke on black, like MNIST's."""
    img = Image.new("L", (28, 28))
    ImageDraw.Draw(img).line([(7, 7), (20, 7), (12, 22)], fill=255, width=3, joint="curve")
    buf = io.BytesIO()
    img.filter(ImageFilter.GaussianBlur(0.6)).save(buf, format="PNG")
    return buf.getvalue()


def opening(mode):
    """What a slow client sends as soon as it connects: the part of a request it does not delay."""
    if mode == "headers":
        return b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    return (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            f"Content-Length: {BODY_LENGTH[mode]}\r\n\r\n").encode()


def drip(mode, i):
    """The ``i``-th slow instalment: a header line (never a blank one), a body byte, or nothing."""
    return {"headers": f"X-Slow-{i}: 1\r\n".encode(), "body": b"\0", "idle": b""}[mode]


class SlowClients:
    """``n`` slow connections of one ``mode``, held open on a background thread.

    ``with SlowClients(port, "headers", 64) as slow: ...``: all ``n`` are open
    before the block starts. Whenever the server ends one (closes it, resets it
    or answers it), it is replaced, so ``n`` stay held until the block ends.
    ``endings`` counts how they ended ("closed", "reset", or the status line the
    server sent), ``lifetimes`` how many seconds each lasted.
    """

    def __init__(self, port, mode, n):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.port, self.mode, self.n = port, mode, n
        self.endings, self.lifetimes, self.failed_connects = Counter(), [], 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, name=f"slow-{mode}", daemon=True)
        self._error = None

    @property
    def reconnects(self):
        return sum(self.endings.values())

    def __enter__(self):
        for _ in range(self.n):
            self._connect()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        for key in list(self._selector.get_map().values()):
            self._selector.unregister(key.fileobj)
            key.fileobj.close()
        self._selector.close()
        if self._error is not None and exc[0] is None:
            raise self._error

    def _connect(self):
        """Open one connection and send its opening; a refusal is counted, not raised."""
        try:
            sock = socket.create_connection((HOST, self.port), timeout=1.0)
        except OSError:
            self.failed_connects += 1
            return
        try:
            sock.sendall(opening(self.mode))
        except OSError:
            sock.close()
            self.failed_connects += 1
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, data=time.monotonic())

    def _hold(self):
        """The background loop: notice what the server ended, replace it, drip once a second."""
        try:
            next_drip, next_reconnect = time.monotonic() + DRIP_EVERY, 0.0
            for i in itertools.count():
                while not self._stop.is_set() and time.monotonic() < next_drip:
                    for key, _ in self._selector.select(timeout=0.05):
                        self._on_readable(key)
                    if time.monotonic() >= next_reconnect:
                        for _ in range(self.n - len(self._selector.get_map())):
                            self._connect()
                        next_reconnect = time.monotonic() + RECONNECT_EVERY
                if self._stop.is_set():
                    return
                self._send_all(drip(self.mode, i))
                next_drip += DRIP_EVERY
        except Exception as exc:  # handed to the caller by __exit__, not lost on this thread
            self._error = exc

    def _on_readable(self, key):
        """A slow client never expects an answer: anything readable means the server ended it."""
        try:
            data = key.fileobj.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = None
        ending = "reset" if data is None else "closed" if not data else \
            data.split(b"\r\n", 1)[0].decode("latin-1").removeprefix("HTTP/1.1 ").removeprefix("HTTP/1.0 ")
        self._end(key, ending)

    def _send_all(self, chunk):
        """Send the next instalment on every connection; a refused send means the server ended it."""
        if not chunk:
            return
        for key in list(self._selector.get_map().values()):
            try:
                key.fileobj.send(chunk)
            except BlockingIOError:
                pass  # the server is not reading: the byte would not have helped anyway
            except OSError:
                self._end(key, "reset")

    def _end(self, key, ending):
        self.endings[ending] += 1
        self.lifetimes.append(time.monotonic() - key.data)
        self._selector.unregister(key.fileobj)
        key.fileobj.close()


@dataclass
class Probe:
    path: str
    status: object   # the HTTP status, or None when no answer came (timeout, reset, refused)
    seconds: float   # until the answer was read, or until the probe gave up
    ok: bool         # 200 within PROBE_TIMEOUT, and for /predict a body with a "predictions" list
    detail: str = ""  # why not ok: the exception, or the start of the body


def probe(port, path, image, timeout=PROBE_TIMEOUT):
    """One request on a fresh connection, given ``timeout`` seconds in all (not per socket call)."""
    start = time.monotonic()
    deadline = start + timeout
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.connect()
        conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        if path == "/predict":
            conn.request("POST", path, image, {"Content-Type": "image/png", "Connection": "close"})
        else:
            conn.request("GET", path, headers={"Connection": "close"})
        conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return Probe(path, None, time.monotonic() - start, False, repr(exc))
    finally:
        conn.close()
    seconds = time.monotonic() - start
    ok = response.status == 200 and seconds <= timeout and (path != "/predict" or _has_predictions(body))
    return Probe(path, response.status, seconds, ok, "" if ok else body[:300].decode("utf-8", "replace"))


def _has_predictions(body):
    try:
        return isinstance(json.loads(body).get("predictions"), list)
    except (ValueError, AttributeError):
        return False


def probe_for(port, seconds, image, every=0.1):
    """Probe /health/live and /predict in turn, one every ``every`` seconds, for ``seconds``."""
    probes, paths = [], itertools.cycle(PROBE_PATHS)
    deadline = time.monotonic() + seconds
    while (start := time.monotonic()) < deadline:
        probes.append(probe(port, next(paths), image))
        time.sleep(max(start + every - time.monotonic(), 0))
    return probes


def answered_share(probes):
    """The share of ``probes`` that were ok (see Probe.ok), 0 when there were none."""
    return sum(p.ok for p in probes) / len(probes) if probes else 0.0
