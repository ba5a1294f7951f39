"""Hostile requests: whatever bytes a client sends, the answer is a JSON 4xx (or a 2xx), never a 5xx.

The contract checked here, for every response:

- status >= 400: a body that is exactly ``{"error": <str>, "code": <str>}``
  (extra keys only on the /health 503s) with ``Content-Type: application/json``,
  including the errors gunicorn answers before the app runs (malformed framing,
  request line and header limits, obsolete folding, NUL bytes, bad chunks);
- no 5xx for anything a client sends: 503 ``no_model`` or ``overloaded`` are
  the only ones allowed;
- no absolute filesystem path, Python object repr (``<... object at 0x...>``) or
  traceback in any body;
- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` on
  every response, the drawing page only at ``/`` (with its CSP);
- with ``API_KEY`` set only the probes, /metrics, / and /v2 are open, and the
  key is compared as UTF-8 bytes.

The first half talks to the real gunicorn server over raw sockets (exact bytes
in, the response parsed by hand), since most of these requests cannot be
written with an HTTP client library, and some never reach the app. The second
half is property tests against the Flask test client, for speed; they extend
tests/test_fuzz.py (numbers beyond 64 bits, deep nesting, mutated fields and
containers where strings belong, binary framing, mutated multipart) and check
the exact error shape, where test_fuzz checks only for a 4xx.

The socket helper, the checker and the cases live in tests/hostile.py, which
``benchmarks/hostile_requests.py`` reuses to send thousands of generated hostile requests.
"""
import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import content_type, form, write_version  # form: urllib3's encoder, as requests writes forms
from tests.hostile import (
    BINARY_JSON,
    CASES,
    EXTREME_NUMBERS,
    GOOD_PNG,
    ODD_REQUESTS,
    PART_HEADERS,
    PREDICT_PNG,
    V2_INFER,
    assert_contract,
    binary_infer,
    chunked,
    exchange,
    from_test_response,
    get,
    http,
    infer,
    pixels,
    v2_json,
    violations,
)
from tests.live_server import LiveServer

# ---------------------------------------------------------------------------
# Against the real server.
# ---------------------------------------------------------------------------

API_KEY = "clé-ключ-🔑"  # not ASCII, nor even latin-1


class Servers:
    """The live servers of this module, one at a time (the machine may have two cores):
    asking for one with another API key stops the one running."""

    def __init__(self, root):
        self.root, self.running, self.api_key = root, None, None

    def get(self, api_key=""):
        if self.running is None or api_key != self.api_key:
            self.close()
            live = LiveServer(self.root / "models", self.root, **({"api_key": api_key} if api_key else {}))
            self.running, self.api_key = live.__enter__(), api_key
        return self.running

    def close(self):
        if self.running is not None:
            self.running.__exit__(None, None, None)
            self.running = None


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    write_version(root / "models")
    servers = Servers(root)
    yield servers
    servers.close()


@pytest.fixture
def server(servers):
    return servers.get()


@pytest.fixture
def keyed_server(servers):
    return servers.get(API_KEY)


@pytest.mark.integration
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_hostile_request(server, c):
    reply = exchange(server.port, c.raw(), half_close=c.half_close)
    assert_contract(reply, c.path, c.status, c.codes)
    # and the server still answers
    assert exchange(server.port, get("/health/live")).status == 200


@pytest.mark.integration
@pytest.mark.parametrize("request_", [r for _, r in ODD_REQUESTS], ids=[i for i, _ in ODD_REQUESTS])
def test_odd_requests_keep_the_contract(server, request_):
    reply = exchange(server.port, request_)
    assert reply.status and not violations(reply), f"{violations(reply)}\n{reply}"
    request_id = reply.header("x-request-id")  # echoed only when short and plain
    assert request_id is None or re.fullmatch(r"[A-Za-z0-9._-]{1,128}", request_id), str(reply)


@pytest.mark.integration
@pytest.mark.parametrize("target,mimetype", [
    ("/", "text/html"), ("/health", "application/json"), ("/health/live", "application/json"),
    ("/metrics", "text/plain"), ("/v2", "application/json"), ("/v2/health/live", "application/json"),
    ("/v2/health/ready", "application/json"), ("/v2/models/mnist", "application/json"),
    ("/v2/models/mnist/ready", "application/json"),
])
def test_every_answer_carries_the_security_headers(server, target, mimetype):
    reply = exchange(server.port, get(target))
    assert reply.status == 200 and reply.mimetype == mimetype, str(reply)
    assert not violations(reply, target), violations(reply, target)


