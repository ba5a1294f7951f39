"""Probes and the scrape endpoint: /health (readiness), /health/live, /metrics.

/health answers 200 only while a model that passed its self-check is serving,
so a load balancer never routes to a replica that would answer 503.
"""
from flask import Blueprint, Response, current_app

bp = Blueprint("health", __name__)


@bp.get("/health")
def ready():
    ext = current_app.extensions["mnist"]
    model = ext.store.current
    if model is None:
        # the error shape, plus the status/reason fields probes look for
        return {"status": "unavailable", "reason": ext.store.reason,
                "error": ext.store.reason, "code": "no_model"}, 503
    return {"status": "ok", "model": model.describe()}


@bp.get("/health/live")
def live():
    return {"status": "alive"}


@bp.get("/metrics")
def metrics():
    body, content_type = current_app.extensions["mnist"].metrics.render()
    return Response(body, content_type=content_type)
