"""Hostile requests as exact bytes: a raw-socket HTTP exchange, the contract checker and the known cases.

Shared by tests/test_hostile.py, whose docstring states the contract, and
benchmarks/hostile_requests.py, which sends thousands of generated hostile requests.
"""
import json
import re
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.helpers import png

REPO = Path(__file__).resolve().parents[1]
V2_INFER = "/v2/models/mnist/infer"
MAX_UPLOAD_BYTES = 10 * 2**20  # the default, which the servers here keep
GOOD_PNG = png(np.zeros((28, 28), np.uint8))

# ---------------------------------------------------------------------------
# Raw HTTP over a socket: exact bytes out, the response parsed by hand.
# ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int  # 0: no response at all
    reason: str = ""
    headers: list = field(default_factory=list)  # [(lower-case name, value)], in order
    body: bytes = b""
    note: str = ""  # how the exchange ended, when not cleanly
    method: str = ""  # the request's, as sent: a HEAD response has no body

    def header(self, name):
        values = [v for k, v in self.headers if k == name.lower()]
        return values[0] if values else None

    @property
    def mimetype(self):
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def json(self):
        return json.loads(self.body)

    def __str__(self):
        return f"{self.status} {self.reason} {self.headers} {self.body[:300]!r} {self.note}"


def exchange(port, request, timeout=15.0, host="127.0.0.1", half_close=False):
    """Send ``request`` (bytes, or an iterable of bytes sent in turn) and read one response.

    The request is written from a thread while this one reads, so a server
    that answers early (a 413 before the body is in) and closes is still heard.
    ``half_close``: shut the sending side once the request is out, as a client
    that gives up halfway through its body does.
    """
    pieces = iter([request] if isinstance(request, (bytes, bytearray)) else request)
    first = next(pieces, b"")
    method = first.split(b" ", 1)[0].decode("latin-1")
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send():
        try:
            sock.sendall(first)
            for piece in pieces:
                sock.sendall(piece)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed before it had read everything
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        return _read_response(sock, method)
    finally:
        sock.close()
        sender.join(timeout)