@pytest.mark.integration
def test_predictions_and_errors_carry_them_too(server):
    for request, status in [(http("POST", "/predict", PREDICT_PNG, body=GOOD_PNG), 200),
                            (infer(v2_json()), 200),
                            (binary_infer(BINARY_JSON), 200),
                            (http("POST", "/predict", PREDICT_PNG, body=b"junk"), 400),
                            (get("/nope"), 404), (http("DELETE", "/health"), 405),
                            (http("POST", "/predict", ("Content-Type", "text/plain"), body=b"x"), 415)]:
        reply = exchange(server.port, request)
        assert reply.status == status and not violations(reply), f"{violations(reply)}\n{reply}"


@pytest.mark.integration
def test_the_page_is_served_at_the_root_with_its_policy(server):
    reply = exchange(server.port, get("/"))
    assert reply.status == 200 and reply.mimetype == "text/html"
    assert "default-src 'none'" in (reply.header("content-security-policy") or ""), str(reply)
    assert "frame-ancestors 'none'" in reply.header("content-security-policy")


@pytest.mark.integration
def test_chunked_bodies_within_the_limit_are_read(server):
    """The other side of the 413: a chunked upload under MAX_UPLOAD_BYTES is answered as usual."""
    pieces = [GOOD_PNG[i:i + 7] for i in range(0, len(GOOD_PNG), 7)]
    reply = exchange(server.port, chunked("/predict", pieces))
    assert reply.status == 200 and len(reply.json()["predictions"]) == 1, str(reply)
    body = v2_json()
    reply = exchange(server.port, chunked(V2_INFER, [body[:100], body[100:]], content_type="application/json"))
    assert reply.status == 200 and reply.json()["outputs"], str(reply)


# With API_KEY set (a second server, started once the first has stopped).

# /v2/models/<name>/ready stays open as the serving model's probe (KServe-style deployments point
# readiness at it); it reads no disk. Its versioned form may load a version, so it needs the key.
OPEN = ["/health", "/health/live", "/metrics", "/", "/v2", "/v2/health/live", "/v2/health/ready",
        "/v2/models/mnist/ready"]
GUARDED = [("GET", "/v2/models/mnist"), ("GET", "/v2/models/mnist/versions/1"),
           ("GET", "/v2/models/mnist/versions/1/ready"), ("GET", "/v2/models/other"),
           ("GET", "/v2/models/mnist/versions/%C2%B2/ready"), ("GET", "/v2/models/mnist/versions/7/ready"),
           ("POST", V2_INFER), ("POST", "/v2/models/mnist/versions/1/infer"), ("POST", "/v2/models/other/infer"),
           ("POST", "/predict")]
KEY_UTF8 = API_KEY.encode("utf-8")


def guarded_request(method, target, *headers):
    if method == "GET":
        return get(target, *headers)
    body, ctype = (GOOD_PNG, "image/png") if target == "/predict" else (v2_json(), "application/json")
    return http(method, target, ("Content-Type", ctype), *headers, body=body)


@pytest.mark.integration
@pytest.mark.parametrize("target", OPEN)
def test_open_routes_need_no_key(keyed_server, target):
    reply = exchange(keyed_server.port, get(target))
    assert reply.status == 200 and not violations(reply, target), f"{violations(reply, target)}\n{reply}"


@pytest.mark.integration
@pytest.mark.parametrize("method,target", GUARDED, ids=[f"{m} {t}" for m, t in GUARDED])
@pytest.mark.parametrize("presented", [None, ("X-API-Key", "wrong"), ("Authorization", b"Bearer " + KEY_UTF8[:-1]),
                                       ("X-API-Key", KEY_UTF8.decode("latin-1").encode("utf-8"))],
                         ids=["no key", "wrong key", "truncated key", "key encoded twice"])
def test_guarded_routes_need_the_key(keyed_server, method, target, presented):
    reply = exchange(keyed_server.port, guarded_request(method, target, *([presented] if presented else [])))
    assert_contract(reply, target, 401, {"unauthorized"})


