"""Probes and the scrape endpoint: /health (readiness), /health/live, /metrics.

/health answers 200 only while a model that passed its self-check is serving,
so a load balancer never routes to a replica that would answer 503. Its body
also lists the versions on disk that were refused and why, and whether the
metrics are degraded: what an operator needs without reading the logs. It is
built from state the worker already holds, so it costs no disk access but a
directory listing.
"""
from flask import Blueprint, Response

from service.state import state

bp = Blueprint("health", __name__)


@bp.get("/health")
def ready():
    ext = state()
    model = ext.store.current
    detail = {"rejected_versions": ext.store.rejected(), "metrics": ext.metrics.degraded or "ok"}
    if model is None:
        # the error shape, plus the status/reason fields probes look for
        return {"status": "unavailable", "reason": ext.store.reason,
                "error": ext.store.reason, "code": "no_model", **detail}, 503
    return {"status": "ok", "model": model.describe(), **detail}


@bp.get("/health/live")
def live():
    return {"status": "alive"}


@bp.get("/metrics")
def metrics():
    body, content_type = state().metrics.render()
    return Response(body, content_type=content_type)
