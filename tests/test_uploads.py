"""The fast multipart split in service.uploads means what Werkzeug's parser means.

``split_multipart`` is checked part by part on bodies written by urllib3 (the
encoder behind requests) and by hand, and refuses anything not plainly well
formed; a property test shows that for any well-formed form ``_form_images``
finds exactly the image files Werkzeug finds; and /predict answers a batch the
same whether its body takes the fast path or falls back to Werkzeug.
"""
import io

import numpy as np
import pytest
from flask import request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.formparser import parse_form_data
from werkzeug.test import create_environ

from service import create_app
from service.uploads import _form_images, split_multipart
from tests.helpers import GOOD, assert_error, content_type, form, png

PNGS = [png(np.random.default_rng(i).integers(0, 256, (28, 28), dtype=np.uint8)) for i in range(3)]
BATCH = [("image", (f"{i}.png", blob)) for i, blob in enumerate(PNGS)]
CD = b'Content-Disposition: form-data; name="image"; filename="a.png"'
HEADERS = {"content-disposition": 'form-data; name="image"; filename="a.png"'}
BINARY = b"\r\n\r\n--\r\n--front\r\n-frontier\rfrontier--\n\x00\xff\r"  # all but CRLF "--frontier"


def post(client, body, boundary="b"):
    return client.post("/predict", data=body, content_type=content_type(boundary))


def one_part(headers, content=b"A", boundary=b"b"):
    return b"--%s\r\n%s\r\n\r\n%s\r\n--%s--\r\n" % (boundary, headers, content, boundary)


def fast_images(app, body, ctype):
    """What the service finds: (files in the field 'image', whether it came as text)."""
    with app.test_request_context("/predict", method="POST", data=body, content_type=ctype):
        return _form_images(request)


def werkzeug_images(body, ctype):
    """The same, as Werkzeug's own parser finds it."""
    environ = create_environ(method="POST", input_stream=io.BytesIO(body), content_type=ctype,
                             content_length=len(body))
    # in-memory files: Werkzeug's spooled temporary files warn unless closed
    _, fields, files = parse_form_data(environ, stream_factory=lambda *args, **kwargs: io.BytesIO())
    return [f.read() for f in files.getlist("image")], "image" in fields


def test_split_a_body_written_by_urllib3():
    body = form([("image", ("0.png", PNGS[0])), ("note", "hello"), ("image", ("1.gif", b"GIF89a"))], "b0undary")
    assert split_multipart(body, b"b0undary") == [
        ({"content-disposition": 'form-data; name="image"; filename="0.png"', "content-type": "image/png"}, PNGS[0]),
        ({"content-disposition": 'form-data; name="note"'}, b"hello"),
        ({"content-disposition": 'form-data; name="image"; filename="1.gif"', "content-type": "image/gif"}, b"GIF89a")]


@pytest.mark.parametrize("body,parts", [
    (b"preamble\r\n" + one_part(CD, boundary=b"frontier") + b"epilogue\r\n--frontier\r\n\r\nB", [(HEADERS, b"A")]),
    (b"--frontier \t\r\n%s\r\n\r\nA\r\n--frontier\t\r\n%s\r\n\r\nB\r\n--frontier--" % (CD, CD),
     [(HEADERS, b"A"), (HEADERS, b"B")]),
    (b"--frontier\r\n\r\nA\r\n--frontier--\r\n", [({}, b"A")]),
    (one_part(CD, BINARY, b"frontier"), [(HEADERS, BINARY)]),
    (b"--frontier--\r\n", []),
], ids=["preamble and epilogue", "transport padding", "no headers", "binary content", "no parts"])
def test_split_plainly_well_formed_bodies(body, parts):
    assert split_multipart(body, b"frontier") == parts


@pytest.mark.parametrize("body", [
    b"--frontier\r\n%s\r\n\r\nA\r\n--frontier\r\n%s\r\n\r\nB" % (CD, CD),
    one_part(b'Content-Disposition: form-data;\r\n name="image"; filename="a.png"', boundary=b"frontier"),
    one_part(CD + b"\r\nX-Junk", boundary=b"frontier"),
    one_part(CD, boundary=b"frontier").replace(b"--frontier\r\n", b"--frontier x\r\n"),
    one_part(CD, boundary=b"frontier").replace(b"--frontier\r\n", b"--frontier\n"),
    one_part(CD, b"A\n--frontier\r\n" + CD + b"\r\n\r\nB", b"frontier"),
    one_part(CD + b"\r\n" + CD, boundary=b"frontier"),
], ids=["no final boundary", "folded header", "header without colon", "junk after boundary", "LF after boundary",
        "LF before a boundary", "repeated header"])
def test_split_refuses_what_is_not_plainly_well_formed(body):
    assert split_multipart(body, b"frontier") is None


@st.composite
def forms(draw):
    """(boundary, [(name, filename or None, content)], preamble, epilogue): contents hold
    CR, LF, dashes and pieces of the boundary, but never "--" + boundary."""
    boundary = draw(st.text("0123456789abcdefxyzXYZ'()+_,-./:=? ", min_size=1, max_size=70)
                    .filter(lambda b: not b.endswith(" ")))  # RFC 2046 bchars
    dash = b"--" + boundary.encode()
    noise = st.lists(st.one_of(st.binary(max_size=8), st.sampled_from([b"\r\n", b"\r", b"\n", b"--", dash[:-1],
                                                                       dash[2:], dash])), max_size=6).map(b"".join)

    def clean(data):
        while dash in data:
            data = data.replace(dash, b"")
        return data

    part = st.tuples(st.sampled_from(["image", "images", "IMAGE", "note"]),
                     st.one_of(st.none(), st.sampled_from(["a.png", "", "b c.png"])), noise.map(clean))
    preamble = noise.map(lambda data: clean(data) + b"\r\n" if data else b"")
    return boundary, draw(st.lists(part, max_size=6)), draw(preamble), draw(noise)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form_=forms())
