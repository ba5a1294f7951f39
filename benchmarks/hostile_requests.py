"""Thousands of hostile requests against the real server: does any get a 5xx, or a body it should not?

    python benchmarks/hostile_requests.py                      # starts gunicorn; 10,000 requests, seed 0
    python benchmarks/hostile_requests.py --n 2000 --seed 7
    python benchmarks/hostile_requests.py --url http://127.0.0.1:8000   # a server already running here

Starts the service's gunicorn (default config, 2 workers, a tiny random model)
on 127.0.0.1, or uses ``--url`` (127.0.0.1 / localhost only), and sends
``--n`` requests over raw sockets, each one written as exact bytes and its
response parsed by hand (tests/hostile.py's helper). The requests are a
mix drawn with ``random.Random(--seed)``, so a run can be repeated exactly:

- ``known``: the cases of tests/hostile.py (the known bugs, malformed
  framing, header limits, NUL bytes, bad chunks, bodies over the limit ...,
  and its odd but valid requests), and now and then a chunked body over
  MAX_UPLOAD_BYTES;
- ``multipart``: valid /predict forms with bytes, boundaries, part headers,
  line endings and the Content-Type mutated;
- ``raw_image``: valid PNG/JPEG/GIF/BMP/TIFF/WebP bodies, truncated, flipped,
  spliced, under any Content-Type;
- ``v2_json``: valid V2 requests with fields replaced by any JSON (numbers
  beyond 64 bits, 1e400, nesting past 1,024 levels, containers where strings
  belong) or their text mutated;
- ``v2_binary``: valid binary-tensor requests with the
  Inference-Header-Content-Length, binary_data_size and tail mutated;
- ``protocol``: request heads with bytes flipped, framing headers duplicated or
  contradicting, odd methods, versions and targets, broken chunked bodies.

Every request ends with the client shutting its side of the connection, so a
body that claims more bytes than it has ends at once instead of waiting for
the server's read timeout; a request whose head is cut short then gets no
answer at all, which is counted apart and is not a failure. Every response is
held to the contract in tests/hostile.py: no 5xx but 503
``no_model``/``overloaded``; every error body exactly ``{"error", "code"}``
as application/json; no filesystem path, object repr or traceback in any
body; ``nosniff`` and ``Referrer-Policy`` on every response. The run prints a
markdown table (and one per kind of request) and exits 1 if any response was a
5xx or had a bad body; ``--show`` prints that many offending requests as bytes.
"""
import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import ENCODED, bomb_png, form, write_version  # noqa: E402
from tests.hostile import (  # noqa: E402
    CASES,
    EXTREME_NUMBERS,
    GOOD_PNG,
    ODD_REQUESTS,
    PART_HEADERS,
    V2_INFER,
    chunked,
    exchange,
    http,
    leaks,
    pixels,
    v2_json,
    violations,
)
from tests.live_server import LiveServer  # noqa: E402

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
KINDS = ["known", "multipart", "raw_image", "v2_json", "v2_binary", "protocol"]
SPECIAL = [b"\r\n", b"\r", b"\n", b"\x00", b"\xff", b"--", b'"', b"[", b"{", b"]", b"}", b",", b":", b" ", b"\t",
           b"9" * 25, b"1e400", b"\xc2\xb2", b"%00", b"\x7f"]
CONTENT_TYPES = ["image/png", "image/jpeg", "application/octet-stream", "image/", "image/x-anything", "text/plain",
                 "application/json", "", "multipart/form-data", "image/png; charset=\xff", "IMAGE/PNG",
                 "image/png\x0b", "application/x-www-form-urlencoded"]


class Request:
    __slots__ = ("kind", "path", "raw")

    def __init__(self, kind, path, raw):
        self.kind, self.path, self.raw = kind, path, raw

    def data(self):
        return self.raw() if callable(self.raw) else self.raw

    def shown(self, limit=600):
        raw = self.raw if isinstance(self.raw, bytes) else b"".join(self.raw())[:limit + 1]
        return repr(raw[:limit]) + (f" ... ({len(raw)} bytes)" if len(raw) > limit else "")


# ---------------------------------------------------------------------------
# Mutations, all from one random.Random.
# ---------------------------------------------------------------------------