@pytest.mark.integration
@pytest.mark.parametrize("method,target,status", [
    ("GET", "/v2/models/mnist", 200), ("GET", "/v2/models/mnist/versions/1/ready", 200),
    ("GET", "/v2/models/mnist/ready", 200), ("POST", V2_INFER, 200), ("POST", "/predict", 200),
    ("GET", "/v2/models/mnist/versions/%C2%B2/ready", 404)])
@pytest.mark.parametrize("header", [("X-API-Key", KEY_UTF8), ("Authorization", b"Bearer " + KEY_UTF8)],
                         ids=["X-API-Key", "Bearer"])
def test_a_non_ascii_key_sent_as_utf8_bytes_is_accepted(keyed_server, method, target, status, header):
    reply = exchange(keyed_server.port, guarded_request(method, target, header))
    assert reply.status == status and not violations(reply, target), f"{violations(reply, target)}\n{reply}"


# ---------------------------------------------------------------------------
# Property tests, against the Flask test client.
# ---------------------------------------------------------------------------

HOSTILE = settings(max_examples=400, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.data_too_large])


def check(response, path=""):
    """2xx, or a 4xx in exactly the error shape; never a 5xx, a path or a repr. (The security
    headers are checked over the real server above: gunicorn's own errors need them too.)"""
    reply = from_test_response(response)
    problems = violations(reply, path, security_headers=False)
    assert not problems, f"{problems}\n{reply}"
    assert reply.status < 300 or 400 <= reply.status < 500, str(reply)
    return reply


@pytest.mark.parametrize("path", [
    "/v2/models/mnist/versions/" + "1" * 4301 + "/ready",  # longer than gunicorn lets through; the app copes
    "/v2/models/mnist/versions/" + "1" * 4301,
    "/v2/models/mnist/versions/\u00b2/ready",
    "/v2/models/mnist/versions/\u0663\u0663/ready",
], ids=["ready, 4301 digits", "metadata, 4301 digits", "superscript two", "Arabic-Indic 33"])
def test_version_numbers_int_cannot_read(client, path):
    r = check(client.get(path), path)
    assert r.status == 404 and r.json()["code"] == "version_not_found", str(r)


def deep(n, kind):
    return {"list": "[" * n + "]" * n, "object": '{"a":' * n + "1" + "}" * n,
            "mixed": '[{"a":' * (n // 2) + "0" + "}]" * (n // 2)}[kind]


# JSON text, so that it can hold what json.dumps cannot write (1e400) or would refuse (2**64 as a float)
leaves = st.one_of(
    st.sampled_from(EXTREME_NUMBERS),
    st.integers(-2**70, 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(['"image"', '"UINT8"', '"FP32"', '"label"', '""', "null", "true", "false", '"\\u0000"',
                     '"\\ud800"', '"\u00b2"']),
    st.text(max_size=6).map(json.dumps),
    st.tuples(st.integers(1020, 1100), st.sampled_from(["list", "object", "mixed"])).map(lambda t: deep(*t)),
)
json_text = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
    | st.lists(st.tuples(st.sampled_from(["name", "datatype", "shape", "data", "parameters", "binary_data_size",
                                          "id", "inputs", "outputs", "binary_data", "x", ""]), inner), max_size=4)
    .map(lambda kv: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in kv) + "}"),
    max_leaves=12)


def nested(n, token):
    row = "[" + ",".join([token] * 28) + "]"
    return "[" + ",".join(["[" + ",".join([row] * 28) + "]"] * n) + "]"


@st.composite
def mutated_infer_requests(draw):
    """A valid request with one to three of its fields, at any depth, replaced, dropped or doubled."""
    n = draw(st.integers(1, 2))
    datatype = draw(st.sampled_from(["UINT8", "FP32", "FP64"]))
    token = "0" if datatype == "UINT8" else "0.5"
    flat = draw(st.booleans())
    fields = {
        "name": '"image"', "datatype": f'"{datatype}"',
        "shape": f"[{n},784]" if flat else f"[{n},28,28]",
        "data": pixels(n, token) if flat else nested(n, token),
        "parameters": None, "id": None, "outputs": None, "request_parameters": None,
        "output_name": None, "output_parameters": None,
    }
    for key in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True)):
        how = draw(st.sampled_from(["replace", "replace", "drop", "element"]))
        if how == "drop":
            fields[key] = None
        elif how == "element" and key == "data" and fields["data"]:
            values = fields["data"].split(",")
            i = draw(st.integers(0, len(values) - 1))
            brackets_l = len(values[i]) - len(values[i].lstrip("["))
            brackets_r = len(values[i]) - len(values[i].rstrip("]"))
            values[i] = "[" * brackets_l + draw(leaves) + "]" * brackets_r
            fields["data"] = ",".join(values)
        else:
            fields[key] = draw(json_text)
    tensor = {k: fields[k] for k in ("name", "datatype", "shape", "data", "parameters") if fields[k] is not None}
    text = "{" + ",".join(f'"{k}":{v}' for k, v in tensor.items()) + "}"
    top = [f'"inputs":[{text}]']
    if fields["id"] is not None:
        top.append(f'"id":{fields["id"]}')
    if fields["request_parameters"] is not None:
        top.append(f'"parameters":{fields["request_parameters"]}')
    if fields["outputs"] is not None:
        top.append(f'"outputs":{fields["outputs"]}')
    elif fields["output_name"] is not None or fields["output_parameters"] is not None:
        output = [f'"name":{fields["output_name"] or json.dumps("label")}']
        if fields["output_parameters"] is not None:
            output.append(f'"parameters":{fields["output_parameters"]}')
        top.append('"outputs":[{' + ",".join(output) + "}]")
    if draw(st.booleans()):  # a key twice: which one counts is the parser's business
        top.append(draw(st.sampled_from(top)))
    return ("{" + ",".join(draw(st.permutations(top))) + "}").encode()