def test_fast_path_finds_what_werkzeug_finds(app, form_):
    boundary, parts, preamble, epilogue = form_
    fields = [(name, content if filename is None else (filename, content)) for name, filename, content in parts]
    body, ctype = preamble + form(fields, boundary) + epilogue, content_type(boundary)
    assert split_multipart(body, boundary.encode()) is not None  # so _form_images takes the fast path
    sent = ([c for name, f, c in parts if name == "image" and f is not None],
            any(name == "image" and f is None for name, f, _ in parts))
    assert fast_images(app, body, ctype) == werkzeug_images(body, ctype) == sent


@pytest.mark.parametrize("body,boundary", [
    pytest.param(one_part(CD)[:-2] + b"epilogue", "b", id="final boundary without CRLF"),
    pytest.param(one_part(b'Content-Disposition:form-data;NAME=image;FILENAME=a.png'), "b", id="terse header"),
    pytest.param(one_part(CD.replace(b"a.png", b"\xc3\xa9.png")), "b", id="UTF-8 filename"),
    pytest.param(one_part(CD.replace(b"form-data", b"Form-Data")), "b", id="Form-Data"),
    pytest.param(one_part(CD.replace(b"form-data", b"attachment")), "b", id="attachment"),
    pytest.param(one_part(CD + b'\r\nContent-Disposition: form-data; name="x"'), "b",
                 id="two Content-Dispositions"),
    pytest.param(one_part(b"Content-Type: image/png\n" + CD), "b", id="LF between headers"),
    pytest.param(one_part(CD + b"\n\nX"), "b", id="LF blank line in headers"),
    pytest.param(one_part(CD.replace(b"a.png", b"\xe9.png")), "b", id="latin-1 filename"),
    pytest.param(b"preamble\n--b\r\n%s\r\n\r\nA\r\n%s" % (CD, one_part(CD, b"B")), "b",
                 id="LF before the first boundary"),
    pytest.param(one_part(CD, boundary=b"\xe9"), "\xe9", id="non-ASCII boundary"),
    pytest.param(one_part(CD, b"A\n--b\r\n" + CD + b"\r\n\r\nB"), "b", id="LF before a boundary in content"),
])
def test_strange_bodies_mean_what_werkzeug_says(app, body, boundary):
    """Taken by the fast path or left to Werkzeug, the same images are found."""
    assert fast_images(app, body, content_type(boundary)) == werkzeug_images(body, content_type(boundary))


@pytest.mark.parametrize("spoil,error", [
    (lambda body: body.replace(b'"; filename="', b'";\r\n\tfilename="'), None),  # folded: Werkzeug unfolds
    (lambda body: body.replace(b"--b\r\n", b"--b\r\nX-Junk\r\n", 1), None),  # Werkzeug takes it as a header
    # Werkzeug finds nothing, and drops the files it had opened without closing them
    pytest.param(lambda body: body[:-len(b"\r\n--b--\r\n")], "no file in the multipart field 'image'",
                 marks=pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")),
], ids=["folded header", "header without colon", "no final boundary"])
def test_the_fallback_answers_as_werkzeug_would(client, spoil, error):
    fast = post(client, form(BATCH))
    assert fast.status_code == 200 and len(fast.get_json()["predictions"]) == 3
    body = spoil(form(BATCH))
    assert split_multipart(body, b"b") is None  # so Werkzeug parses it
    r = post(client, body)
    assert r.status_code == (400 if error else 200)
    assert r.get_json() == ({"error": error, "code": "missing_image"} if error else fast.get_json())


def test_a_quoted_boundary_with_a_space(client):
    r = client.post("/predict", data=form(BATCH, "abc def"), content_type='multipart/form-data; boundary="abc def"')
    assert r.status_code == 200
    assert r.get_json() == post(client, form(BATCH)).get_json()


@pytest.mark.parametrize("fields,status,code,message", [
    ([("image", "hello")], 400, "missing_image", "the field 'image' was sent as text"),
    ([("note", "hi"), ("file", ("a.png", GOOD))], 400, "missing_image", "no file in the multipart field 'image'"),
    ([("image", ("a.png", GOOD)), ("image", ("b.png", b""))], 400, "empty_image", "image 1 is empty (0 bytes)"),
    (BATCH, 413, "too_many_images", "at most 2 images per request, got 3"),
])
def test_refused_forms(config, fields, status, code, message):
    client = create_app({**config, "max_batch_images": 2}).test_client()
    body = form(fields)
    assert split_multipart(body, b"b") is not None
    r = post(client, body)
    assert_error(r, status, code)
    assert r.get_json()["error"].startswith(message)


@pytest.mark.parametrize("n,status", [(1000, 200), (1001, 413)])
def test_more_parts_than_max_form_parts_go_to_werkzeug(client, n, status):
    # the image last: a file part Werkzeug opened before refusing the form would be left unclosed
    r = post(client, form([("x", "1")] * (n - 1) + [("image", ("a.png", GOOD))]))
    assert r.status_code == status
    if status == 413:
        assert r.get_json()["code"] == "payload_too_large" and "more than 1000 parts" in r.get_json()["error"]
    else:
        assert len(r.get_json()["predictions"]) == 1
