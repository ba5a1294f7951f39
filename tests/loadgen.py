"""A small closed-loop HTTP load generator that times every request by its status.

wrk reports one latency distribution for all answers together; under overload
that mixes quick 503s with the accepted requests whose latency matters. This
client keeps ``connections`` keep-alive connections busy, one request in
flight on each, from one thread with non-blocking sockets, and records each
answer's status, error code and latency. It speaks just enough HTTP/1.1 for
this service's answers (Content-Length bodies, ``Connection: close``).
"""
import json
import selectors
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    answers: list = field(default_factory=list)  # (status, error code or None, seconds, Retry-After or None)
    errors: dict = field(default_factory=dict)   # "reset", "timeout", "connect", "malformed" -> count
    seconds: float = 0.0

    def latencies(self, status):
        return sorted(s for st, _, s, _ in self.answers if st == status)

    def count(self, status=None, code=None):
        return sum(1 for st, c, _, _ in self.answers
                   if (status is None or st == status) and (code is None or c == code))


def percentile(values, q):
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


class _Conn:
    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=5)
        self.sock.setblocking(False)
        self.buf, self.started = b"", 0.0


def run(host, port, request, connections, seconds, timeout=10.0):
    """Send ``request`` (raw bytes) over ``connections`` connections for ``seconds``; a :class:`Result`."""
    result, sel = Result(), selectors.DefaultSelector()

    def open_conn():
        try:
            c = _Conn((host, port))
        except OSError:
            result.errors["connect"] = result.errors.get("connect", 0) + 1
            return
        sel.register(c.sock, selectors.EVENT_READ, c)
        send(c)

    def send(c):
        c.started, c.buf = time.perf_counter(), b""
        c.sock.sendall(request)  # small requests: the socket buffer takes them whole

    def drop(c, kind=None):
        sel.unregister(c.sock)
        c.sock.close()
        if kind:
            result.errors[kind] = result.errors.get(kind, 0) + 1
        if time.perf_counter() < end:
            open_conn()

    start = time.perf_counter()
    end = start + seconds
    for _ in range(connections):
        open_conn()
    while sel.get_map():
        now = time.perf_counter()
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            try:
                chunk = c.sock.recv(65536)
            except ConnectionResetError:
                drop(c, "reset")
                continue
            if not chunk:
                drop(c, "reset" if c.buf else None)  # closed mid-answer, or idle keep-alive closed
                continue
            c.buf += chunk
            answer = _parse(c.buf)
            if answer is None:
                continue
            if answer == "malformed":
                drop(c, "malformed")
                continue
            status, code, retry_after, close = answer
            result.answers.append((status, code, time.perf_counter() - c.started, retry_after))
            if close or time.perf_counter() >= end:
                drop(c)
            else:
                send(c)
        for key in list(sel.get_map().values()):
            if now - key.data.started > timeout:
                drop(key.data, "timeout")
    result.seconds = time.perf_counter() - start
    return result


def _parse(buf):
    """``(status, code, retry_after, close)`` of a complete answer in ``buf``, None if incomplete."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = buf[:head_end].decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return "malformed"
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    body = buf[head_end + 4:]
    if len(body) < length:
        return None
    code = None
    if status >= 400 and headers.get("content-type", "").startswith("application/json"):
        code = json.loads(body[:length]).get("code")
    return status, code, headers.get("retry-after"), headers.get("connection", "").lower() == "close"


def png_post(host, port, png, path="/predict"):
    """A raw keep-alive POST of one PNG."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(png)}\r\n\r\n").encode() + png
