"""/openapi.json against the app itself: a valid OpenAPI 3.1 document, every route in it and nothing
else, its examples working, and the answers they get matching the schemas it gives.

The fuzzing of a live server against the same document is in tests/test_openapi_live.py.
"""
import io
import json
import re

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from service import create_app
from tests.helpers import REPO

METHODS = {"get", "post", "put", "patch", "delete"}
PARAMS = {"name": "mnist", "version": "1"}  # path parameters that name what the store holds


@pytest.fixture
def real_config(real_models_dir):
    return {"models_dir": real_models_dir, "reload_interval": 0, "access_log": False, "log_level": "WARNING"}


def document(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.get_json()


def operations(doc):
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
            if method in METHODS]


def schema_check(doc, schema, instance):
    """Validate ``instance`` against ``schema`` (which may $ref the document's components)."""
    OAS31Validator({**schema, "components": doc["components"]}).validate(instance)


def check_answer(doc, path, method, r):
    """``r`` (a test client response) has a status, content type, headers and body ``doc`` documents."""
    r.get_data()
    r.close()  # a file the app sends stays open until then
    responses = doc["paths"][path][method]["responses"]
    assert str(r.status_code) in responses, f"{method} {path}: undocumented {r.status_code} {r.get_data()[:200]}"
    documented = responses[str(r.status_code)]
    assert r.mimetype in documented["content"], f"{method} {path}: {r.status_code} as {r.mimetype}"
    for name, header in documented["headers"].items():
        if header.get("required"):
            assert name in r.headers, f"{method} {path}: {r.status_code} without {name}"
            assert re.search(header["schema"].get("pattern", ""), r.headers[name]), (name, r.headers[name])
    if r.mimetype == "application/json":
        schema_check(doc, documented["content"][r.mimetype]["schema"], r.get_json())
    return r


@pytest.mark.parametrize("api_key", ["", "s3cret"])
def test_the_description_is_valid_openapi_31(config, api_key):
    doc = document(create_app({**config, "api_key": api_key}).test_client())
    validate(doc)  # raises on the first problem, with its place in the document
    assert doc["openapi"] == "3.1.0"
    assert ("security" in doc["paths"]["/predict"]["post"]) is bool(api_key)
    assert ("401" in doc["paths"]["/predict"]["post"]["responses"]) is bool(api_key)


def test_every_route_is_described_and_nothing_else(app, client):
    """Method by method, with path parameters matched; HEAD and OPTIONS are Flask's own (and CORS's)."""
    routed = {(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, method) for path, method, _ in operations(document(client))}
    assert routed - described == set(), "routes the description lacks"
    assert described - routed == set(), "operations the app does not route"
    assert len(described) == 17