def mutate(rng, data, rounds=None):
    """``data`` with one to three byte-level changes: flips, inserts, deletes, splices, cuts."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3) if rounds is None else rounds):
        at = rng.randint(0, len(data))
        op = rng.randrange(7)
        if op == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[at:at] = rng.choice(SPECIAL)
        elif op == 2:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == 3:
            del data[at:at + rng.randint(1, 64)]
        elif op == 4 and data:
            start = rng.randrange(len(data))
            data[at:at] = data[start:start + rng.randint(1, 64)]
        elif op == 5:
            del data[at:]
        else:
            data = data.replace(rng.choice([b"\r\n", b"0", b'"', b"--", b":", b","]),
                                rng.choice(SPECIAL), rng.randint(1, 3))
    return bytes(data)


def json_value(rng, depth=0):
    """A JSON value as text, with the numbers and nesting simdjson cannot take."""
    r = rng.random()
    if depth > 3 or r < 0.45:
        return rng.choice([rng.choice(EXTREME_NUMBERS), str(rng.randint(-2**70, 2**70)), repr(rng.uniform(-1e6, 1e6)),
                           '"image"', '"UINT8"', '"FP32"', '"label"', '""', "null", "true", "false", '"\\u0000"',
                           '"\\ud800"', json.dumps(rng.randbytes(4).decode("latin-1"))])
    if r < 0.55:
        n = rng.randint(1000, 1200)
        return rng.choice(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n])
    if r < 0.8:
        return "[" + ",".join(json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    keys = ["name", "datatype", "shape", "data", "parameters", "binary_data_size", "binary_data", "id", "x"]
    return "{" + ",".join(f'"{rng.choice(keys)}":{json_value(rng, depth + 1)}' for _ in range(rng.randint(0, 3))) + "}"


def gen_known(rng):
    if rng.random() < 0.2:
        _, raw = rng.choice(ODD_REQUESTS)
        return Request("known", raw.split(b" ", 2)[1].decode("latin-1"), raw)
    c = rng.choice(CASES)
    # a known case's own bytes; the ones that end early need the sending side shut, which every request gets
    return Request("known", c.path, c.request)


def gen_multipart(rng):
    boundary = rng.choice(["b", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "x" * 70, "a'()+_,-./:=?"])
    dash = b"--" + boundary.encode()
    blobs = [GOOD_PNG, b"", b"GIF89a", GOOD_PNG[:40], ENCODED["JPEG"], b"\r\n" + dash + b"\r\n"]
    parts = [("image", "a.png", GOOD_PNG)] + [(rng.choice(["image", "note", "IMAGE", ""]),
                                               rng.choice([None, "a.png", ""]), rng.choice(blobs))
                                              for _ in range(rng.randint(0, 3))]
    rng.shuffle(parts)
    body = form([(n, b if f is None else (f, b)) for n, f, b in parts], boundary)
    ctype = f"multipart/form-data; boundary={boundary}"
    for _ in range(rng.randint(0, 3)):
        op = rng.randrange(6)
        if op == 0:
            body = mutate(rng, body)
        elif op == 1:  # a header line more in some part
            at = [i for i in range(len(body)) if body.startswith(dash + b"\r\n", i)]
            if at:
                i = rng.choice(at) + len(dash) + 2
                body = body[:i] + rng.choice(PART_HEADERS) + b"\r\n" + body[i:]
        elif op == 2:
            body = body.replace(dash, rng.choice([dash.upper(), dash + b" ", dash[1:], dash + b"--", b"--c"]),
                                rng.randint(1, 3))
        elif op == 3:
            body = body.replace(b"\r\n", b"\n", rng.randint(1, 4))
        elif op == 4:
            body = body * rng.randint(2, 30)
        else:
            ctype = rng.choice(["multipart/form-data", "multipart/form-data; boundary=", f"{ctype}; boundary=zz",
                                ctype.upper(), ctype.replace("form-data", "mixed"), f"{ctype}x",
                                f"multipart/form-data; boundary*=UTF-8''{boundary}", "multipart/form-data; boundary=é",
                                f'multipart/form-data; boundary="{boundary}', f"{ctype};;;",
                                "multipart/form-data; boundary=" + "x" * 300])
    return Request("multipart", "/predict", http("POST", "/predict", ("Content-Type", ctype), body=body))


def gen_raw_image(rng):
    r = rng.random()
    if r < 0.1:
        body = bomb_png(rng.randint(1, 200_000), rng.randint(1, 200_000))
    else:
        body = ENCODED[rng.choice(sorted(ENCODED))] if r < 0.9 else GOOD_PNG
        if rng.random() < 0.8:
            body = mutate(rng, body)
    ctype = rng.choice(CONTENT_TYPES) if rng.random() < 0.5 else "image/png"
    headers = [("Content-Type", ctype.encode("latin-1"))] if ctype else []
    return Request("raw_image", "/predict", http("POST", "/predict", *headers, body=body))


def gen_v2_json(rng):
    n = rng.randint(1, 3)
    datatype = rng.choice(["UINT8", "FP32", "FP64"])
    token = "0" if datatype == "UINT8" else "0.5"
    fields = {"name": '"image"', "datatype": f'"{datatype}"', "shape": f"[{n},784]", "data": pixels(n, token),
              "parameters": None, "outputs": None, "extra": ""}
    for _ in range(rng.randint(0, 3)):
        key = rng.choice(["name", "datatype", "shape", "data", "data", "parameters", "outputs", "extra", "text"])
        if key == "data" and rng.random() < 0.6:  # one number out of range
            values = fields["data"].strip("[]").split(",")
            values[rng.randrange(len(values))] = rng.choice(EXTREME_NUMBERS + [json_value(rng)])
            fields["data"] = "[" + ",".join(values) + "]"
        elif key == "extra":
            fields["extra"] = rng.choice([f',"id":{json_value(rng)}', f',"parameters":{json_value(rng)}',
                                          ',"inputs":[]', f',"outputs":[{{"name":{json_value(rng)}}}]'])
        elif key != "text":
            fields[key] = json_value(rng)
    body = v2_json(fields["name"], fields["datatype"], fields["shape"], fields["data"], fields["parameters"],
                   fields["outputs"], fields["extra"])
    if rng.random() < 0.25:
        body = mutate(rng, body)
    target = rng.choice([V2_INFER] * 6 + ["/v2/models/mnist/versions/1/infer", "/v2/models/mnist/versions/%C2%B2/infer",
                                          "/v2/models/x/infer"])
    return Request("v2_json", target, http("POST", target, body=body))


def gen_v2_binary(rng):
    n = rng.randint(1, 2)
    datatype, itemsize = rng.choice([("UINT8", 1), ("FP32", 4), ("FP64", 8)])
    tensor = bytes(784 * n * itemsize)
    size, tail = str(len(tensor)), tensor
    for _ in range(rng.randint(0, 3)):
        op = rng.randrange(4)
        if op == 0:
            size = rng.choice(EXTREME_NUMBERS + [json_value(rng), str(len(tensor) + rng.randint(-3, 3))])
        elif op == 1:
            tail = mutate(rng, tail) if rng.random() < 0.5 else b"\xff" * len(tensor)
        elif op == 2:
            datatype = rng.choice(["INT64", "BYTES", "FP16", json_value(rng)]).strip('"')
        else:
            tail += tail
    header = v2_json(datatype=json.dumps(datatype), shape=f"[{n},784]", data="",
                     parameters=f'{{"binary_data_size":{size}}}',
                     outputs=rng.choice([None, '[{"name":"label","parameters":{"binary_data":true}}]']))
    length = str(len(header)).encode()
    if rng.random() < 0.4:
        length = rng.choice([b"\xb2", b"\xb9", b"\xb3", b"9" * 4301, b"-1", b"+1", b"", b" 1", b"0x10", b"1e2",
                             str(len(header) + rng.randint(-5, 5)).encode(), str(2**64).encode(),
                             mutate(rng, length)])
        length = bytes(b for b in length if b >= 0x20 and b != 0x7f)  # what could pass gunicorn's header checks
    return Request("v2_binary", V2_INFER,
                   http("POST", V2_INFER, ("Inference-Header-Content-Length", length), body=header + tail))


PROTOCOL_TARGETS = ["/health", "/predict", V2_INFER, "/v2/models/mnist/versions/%C2%B2/ready", "/%00", "/%ff%fe",
                    "/static/index.html", "/v2/models/" + "a" * 3000, "//etc/passwd", "/health?" + "&" * 500, "*",
                    "http://127.0.0.1/health", "/v2/models/mnist/versions/\xb2/ready"]


def gen_protocol(rng):
    target = rng.choice(PROTOCOL_TARGETS)
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "CONNECT", "G(T", "get",
                         "POST" * 20])
    version = rng.choice(["HTTP/1.1"] * 6 + ["HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1", "HTTP/1.1 x"])
    headers = []
    body = GOOD_PNG if method == "POST" and rng.random() < 0.5 else b""
    framing = rng.randrange(8)
    if framing == 0:
        headers.append(("Content-Length", rng.choice(["abc", "-1", "+1", "1_0", "0x10", "\xb2", "9" * 30, "1, 1",
                                                      str(len(body) + rng.randint(-5, 5)), ""]).encode("latin-1")))
    elif framing == 1:
        headers += [("Content-Length", str(len(body))), ("Content-Length", str(len(body) + rng.randint(0, 3)))]
    elif framing == 2:
        headers.append(("Transfer-Encoding", rng.choice(["gzip", "chunked, chunked", "identity", "chunked, gzip",
                                                         "gzip, chunked", "foo", "Chunked", " chunked", "chunked\x0b",
                                                         "compress", "deflate"])))
        if "chunked" in headers[-1][1].lower():
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    elif framing == 3:  # a chunked body with broken framing
        headers.append(("Transfer-Encoding", "chunked"))
        chunk = b"%x\r\n%s\r\n" % (len(body), body)
        body = mutate(rng, chunk + b"0\r\n\r\n") if rng.random() < 0.7 else rng.choice([
            b"zz\r\nabc\r\n0\r\n\r\n", b"-1\r\n\r\n", b"3;\x00\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXY0\r\n\r\n",
            b"fffffffffffffffffff\r\nabc", b"3\r\nabc\r\n", b"0\r\nX-Trailer: \x00\r\n\r\n", b"0\r\nHost: x\r\n\r\n"])
        if rng.random() < 0.2:
            headers.append(("Content-Length", "5"))
    elif framing == 4:
        headers.append(rng.choice([("X-Big", "a" * rng.choice([8000, 9000, 20000])), ("X-Nul", b"a\x00b"),
                                   ("X-Ctl", b"a\x01b"), (b"X Space", "1"), (b"X-\xff", "1"), ("X-Fold", "a\r\n b"),
                                   ("Host", "other"), ("Expect", "100-continue"), ("Expect", "bogus"),
                                   ("Connection", "keep-alive, Upgrade"), ("Upgrade", "h2c"),
                                   ("X-Forwarded-For", "1.2.3.4"), ("Authorization", "Bearer \xff"),
                                   ("Content-Type", "multipart/form-data; boundary=" + "b" * 5000)]))
    elif framing == 5:
        headers += [(f"X-H{i}", "1") for i in range(rng.choice([99, 100, 101, 200]))]
    if not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers if isinstance(name, str)):
        headers.insert(0, ("Content-Length", str(len(body))))
    raw = http(method, target.encode("latin-1"), *headers, body=body, version=version, content_length=False)
    if framing >= 6:  # the whole request, head and all, mutated
        raw = mutate(rng, raw)
    return Request("protocol", target, raw)


def gen_big_chunked(rng):
    target = rng.choice(["/predict", V2_INFER])
    piece = b"\0" * rng.choice([2**16, 2**20])
    count = (10 * 2**20) // len(piece) + rng.randint(1, 8)
    return Request("known", target, lambda: chunked(target, [piece] * count))


GENERATORS = {"known": gen_known, "multipart": gen_multipart, "raw_image": gen_raw_image, "v2_json": gen_v2_json,
              "v2_binary": gen_v2_binary, "protocol": gen_protocol}


def generate(rng):
    kind = rng.choice(KINDS)
    request = GENERATORS[kind](rng)
    if kind == "known" and rng.random() < 0.02:
        request = gen_big_chunked(rng)
    return request


# ---------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------


def classify(reply, request):
    """``(status class, {problems})`` of one reply: problems as tests/hostile.violations names them."""
    if reply.status == 0:
        data = request.data()
        head = data if isinstance(data, bytes) else next(iter(data))
        return "no response", {"no_response_head_complete"} if b"\r\n\r\n" in head else set()
    return f"{reply.status // 100}xx", {kind for kind, _ in violations(reply, request.path)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="requests to send")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--url", help="a server already running on 127.0.0.1 (default: start one)")
    p.add_argument("--concurrency", type=int, default=2, help="connections at a time")
    p.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long")
    p.add_argument("--timeout", type=float, default=20, help="seconds to wait for one response")
    p.add_argument("--show", type=int, default=5, help="offending requests to print, per kind of problem")
    args = p.parse_args()
    if not 1 <= args.n <= 1_000_000:
        p.error("--n must be between 1 and 1,000,000")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if args.url:
        url = urlsplit(args.url)
        if url.hostname not in LOCAL_HOSTS or not url.port:
            p.error("--url must name 127.0.0.1 or localhost, with a port")
        return run(args, url.hostname, url.port, None)
    with tempfile.TemporaryDirectory() as tmp:
        write_version(Path(tmp) / "models")
        with LiveServer(Path(tmp) / "models", tmp) as server:
            server.wait_models_loaded()
            status = run(args, "127.0.0.1", server.port, server)
    return status


def run(args, host, port, server):
    rng = random.Random(args.seed)
    rows, bad, by_kind, examples = Counter(), Counter(), defaultdict(Counter), defaultdict(list)
    deadline = time.monotonic() + args.max_seconds

    def one(request):
        if time.monotonic() > deadline:
            return request, None
        return request, exchange(port, request.data(), timeout=args.timeout, host=host, half_close=True)

    started = time.perf_counter()
    sent = 0
    with ThreadPoolExecutor(args.concurrency) as pool:
        replies = (reply for start in range(0, args.n, 256)  # generated in order, a batch at a time
                   for reply in pool.map(one, [generate(rng) for _ in range(min(256, args.n - start))]))
        for request, reply in replies:
            if reply is None:
                continue
            sent += 1
            row, problems = classify(reply, request)
            rows[row] += 1
            by_kind[request.kind][row] += 1
            for problem in problems:
                bad[problem] += 1
                by_kind[request.kind]["bad " + problem] += 1
                if len(examples[problem]) < args.show:
                    examples[problem].append((request, reply))
    elapsed = time.perf_counter() - started
    alive = exchange(port, http("GET", "/health/live"), host=host).status == 200

    print(f"\n{sent} hostile requests (seed {args.seed}, {args.concurrency} connections at a time) "
          f"to 127.0.0.1:{port} in {elapsed:.1f} s" + ("" if sent == args.n else "; stopped at --max-seconds"))
    print()
    header = ["requests", "2xx", "3xx", "4xx", "5xx (>= 500)", "5xx not allowed", "no response",
              "bad error bodies", "path/repr/traceback in body", "missing security headers", "requests/s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    print("| " + " | ".join(str(x) for x in [sent, rows["2xx"], rows["3xx"], rows["4xx"], rows["5xx"], bad["5xx"],
                                              rows["no response"], bad["shape"], bad["leak"], bad["headers"],
                                              f"{sent / elapsed:.0f}"]) + " |")
    print("\nby kind of request:\n")
    print("| kind | requests | 2xx | 4xx | 5xx | no response | bad error bodies | path/repr | missing headers |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in KINDS:
        c = by_kind[kind]
        total = sum(c[r] for r in ("2xx", "3xx", "4xx", "5xx", "no response"))
        print(f"| {kind} | {total} | {c['2xx']} | {c['4xx']} | {c['5xx']} | {c['no response']} | "
              f"{c['bad shape']} | {c['bad leak']} | {c['bad headers']} |")
    if bad["no_response_head_complete"]:
        print(f"\n{bad['no_response_head_complete']} of the requests without a response had sent a complete head")
    if server is not None:
        log = server.read_log()
        boots = log.count("Booting worker")
        print(f"\nworkers booted: {boots} (2 at start); server alive after the run: {alive}")
    else:
        print(f"\nserver alive after the run: {alive}")
    for problem, found in examples.items():
        print(f"\nfirst {len(found)} requests with {problem}:")
        for request, reply in found:
            print(f"- [{request.kind}] sent {request.shown()}\n  got {reply.status} {reply.reason!r} "
                  f"{reply.header('content-type')!r} {reply.body[:300]!r} {leaks(reply.body) or ''}")
    # any >= 500 (even a 503 the contract allows: this run never overloads a server with a model) or bad body
    return 1 if rows["5xx"] or bad["shape"] or bad["leak"] or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