@HOSTILE
@given(body=json_text.map(str.encode) | mutated_infer_requests())
def test_v2_json_of_any_shape_and_size(client, body):
    check(client.post(V2_INFER, data=body), V2_INFER)


# Binary tensors: any Inference-Header-Content-Length (what gunicorn lets through: latin-1, no
# control bytes), any binary_data_size, any bytes after the JSON.
HEADER_TEXT = st.one_of(
    st.text(alphabet="0123456789+-. eExX\u00b2\u00b3\u00b9\u00bc\u00bd\u00be\u00aa\u00ba\u00ff\t", max_size=12),
    st.sampled_from(["9" * 4301, "1" * 5000, "0" * 4400 + "5", str(2**64), str(2**63), "-0", "00", "0"]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
            max_size=8),
)


@st.composite
def binary_requests(draw):
    """A valid binary request (body, header value), then up to three of its parts spoiled."""
    n = draw(st.integers(1, 2))
    datatype = draw(st.sampled_from(["UINT8", "FP32", "FP64"]))
    dtype = {"UINT8": "u1", "FP32": "<f4", "FP64": "<f8"}[datatype]
    tensor = np.full(784 * n, draw(st.sampled_from([0, 1])), dtype).tobytes()
    size, extra, outputs, tail, datatype_text = str(len(tensor)), "", None, tensor, json.dumps(datatype)
    flaws = draw(st.lists(st.sampled_from(["size", "extra", "datatype", "outputs", "tail", "length"]),
                          max_size=3, unique=True))
    if "size" in flaws:
        size = draw(st.sampled_from(EXTREME_NUMBERS) | json_text | st.integers(-5, len(tensor) + 5).map(str))
    if "extra" in flaws:  # data as well, or binary_data_size twice
        extra = draw(st.sampled_from([',"data":[0]', ',"data":null', ',"binary_data_size":1',
                                      ',"x":' + deep(1100, "list")]))
    if "datatype" in flaws:
        datatype_text = draw(st.sampled_from(['"INT64"', '"BYTES"', '"FP16"', '"BOOL"', '"uint8"']) | json_text)
    if "outputs" in flaws:
        outputs = draw(st.sampled_from(['[{"name":"label","parameters":{"binary_data":true}}]',
                                        '[{"name":"probabilities","parameters":{"binary_data":1e400}}]',
                                        '[{"name":"label","parameters":{"binary_data":[true]}}]']) | json_text)
    if "tail" in flaws:
        tail = draw(st.binary(max_size=64) | st.integers(0, len(tensor) + 8).map(lambda k: (tensor + b"\xff" * 8)[:k])
                    | st.just(b"\xff" * len(tensor)) | st.just(tensor + tensor))
    header = v2_json(datatype=datatype_text, shape=f"[{n},784]", data="",
                     parameters=f'{{"binary_data_size":{size}{extra}}}', outputs=outputs)
    length = str(len(header))
    if "length" in flaws:
        length = draw(st.integers(-3, len(header) + len(tail) + 3).map(str) | HEADER_TEXT)
    return header + tail, length


