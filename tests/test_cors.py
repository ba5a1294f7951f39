"""CORS: off by default; for allowed origins, preflights without a key and readable answers, errors included."""
import pytest

from service import create_app
from service.config import Config, ConfigError
from service.cors import ALLOWED_HEADERS, parse_origins
from tests.helpers import STROKE

APP_ORIGIN = "https://app.example"
INFER = "/v2/models/mnist/infer"
ROUTES = ["/predict", "/read", INFER]


def preflight(client, path, origin=APP_ORIGIN, headers="content-type, x-request-id"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": headers})


def cors_headers(response):
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.fixture
def cors_app(config):
    return create_app({**config, "cors_origins": f"{APP_ORIGIN}, http://localhost:3000", "api_key": "s3cret"})


@pytest.mark.parametrize("path", ROUTES)
def test_no_cors_headers_unless_configured(client, path):
    r = preflight(client, path)
    assert r.status_code == 200 and "POST" in r.headers["Allow"]
    assert cors_headers(r) == {}
    r = client.post(path, data=STROKE, content_type="image/png", headers={"Origin": APP_ORIGIN})
    assert cors_headers(r) == {}


@pytest.mark.parametrize("path", ROUTES)
def test_preflight_is_answered_without_the_key(cors_app, path):
    r = preflight(cors_app.test_client(), path)
    assert r.status_code == 204, r.get_data(as_text=True)
    assert r.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "Origin" in r.headers["Vary"]
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) >= {"POST", "OPTIONS"}
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed >= {"authorization", "x-api-key", "content-type", "x-request-id"}
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.get_data() == b"" and "Content-Length" not in r.headers


def test_answers_and_errors_are_readable_by_the_allowed_origin(cors_app):
    c = cors_app.test_client()
    ok = c.post("/predict", data=STROKE, content_type="image/png",
                headers={"Origin": APP_ORIGIN, "Authorization": "Bearer s3cret", "X-Request-ID": "abc-1"})
    assert ok.status_code == 200 and len(ok.json["predictions"]) == 1
    assert ok.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    exposed = {h.strip() for h in ok.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Request-ID", "Retry-After", "traceparent"} <= exposed and ok.headers["X-Request-ID"] == "abc-1"
    refused = c.post("/predict", data=STROKE, content_type="image/png", headers={"Origin": APP_ORIGIN})
    assert refused.status_code == 401 and refused.json["code"] == "unauthorized"
    assert refused.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


def test_other_origins_get_no_cors_headers(cors_app):
    c = cors_app.test_client()
    for origin in ("https://evil.example", "https://app.example.evil.example", "null"):
        assert cors_headers(preflight(c, "/predict", origin=origin)) == {}
        r = c.post("/predict", data=STROKE, content_type="image/png",
                   headers={"Origin": origin, "Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and cors_headers(r) == {}


def test_any_origin(config):
    c = create_app({**config, "cors_origins": "*"}).test_client()
    r = preflight(c, "/read", origin="https://anywhere.example")
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in r.headers  # one answer for every origin: nothing for caches to tell apart
    r = c.get("/health", headers={"Origin": "https://anywhere.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_allowed_headers_cover_what_the_api_reads():
    assert {"Authorization", "X-API-Key", "Content-Type", "X-Request-ID"} <= set(ALLOWED_HEADERS)


@pytest.mark.parametrize("value, expected", [
    ("", set()), ("  ", set()), ("*", {"*"}), ("https://a.example/", {"https://a.example"}),
    ("http://localhost:3000,https://b.example", {"http://localhost:3000", "https://b.example"}),
])
def test_parse_origins(value, expected):
    assert parse_origins(value) == expected


@pytest.mark.parametrize("value", ["a.example", "https://a.example/path", "*, https://a.example", "ftp://x.example",
                                   "https://a.example:99999999"])
def test_malformed_origins_stop_start_up(value):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        Config.from_env({"CORS_ORIGINS": value})