def _read_response(sock, method=""):
    """One response from ``sock``, after any interim 1xx ones (100 Continue)."""
    buf, note = b"", ""

    def more():
        nonlocal buf, note
        if note:
            return False
        try:
            chunk = sock.recv(1 << 16)
        except (ConnectionResetError, TimeoutError) as exc:
            note = type(exc).__name__
            return False
        if not chunk:
            note = "EOF"
            return False
        buf += chunk
        return True

    while True:
        while b"\r\n\r\n" not in buf:
            if not more():
                return Reply(0, note=f"no complete response head ({note}): {buf[:200]!r}", method=method)
        head, _, rest = buf.partition(b"\r\n\r\n")
        if not re.match(rb"HTTP/\d\.\d 1\d\d\b", head) or head.startswith(b"HTTP/1.1 101"):
            break
        buf = rest  # 100 Continue and the like: the response follows
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return Reply(0, note=f"bad status line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    reply = Reply(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, method=method)
    buf = rest
    if method == "HEAD" or reply.status in (204, 304):
        return _done(reply, b"", "")
    length, encoding = reply.header("content-length"), (reply.header("transfer-encoding") or "").lower()
    if "chunked" in encoding:
        body, pos = b"", 0
        while True:
            while b"\r\n" not in buf[pos:]:
                if not more():
                    return _done(reply, body, note or "truncated chunk")
            line_end = buf.index(b"\r\n", pos)
            size = int(buf[pos:line_end].split(b";")[0], 16)
            while len(buf) < line_end + 2 + size + 2:
                if not more():
                    return _done(reply, body + buf[line_end + 2:], note or "truncated chunk")
            if size == 0:
                return _done(reply, body, "")
            body += buf[line_end + 2:line_end + 2 + size]
            pos = line_end + 2 + size + 2
    if length is not None and length.isdigit():
        while len(buf) < int(length):
            if not more():
                return _done(reply, buf, f"{note}: body of {len(buf)} bytes, Content-Length {length}")
        return _done(reply, buf[:int(length)], "")
    while more():
        pass
    return _done(reply, buf, "")


def _done(reply, body, note):
    reply.body, reply.note = body, note
    return reply


def _bytes(value):
    return value if isinstance(value, (bytes, bytearray)) else str(value).encode("utf-8")


def http(method, target, *headers, body=b"", version="HTTP/1.1", content_length=True):
    """A request's raw bytes: the request line, Host, ``headers`` ((name, value) pairs, str as
    UTF-8 or bytes sent as they are), Content-Length for ``body`` (unless ``content_length`` is
    False or a header already frames it), Connection: close, then the body."""
    lines = [b" ".join([_bytes(method), _bytes(target), _bytes(version)]), b"Host: 127.0.0.1"]
    lines += [_bytes(name) + b": " + _bytes(value) for name, value in headers]
    framed = any(_bytes(name).lower() in (b"content-length", b"transfer-encoding") for name, _ in headers)
    if content_length and not framed and (body or method in ("POST", b"POST")):
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + _bytes(body)


def chunked(target, chunks, *headers, content_type="image/png"):
    """A chunked POST: the head, then each of ``chunks`` framed as one chunk, then the last chunk."""
    yield http("POST", target, ("Content-Type", content_type), ("Transfer-Encoding", "chunked"), *headers)
    for chunk in chunks:
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
    yield b"0\r\n\r\n"


# ---------------------------------------------------------------------------
# The contract, as one checker the tests and the benchmark share.
# ---------------------------------------------------------------------------

ALLOWED_5XX = {"no_model", "overloaded"}  # 503s: the service's state, not the client's request
REPR = re.compile(rb"<[\w.]+ (?:object|at) (?:at )?0x[0-9a-fA-F]+>|\bobject at 0x[0-9a-fA-F]{4,}")
TRACEBACK = re.compile(rb"Traceback \(most recent call last\)|File \"[^\"]*\", line \d+")
# an absolute path under a directory every Unix system (or the container) has; a URL path such as
# /v2/models/<name> does not match, since the lookbehind refuses a word character before the slash
ABSOLUTE_PATH = re.compile(rb"(?<![\w.~%-])/(?:root|home|tmp|usr|etc|var|opt|srv|work|proc|sys|dev|mnt|lib|lib64|"
                           rb"bin|sbin|private|Users|run|nix|app|models)/|\b[A-Za-z]:\\\\[\w.]")
LOCAL_PATHS = sorted({str(REPO), tempfile.gettempdir(), sys.prefix, str(Path.home())} - {"/"}, key=len)
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
CODE = re.compile(r"[a-z][a-z0-9_]*")


def leaks(body, local_paths=LOCAL_PATHS):
    """What ``body`` gives away that it should not: ["repr", "traceback", "path"], or []."""
    found = []
    if REPR.search(body):
        found.append("repr")
    if TRACEBACK.search(body):
        found.append("traceback")
    if ABSOLUTE_PATH.search(body) or any(p.encode() in body for p in local_paths):
        found.append("path")
    return found


def violations(reply, path="", security_headers=True):
    """``[(kind, detail)]``: how ``reply`` (to a request for ``path``) breaks the contract.

    kind is "5xx", "shape" (an error body not exactly {"error": str, "code": str}, or not
    application/json), "leak" (a path, repr or traceback in the body), "headers" (no
    nosniff or Referrer-Policy) or "no_response".
    """
    if reply.status == 0:
        return [("no_response", reply.note)]
    found = []
    error = None
    if reply.status >= 400 and reply.method != "HEAD":  # a HEAD response has the headers of a GET, no body
        try:
            error = reply.json()
        except ValueError:
            found.append(("shape", f"{reply.status} body is not JSON: {reply.body[:120]!r}"))
        if error is not None:
            keys = set(error) if isinstance(error, dict) else None
            health_503 = reply.status == 503 and path.split("?")[0] in ("/health", "/v2/health/ready")
            if keys is None or not ({"error", "code"} <= keys if health_503 else keys == {"error", "code"}):
                found.append(("shape", f"{reply.status} body is not {{error, code}}: {reply.body[:160]!r}"))
            elif not (isinstance(error["error"], str) and isinstance(error["code"], str)
                      and CODE.fullmatch(error["code"])):
                found.append(("shape", f"error and code must be strings: {reply.body[:160]!r}"))
    if reply.status >= 400 and reply.mimetype != "application/json":
        found.append(("shape", f"{reply.status} with Content-Type {reply.header('content-type')!r}"))
    if reply.status >= 500:
        code = error.get("code") if isinstance(error, dict) else None
        if not (reply.status == 503 and code in ALLOWED_5XX):
            found.append(("5xx", f"{reply.status} {reply.body[:200]!r}"))
    if reply.mimetype != "application/octet-stream":  # binary V2 outputs are raw floats: no text to leak
        found += [("leak", f"{kind} in {reply.body[:300]!r}") for kind in leaks(reply.body)]
    if security_headers:
        for name, value in SECURITY_HEADERS.items():
            if (reply.header(name) or "").lower() != value:
                found.append(("headers", f"{name}: {reply.header(name)!r}"))
    return found


def from_test_response(response):
    """A Flask test client response as a :class:`Reply`."""
    return Reply(response.status_code, response.status.partition(" ")[2],
                 [(k.lower(), v) for k, v in response.headers.items()], response.get_data())


def assert_contract(reply, path="", status=None, codes=None, security_headers=True):
    problems = violations(reply, path, security_headers)
    assert not problems, f"{problems}\n{reply}"
    if status is not None:
        assert reply.status == status, str(reply)
    else:  # any 4xx
        assert 400 <= reply.status < 500, str(reply)
    if codes is not None:
        assert reply.json()["code"] in codes, str(reply)


# ---------------------------------------------------------------------------
# The cases: known bugs and protocol abuse, as exact bytes.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    request: object  # bytes, or a function returning an iterable of bytes (a body too big to build)
    status: int | None  # None: any 4xx
    codes: frozenset | None = None  # None: any code
    half_close: bool = False  # the client shuts its sending side after the request: the body ends early

    def raw(self):
        return self.request() if callable(self.request) else self.request

    @property
    def path(self):
        first = self.request if isinstance(self.request, bytes) else b""
        return first.split(b" ", 2)[1].decode("latin-1") if first.count(b" ") >= 2 else ""


def case(id, request, status=None, *codes, half_close=False):
    return Case(id, request, status, frozenset(codes) if codes else None, half_close)


BAD_REQUEST = ("bad_request",)
V2_400 = ("invalid_json", "invalid_tensor", "invalid_shape", "invalid_datatype", "unknown_input",
          "unknown_output", "invalid_binary_data")


def pixels(n=1, token="0"):
    return "[" + ",".join([token] * (784 * n)) + "]"


def v2_json(name='"image"', datatype='"UINT8"', shape="[1,784]", data=None, parameters=None, outputs=None,
            extra=""):
    """A V2 infer request as text, each field given as raw JSON (None: left out)."""
    tensor = {"name": name, "datatype": datatype, "shape": shape, "data": pixels() if data is None else data,
              "parameters": parameters}
    if data == "":
        del tensor["data"]
    fields = ",".join(f'"{k}":{v}' for k, v in tensor.items() if v is not None)
    top = f'{{"inputs":[{{{fields}}}]' + (f',"outputs":{outputs}' if outputs is not None else "") + extra + "}"
    return top.encode()


def one_bad_number(token, datatype="UINT8", at=0):
    values = ["0"] * 784
    values[at] = token
    return v2_json(datatype=f'"{datatype}"', data="[" + ",".join(values) + "]")


def infer(body, *headers, target=V2_INFER):
    return http("POST", target, *headers, body=body)


def binary_infer(header, tail=b"\0" * 784, length=None):
    """A V2 request in Triton's binary format: the JSON ``header``, then ``tail``."""
    length = str(len(header)) if length is None else length
    return infer(header + tail, ("Inference-Header-Content-Length", length))


def get(target, *headers):
    return http("GET", target, *headers)


PREDICT_PNG = ("Content-Type", "image/png")
BINARY_JSON = v2_json(data="", parameters='{"binary_data_size":784}')
TOO_BIG = MAX_UPLOAD_BYTES + 2**20
MIB = b"\0" * 2**20

GUNICORN_CASES = [
    # framing
    case("content-length not a number", http("POST", "/predict", ("Content-Length", "abc")), 400, *BAD_REQUEST),
    case("content-length negative", http("POST", "/predict", ("Content-Length", "-1")), 400, *BAD_REQUEST),
    case("content-length with a plus", http("POST", "/predict", ("Content-Length", "+2"), body=b"ab"), 400,
         *BAD_REQUEST),
    case("content-length hex", http("POST", "/predict", ("Content-Length", "0x2"), body=b"ab"), 400, *BAD_REQUEST),
    case("content-length superscript two", http("POST", "/predict", ("Content-Length", b"\xb2"), body=b"ab"), 400,
         *BAD_REQUEST),
    case("content-length of 4301 digits", http("POST", "/predict", ("Content-Length", "9" * 4301)), 400,
         *BAD_REQUEST),
    case("content-length list", http("POST", "/predict", ("Content-Length", "2, 2"), body=b"ab"), 400,
         *BAD_REQUEST),
    case("conflicting content-lengths", http("POST", "/predict", ("Content-Length", "2"), ("Content-Length", "3"),
                                             body=b"abc"), 400, *BAD_REQUEST),
    case("content-length and chunked", http("POST", "/predict", ("Content-Length", "5"),
                                            ("Transfer-Encoding", "chunked"), body=b"0\r\n\r\n"), 400, *BAD_REQUEST),
    case("transfer-encoding gzip", http("POST", "/predict", ("Transfer-Encoding", "gzip"), body=b"\x1f\x8b"), 400,
         *BAD_REQUEST),
    case("transfer-encoding unknown", http("POST", "/predict", ("Transfer-Encoding", "foo"), body=b"x"), 400,
         *BAD_REQUEST),  # gunicorn's 501: a 5xx for a client's mistake
    case("transfer-encoding chunked twice", http("POST", "/predict", ("Transfer-Encoding", "chunked, chunked"),
                                                 body=b"0\r\n\r\n"), 400, *BAD_REQUEST),
    case("transfer-encoding chunked then identity", http("POST", "/predict",
                                                         ("Transfer-Encoding", "chunked, identity"),
                                                         body=b"0\r\n\r\n"), 400, *BAD_REQUEST),
    case("chunked in HTTP/1.0", http("POST", "/predict", ("Transfer-Encoding", "chunked"), body=b"0\r\n\r\n",
                                     version="HTTP/1.0"), 400, *BAD_REQUEST),
    case("invalid chunk size", http("POST", "/predict", PREDICT_PNG, ("Transfer-Encoding", "chunked"),
                                    body=b"zz\r\nabc\r\n0\r\n\r\n"), 400, *BAD_REQUEST),
    case("invalid chunk size on infer", http("POST", V2_INFER, ("Transfer-Encoding", "chunked"),
                                             body=b"2\r\n{}\r\n-1\r\n\r\n"), 400, *BAD_REQUEST),
    case("chunk-size line over 8190 bytes", http("POST", "/predict", PREDICT_PNG, ("Transfer-Encoding", "chunked"),
                                                 body=b"1" * 9000 + b"\r\nabc\r\n0\r\n\r\n"),
         half_close=True),  # gunicorn reads it as a huge chunk, and would wait for the rest
    case("chunk without its CRLF", http("POST", "/predict", PREDICT_PNG, ("Transfer-Encoding", "chunked"),
                                        body=b"3\r\nabcXY0\r\n\r\n"), 400, *BAD_REQUEST),
    case("NUL in a chunk extension", http("POST", "/predict", PREDICT_PNG, ("Transfer-Encoding", "chunked"),
                                          body=b"3;a=\x00\r\nabc\r\n0\r\n\r\n"), 400, *BAD_REQUEST),
    case("chunked body over MAX_UPLOAD_BYTES",
         lambda: chunked("/predict", [MIB] * (TOO_BIG // len(MIB))), 413, "payload_too_large"),
    case("chunked infer body over MAX_UPLOAD_BYTES",
         lambda: chunked(V2_INFER, [MIB] * (TOO_BIG // len(MIB)), content_type="application/json"), 413,
         "payload_too_large"),
    # bodies that end early: the client shuts its side of the connection
    case("body shorter than its content-length", http("POST", "/predict", PREDICT_PNG, ("Content-Length", "100"),
                                                      body=GOOD_PNG[:10]), 400, *BAD_REQUEST, half_close=True),
    case("infer body shorter than its content-length", http("POST", V2_INFER, ("Content-Length", "100"),
                                                            body=b'{"inputs":'), 400, *BAD_REQUEST, half_close=True),
    case("chunk shorter than its size", http("POST", "/predict", PREDICT_PNG, ("Transfer-Encoding", "chunked"),
                                             body=b"100\r\n" + GOOD_PNG[:10]), 400, *BAD_REQUEST, half_close=True),
    case("chunked body without its last chunk", http("POST", "/predict", PREDICT_PNG, ("Transfer-Encoding", "chunked"),
                                                     body=b"3\r\nabc\r\n"), 400, *BAD_REQUEST, half_close=True),
    case("a chunk declaring more than MAX_UPLOAD_BYTES", http("POST", "/predict", PREDICT_PNG,
                                                              ("Transfer-Encoding", "chunked"),
                                                              body=b"%x\r\nabc" % TOO_BIG), half_close=True),
    case("content-length over MAX_UPLOAD_BYTES, no body sent",
         http("POST", "/predict", PREDICT_PNG, ("Content-Length", str(10**12))), 413, "payload_too_large"),
    # the request line and the headers
    case("request line over 4094 bytes", get("/health?" + "a" * 5000), 414, "uri_too_long"),
    case("a header over 8190 bytes", get("/health", ("X-Big", "a" * 9000)), 431, "headers_too_large"),
    case("101 headers", get("/health", *[(f"X-H{i}", "1") for i in range(101)]), 431, "headers_too_large"),
    case("obsolete header folding", http("GET", "/health", ("X-Folded", "a\r\n b")), 400, *BAD_REQUEST),
    case("NUL in a header value", get("/health", ("X-Nul", b"a\x00b")), 400, *BAD_REQUEST),
    case("NUL in a header name", get("/health", (b"X-N\x00l", "1")), 400, *BAD_REQUEST),
    case("control byte in a header value", get("/health", ("X-Ctl", b"a\x01b")), 400, *BAD_REQUEST),
    case("header without a colon", get("/health", (b"X-No-Colon", b"")).replace(b"X-No-Colon: ", b"X-No-Colon"),
         400, *BAD_REQUEST),
    case("space before the colon", get("/health", (b"X-Space ", b"1")), 400, *BAD_REQUEST),
    case("NUL in the request target", b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400,
         *BAD_REQUEST),
    case("method with a bad character", http("G(T", "/health"), 400, *BAD_REQUEST),
    case("unknown HTTP version", get("/health").replace(b"HTTP/1.1", b"HTTP/7.9", 1), 400, *BAD_REQUEST),
    case("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, *BAD_REQUEST),
    case("three-word junk", b"HELLO THERE WORLD\r\n\r\n", 400, *BAD_REQUEST),
]

APP_CASES = [
    # Inference-Header-Content-Length: int() takes what str.isdigit() lets through, and more
    *[case(f"Inference-Header-Content-Length {label}", binary_infer(BINARY_JSON, length=raw), 400,
           "invalid_binary_data")
      for label, raw in [("superscript two", b"\xb2"), ("superscript one", b"\xb9"), ("superscript three", b"\xb3"),
                         ("superscript two as UTF-8", "²"), ("of 4301 digits", "9" * 4301),
                         ("Arabic-Indic three as UTF-8", "٣"), ("negative", "-1"), ("plus", "+5"),
                         ("empty", ""), ("hex", "0x10"), ("float", "1e2"), ("beyond 64 bits", str(2**64))]],
    # version numbers: str.isdigit() again
    *[case(f"{method} version {label}", http(method, f"/v2/models/mnist/versions/{v}{suffix}",
                                             body=b'{}' if method == "POST" else b""), 404, "version_not_found")
      for label, v in [("superscript two", "%C2%B2"), ("superscript one", "%C2%B9"), ("superscript three", "%C2%B3"),
                       ("Arabic-Indic three", "%D9%A3"), ("beyond 64 bits", str(2**64)), ("zero", "0"),
                       ("NUL", "%00"), ("minus one", "-1")]
      for method, suffix in [("GET", "/ready"), ("GET", ""), ("POST", "/infer")]],
    # numbers simdjson cannot hold in 64 bits
    *[case(f"{datatype} data holding {token}", infer(one_bad_number(token, datatype, at)), 400, *V2_400)
      for token in [str(2**63), str(2**64), str(-2**63 - 1), str(-2**64), "1" + "0" * 30, "1e400", "-1e400"]
      for datatype, at in [("UINT8", 0), ("FP32", 783)]],
    case("shape holding 2**64", infer(v2_json(shape=f"[{2**64},784]")), 400, *V2_400),
    case("shape holding 2**63", infer(v2_json(shape=f"[{2**63},784]")), None, *V2_400, "too_many_images"),
    case("shape holding -2**63-1", infer(v2_json(shape=f"[{-2**63 - 1},784]")), 400, *V2_400),
    *[case(f"binary_data_size of {label}", binary_infer(v2_json(data="", parameters=f'{{"binary_data_size":{size}}}')),
           400, *V2_400)
      for label, size in [("2**64", 2**64), ("2**63", 2**63), ("-2**63-1", -2**63 - 1), ("-784", -784),
                          ("1e400", "1e400"), ("784.0", "784.0"), ("a string", '"784"'), ("true", "true")]],
    case("id of 2**64", infer(v2_json(extra=f',"id":{2**64}')), 400, *V2_400),
    # nesting beyond simdjson's 1,024 levels
    case("a body nested 1,025 deep", infer(b"[" * 1025 + b"]" * 1025), 400, *V2_400),
    case("a body nested 100,000 deep", infer(b"[" * 100_000 + b"]" * 100_000), 400, *V2_400),
    case("objects nested 1,100 deep", infer(b'{"a":' * 1100 + b"1" + b"}" * 1100), 400, *V2_400),
    case("data nested 1,100 deep", infer(v2_json(data="[" * 1100 + "0" + "]" * 1100)), 400, *V2_400),
    case("parameters nested 1,100 deep", infer(v2_json(extra=',"parameters":' + '{"a":' * 1100 + "1" + "}" * 1100)),
         400, *V2_400),
    # simdjson objects where a string or a list belongs: the message must not show their repr
    *[case(f"{label}", infer(body), 400, *V2_400) for label, body in [
        ("name a list", v2_json(name="[1]")),
        ("name an object", v2_json(name='{"a":1}')),
        ("datatype a list", v2_json(datatype='["UINT8"]')),
        ("datatype an object", v2_json(datatype='{"a":1}')),
        ("shape an object", v2_json(shape='{"a":1}')),
        ("shape nested", v2_json(shape="[[1],784]")),
        ("data an object", v2_json(data='{"a":1}')),
        ("data rows of objects", v2_json(shape="[1,28,28]", data="[" + ",".join(['{"a":1}'] * 28) + "]")),
        ("outputs an object", v2_json(outputs='{"name":"label"}')),
        ("output name a list", v2_json(outputs='[{"name":[1]}]')),
        ("output name an object", v2_json(outputs='[{"name":{"a":1}}]')),
        ("parameters a list", v2_json(data="", parameters="[1]")),
        ("binary_data_size a list", v2_json(data="", parameters='{"binary_data_size":[784]}')),
        ("binary_data_size an object", v2_json(data="", parameters='{"binary_data_size":{"a":1}}')),
        ("id an object", v2_json(extra=',"id":{"a":1}')),
        ("inputs an object", b'{"inputs":{"name":"image"}}'),
        ("input a list", b'{"inputs":[[1]]}'),
    ]],
    # the drawing page lives at / only
    case("the page under /static", get("/static/index.html"), 404, "not_found"),
    case("the static folder", get("/static/"), 404, "not_found"),
    case("the page by its name", get("/index.html"), 404, "not_found"),
    case("a path outside static", get("/static/../service/app.py"), 404, "not_found"),
    case("a percent-encoded traversal", get("/static/%2e%2e/service/app.py"), 404, "not_found"),
]

CASES = GUNICORN_CASES + APP_CASES

# Odd but not necessarily wrong: any answer below 500 will do, as long as it keeps the contract.
ODD_REQUESTS = [
    ("X-Request-ID of latin-1 bytes", get("/health", ("X-Request-ID", b"\xff\xfe-id"))),
    ("X-Request-ID of 5,000 characters", get("/health", ("X-Request-ID", "a" * 5000))),
    ("X-Request-ID with a tab and markup", get("/health", ("X-Request-ID", '<a\t"x">'))),
    ("two Host headers", get("/health", ("Host", "other.example"))),
    ("Host of latin-1 bytes", get("/health").replace(b"Host: 127.0.0.1", b"Host: \xff\xfe")),
    ("empty Host", get("/health").replace(b"Host: 127.0.0.1", b"Host:")),
    ("absolute-form target", get("http://127.0.0.1/health")),
    ("OPTIONS *", http("OPTIONS", "*")),
    ("bad percent-encoding", get("/%zz")),
    ("percent-encoded invalid UTF-8 model name", get("/v2/models/%FF%FE/ready")),
    ("raw latin-1 byte in the target", get(b"/v2/models/mnist/versions/\xb2/ready")),
    ("dot segments", get("/health/../predict")),
    ("double slash", get("//health")),
    ("HEAD of a POST route", http("HEAD", "/predict")),
    ("HEAD of a missing page", http("HEAD", "/static/index.html")),
    ("Expect 100-continue over the limit", http("POST", "/predict", PREDICT_PNG, ("Expect", "100-continue"),
                                                ("Content-Length", str(TOO_BIG)))),
    ("Expect something else", http("POST", "/predict", PREDICT_PNG, ("Expect", "bogus"), body=GOOD_PNG)),
    ("Content-Type with a 5,000-byte boundary", http("POST", "/predict", ("Content-Type", "multipart/form-data; "
                                                                          "boundary=" + "b" * 5000), body=b"--b--")),
    ("Content-Type of latin-1 bytes", http("POST", "/predict", ("Content-Type", b"image/\xff"), body=GOOD_PNG)),
    ("Authorization of latin-1 bytes", get("/v2/models/mnist", ("Authorization", b"Bearer \xff\xfe"))),
    ("X-Forwarded-For spoofed", get("/health", ("X-Forwarded-For", "10.0.0.1, <script>"))),
    ("Upgrade to h2c", get("/health", ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                           ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"))),
    ("gzip Content-Encoding", http("POST", "/predict", PREDICT_PNG, ("Content-Encoding", "gzip"), body=GOOD_PNG)),
]


# ---------------------------------------------------------------------------
# Hostile values for generated requests.
# ---------------------------------------------------------------------------

EXTREME_NUMBERS = [str(2**63 - 1), str(2**63), str(2**64 - 1), str(2**64), str(-2**63), str(-2**63 - 1),
                   str(-2**64), "1" + "0" * 400, "-" + "9" * 40, "1e400", "-1e400", "1e-400", "4.9e-324",
                   "1.7976931348623157e308", "-0", "-0.0", "0e0", "1E+2", "255.0", "256", "0.5", "1.0000000001"]

# Multipart part headers: odd, malformed or hostile.
PART_HEADERS = [
    b'Content-Disposition: form-data; name="image"; filename*=UTF-8\'\'%E2%82%AC.png',
    b"Content-Disposition: form-data; name=image; filename=",
    b'Content-Disposition: form-data; name="image"; filename="\xff\xfe.png"',
    b'Content-Disposition: form-data; name="image"; filename="../../../etc/passwd"',
    b"Content-Disposition: ;;;",
    b"Content-Disposition: form-data; name*=UTF-8''image; filename=a",
    b'Content-Disposition: form-data; name="image"; name="x"; filename="a.png"',
    b'Content-Disposition: form-data; name="image\x00"; filename="a.png"',
    b"Content-Type: image/png; charset=\x00",
    b"Content-Type: multipart/mixed; boundary=b",
    b"Content-Length: -1",
    b"Content-Length: 99999999999999999999",
    b"Content-Transfer-Encoding: base64",
    b"Content-Disposition: form-data;\r\n name=\"image\"; filename=\"a.png\"",
    b"X-" + b"a" * 10_000 + b": 1",
    b"No colon here",
    b": empty name",
]