def test_limits_come_from_the_config(config):
    doc = document(create_app({**config, "max_batch_images": 7, "max_upload_bytes": 123_456}).test_client())
    assert "at most 7 images per request" in doc["info"]["description"]
    assert "123456 bytes" in doc["info"]["description"]
    image = doc["paths"]["/read"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "at most 7" in image["properties"]["image"]["description"]


def test_the_key_is_required_exactly_where_the_description_says(config):
    """Every operation, sent without the key to a server that has one: 401 where security is declared."""
    client = create_app({**config, "api_key": "s3cret"}).test_client()
    doc = document(client)
    for path, method, op in operations(doc):
        r = client.open(path.format(**PARAMS), method=method.upper(), data=b"x", content_type="image/png")
        assert (r.status_code == 401) is ("security" in op), (method, path, r.status_code)
        check_answer(doc, path, method, r)
        if r.status_code == 401:
            assert r.get_json()["code"] == "unauthorized" and r.headers["WWW-Authenticate"].startswith("Bearer")
    with client.get("/docs") as page:  # the page and its document stay open
        assert page.status_code == 200 and b"openapi.json" in page.get_data()


def examples(op):
    """``(content type, body)`` of each request example of ``op``; ``externalValue`` names a file in the repo."""
    for media, content in op.get("requestBody", {}).get("content", {}).items():
        for example in content.get("examples", {}).values():
            if "value" in example:
                yield media, example["value"]
            else:
                yield media, (REPO / example["externalValue"]).read_bytes()


def send_example(client, path, method, media, value, headers=None):
    url, method = path.format(**PARAMS), method.upper()
    if media is None:
        return client.open(url, method=method, headers=headers)
    if media == "multipart/form-data":
        return client.open(url, method=method, data={"image": [(io.BytesIO(value), "digit.png")]}, headers=headers)
    if media == "application/json":
        return client.open(url, method=method, json=value, headers=headers)
    return client.open(url, method=method, data=value, content_type="image/jpeg", headers=headers)


@pytest.mark.parametrize("api_key", ["", "s3cret"])
def test_each_documented_example_works_and_its_answer_matches_the_schema(real_config, api_key):
    client = create_app({**real_config, "api_key": api_key}).test_client()
    doc = document(client)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    sent = 0
    for path, method, op in operations(doc):
        bodies = list(examples(op)) if "requestBody" in op else [(None, None)]
        assert bodies, f"{method} {path} has no request example"
        for media, value in bodies:
            r = send_example(client, path, method, media, value, headers)
            assert r.status_code == 200, (method, path, media, r.get_data()[:300])
            check_answer(doc, path, method, r)
            sent += 1
    assert sent == 13 + 2 * 2 + 2  # the GETs; /predict and /read a form and a raw image; each infer a tensor


def test_what_the_examples_answer(real_config):
    """The examples read as the digits they are, and the response examples fit their schemas."""
    client = create_app(real_config).test_client()
    doc = document(client)
    predict = doc["paths"]["/predict"]["post"]
    (_, png), (_, jpeg) = examples(predict)
    assert send_example(client, "/predict", "post", "multipart/form-data", png).get_json()["predictions"][0][
        "digit"] == 7
    assert send_example(client, "/predict", "post", "image/*", jpeg).get_json()["predictions"][0]["digit"] == 2
    (_, tensor), = examples(doc["paths"]["/v2/models/{name}/infer"]["post"])
    out = send_example(client, "/v2/models/{name}/infer", "post", "application/json", tensor).get_json()
    assert out["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [1], "data": [1]}]
    for _, _, op in operations(doc):
        for response in op["responses"].values():
            for content in response.get("content", {}).values():
                if "example" in content:
                    schema_check(doc, content["schema"], content["example"])


def test_answers_without_a_model_are_documented(tmp_path):
    """The 503s: /health's own shape, and no_model with Retry-After wherever a model is needed."""
    (tmp_path / "empty").mkdir()
    client = create_app({"models_dir": tmp_path / "empty", "reload_interval": 0, "access_log": False,
                         "log_level": "WARNING"}).test_client()
    doc = document(client)
    png = (REPO / "examples" / "digit.png").read_bytes()
    for path, method, media, value in [("/health", "get", None, None), ("/v2/health/ready", "get", None, None),
                                       ("/predict", "post", "image/*", png), ("/read", "post", "image/*", png),
                                       ("/v2/models/{name}", "get", None, None),
                                       ("/v2/models/{name}/infer", "post", "application/json", {"inputs": []})]:
        r = send_example(client, path, method, media, value)
        assert r.status_code == 503 and r.get_json()["code"] == "no_model", (path, r.get_data())
        check_answer(doc, path, method, r)


@pytest.mark.parametrize("case", [
    ("/predict", "post", {"data": b"not an image", "content_type": "image/png"}, 400, "invalid_image"),
    ("/read", "post", {"data": b"", "content_type": "image/png"}, 400, "empty_image"),
    ("/predict", "post", {"data": b"{}", "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ("/predict", "post", {"data": {"other": "x"}, "content_type": "multipart/form-data"}, 400, "missing_image"),
    ("/v2/models/{name}/infer", "post", {"data": b"{", "content_type": "application/json"}, 400, "invalid_json"),
    ("/v2/models/{name}/infer", "post", {"data": b"{}", "headers": {"Inference-Header-Content-Length": "9"}},
     400, "invalid_binary_data"),
    ("/v2/models/{name}/versions/{version}", "get", {}, 404, "version_not_found"),
], ids=lambda c: f"{c[0]}-{c[4]}" if isinstance(c, tuple) else None)
def test_errors_are_documented_with_their_codes(real_config, case):
    path, method, request, status, code = case
    client = create_app(real_config).test_client()
    doc = document(client)
    url = path.format(**{**PARAMS, "version": "99"})
    r = check_answer(doc, path, method, client.open(url, method=method.upper(), **request))
    assert (r.status_code, r.get_json()["code"]) == (status, code)


def test_binary_tensors_are_documented(real_config):
    """Triton's extension both ways: the raw tensor after the JSON in, binary outputs back as octet-stream."""
    client = create_app(real_config).test_client()
    doc = document(client)
    header = (b'{"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 784], '
              b'"parameters": {"binary_data_size": 784}}], "parameters": {"binary_data_output": true}}')
    r = client.post("/v2/models/mnist/infer", data=header + bytes(784), content_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(header))})
    check_answer(doc, "/v2/models/{name}/infer", "post", r)
    assert r.status_code == 200 and r.mimetype == "application/octet-stream"
    length = int(r.headers["Inference-Header-Content-Length"])
    assert len(r.data) == length + 10 * 4 + 8  # the JSON, then FP32 probabilities and an INT64 label
    response = doc["paths"]["/v2/models/{name}/infer"]["post"]["responses"]["200"]
    assert "Inference-Header-Content-Length" in response["headers"]
    schema_check(doc, response["content"]["application/json"]["schema"], json.loads(r.data[:length]))


def test_api_md_agrees_with_the_description(config):
    """Every error code docs/api.md names is in the description's enums (of a server with a key), with the
    same statuses."""
    doc = document(create_app({**config, "api_key": "s3cret"}).test_client())
    documented = {}
    for _, _, op in operations(doc):
        for status, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            for code in schema.get("properties", {}).get("code", {}).get("enum", []):
                documented.setdefault(code, set()).add(int(status))
    text = (REPO / "docs" / "api.md").read_text()
    errors = text[text.index("## Errors"):text.index("## Probes")]
    checked = 0
    anywhere = ("internal_error", "uri_too_long", "headers_too_large", "method_not_allowed", "not_found")
    for status, codes in re.findall(r"^\| (\d{3}(?:, \d{3})?) \| ([^|]+) \|", errors, re.M):
        for code in re.findall(r"`([a-z_]+)`", codes):
            checked += 1
            if code in anywhere:  # any route's, said once in the description's introduction
                assert f"`{code}`" in doc["info"]["description"], code
            else:
                assert documented.get(code, set()) & set(map(int, status.split(", "))), (status, code)
    v2 = text[text.index("### V2 errors"):text.index("### Binary tensors")]
    for item in re.split(r"^- ", v2, flags=re.M)[1:]:  # "- 400 `code`, `code`: what they mean;"
        for code in re.findall(r"`([a-z_]+)`", item.split(": ")[0]):
            assert int(item[:3]) in documented.get(code, set()), (item[:3], code)
            checked += 1
    assert checked == 30  # every code of both lists: a change in api.md's layout must not skip them
