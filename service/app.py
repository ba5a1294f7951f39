"""The application factory: configuration, model store, metrics, routes, errors."""
import time

from flask import Flask, g, request

from service import admission, apidocs, body, cors, errors, health, logs, page, predict, read, security, tracing, v2
from service.admission import Admission
from service.config import Config
from service.metrics import Metrics
from service.model_store import ModelStore
from service.state import State, install


def create_app(config=None):
    """Build the app. ``config``: a :class:`Config`, a dict of overrides, or None (environment)."""
    if not isinstance(config, Config):
        config = Config.from_env(**(config or {}))
    app = Flask(__name__, static_folder=None)  # the page is served at / only, with its CSP
    # Werkzeug's own form limits (500 kB text fields, 1,000 parts) would answer a
    # surprise 413 below MAX_UPLOAD_BYTES: tie them to the service's limits instead.
    app.config.update(MAX_CONTENT_LENGTH=config.max_upload_bytes,
                      MAX_FORM_MEMORY_SIZE=config.max_upload_bytes,
                      MAX_FORM_PARTS=max(1000, 2 * config.max_batch_images))
    app.json.sort_keys = False
    app.json.compact = True
    logs.configure(config.log_level)

    metrics = Metrics(config.prometheus_multiproc_dir)
    store = ModelStore(config.models_dir, config.model_name, pinned=config.pinned_version,
                       interval=config.reload_interval,
                       on_swap=lambda previous, model: metrics.model_swapped(previous, model, time.time()),
                       on_reject=lambda version, reason: metrics.reloads.labels("failure").inc())
    install(app, State(config, store, metrics, body.PendingBytes(config.max_pending_bytes),
                       Admission(config.max_queued_requests)))
    store.refresh()
    store.ensure_polling()

    errors.init_app(app)
    app.register_blueprint(predict.bp)
    app.register_blueprint(read.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(v2.bp)
    app.register_blueprint(page.bp)
    app.register_blueprint(apidocs.bp)
    _instrument(app, metrics, config.access_log)
    tracing.init_app(app)  # before anything that may refuse the request, so that refusals are traced too
    cors.init_app(app, config.cors_origin_set)
    security.init_app(app)  # after the request ID and timer start, before any body is read
    body.init_app(app)
    admission.init_app(app)  # after the body has arrived
    return app


def _instrument(app, metrics, access_log):
    """Request IDs, per-route metrics and the access log, around every request."""

    @app.before_request
    def start():
        g.started = time.perf_counter()
        g.request_id = logs.request_id()

    @app.after_request
    def finish(response):
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        response.headers["X-Request-ID"] = g.get("request_id") or logs.request_id()
        started = g.get("started", time.perf_counter())
        metrics.observe_request(route, request.method, response.status_code, time.perf_counter() - started)
        if response.status_code >= 400 and response.is_json:
            metrics.errors.labels((response.get_json(silent=True) or {}).get("code", "unknown")).inc()
        if access_log:
            logs.log_access(response, route, started)
        return response