@HOSTILE
@given(request=binary_requests())
def test_v2_binary_bodies_and_their_framing(client, request):
    body, length = request
    check(client.post(V2_INFER, data=body, headers={"Inference-Header-Content-Length": length}), V2_INFER)


# Multipart: valid forms, then boundaries, part headers and framing mutated.
@st.composite
def mutated_forms(draw):
    """A form with an image, as requests writes it, then up to three things wrong with it."""
    boundary = draw(st.sampled_from(["b", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "x" * 70, "a'()+_,-./:=?",
                                     "b c"]))
    dash = b"--" + boundary.encode()
    blobs = st.sampled_from([GOOD_PNG, b"", b"GIF89a", GOOD_PNG[:40], b"\r\n" + dash + b"\r\n", dash + b"--"])
    parts = [("image", "a.png", GOOD_PNG)] + draw(st.lists(st.tuples(
        st.sampled_from(["image", "note", "IMAGE", ""]), st.sampled_from([None, "a.png", ""]), blobs), max_size=3))
    parts = draw(st.permutations(parts))
    body = bytearray(form([(name, blob if filename is None else (filename, blob)) for name, filename, blob in parts],
                          boundary))
    ctype = valid = content_type(boundary)
    param = valid.split("; ", 1)[1]
    for how in draw(st.lists(st.sampled_from(["insert", "delete", "header", "boundary", "lf", "truncate", "repeat",
                                              "content-type"]), max_size=3)):
        at = draw(st.integers(0, len(body)))
        if how == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=16) | st.sampled_from(
                [b"\r\n", dash, b"\r\n" + dash + b"\r\n", b"\r\n" + dash + b"--\r\n", b"\r\n\r\n", b"\x00"]))
        elif how == "delete":
            del body[at:at + draw(st.integers(1, 32))]
        elif how == "header":  # one more header line in some part
            starts = [m.end() for m in re.finditer(re.escape(dash) + rb"\r\n", bytes(body))]
            if starts:
                i = draw(st.sampled_from(starts))
                body[i:i] = draw(st.sampled_from(PART_HEADERS)) + b"\r\n"
        elif how == "boundary":
            body = bytearray(bytes(body).replace(dash, draw(st.sampled_from(
                [dash.upper(), dash + b" ", dash[1:], dash + b"--", b"--c", b"-" + dash, dash + b"\t"])),
                draw(st.integers(1, 3))))
        elif how == "lf":
            body = bytearray(bytes(body).replace(b"\r\n", b"\n", draw(st.integers(1, 4))))
        elif how == "truncate":
            del body[at:]
        elif how == "repeat":
            body = body * draw(st.integers(2, 40))
        else:
            ctype = draw(st.sampled_from([
                "multipart/form-data", "multipart/form-data; boundary=", 'multipart/form-data; boundary=""',
                f'multipart/form-data; boundary="{boundary}', f"{valid}; boundary=zz", valid.upper(),
                valid.replace("multipart/form-data", "multipart/mixed"), f"{valid}x",
                f"multipart/form-data; boundary*=UTF-8''{boundary}", "multipart/form-data; boundary=\u00e9",
                "multipart/form-data; boundary=" + "x" * 200, f"{valid}; charset=utf-16",
                f"multipart/form-data; charset=utf-16; {param}", f"{valid}; boundary",
                'multipart/form-data; boundary="b\\"', "multipart/form-data; boundary==", f"{valid};;;",
                f"multipart/form-data ; {param}"]))
    return bytes(body), ctype


@HOSTILE
@given(request=mutated_forms())
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # Werkzeug's unclosed files
def test_multipart_with_mutated_boundaries_headers_and_parts(client, request):
    body, ctype = request
    check(client.post("/predict", data=body, content_type=ctype), "/predict")
