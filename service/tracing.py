"""W3C trace context: the request's trace in the logs and the response, and optional OTLP export.

A caller that traces its own work sends ``traceparent`` (W3C Trace Context,
``00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>``). The service
continues that trace: every log line of the request carries its ``trace_id``
and the service's ``span_id`` beside the ``request_id``, and the response
returns ``traceparent`` naming the service's span, so one ID finds the
request in the caller's traces and in this service's logs. A request without
a valid ``traceparent`` starts a trace of its own; a malformed one is ignored,
as the standard asks, never refused.

Export to a tracing backend is off, and costs nothing (OpenTelemetry is not
even imported), unless the standard environment asks for it:
OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, and
neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none. Then each
request becomes a server span sent over OTLP/HTTP by OpenTelemetry's SDK
(``pip install 'mnist-serving[otel]'``; the container image has it), which
reads the rest of its settings (headers, service name, batching) from the
same OTEL_* variables.
"""
import logging
import os
import re
import secrets

from flask import g, request

log = logging.getLogger(__name__)

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?")


def parse_traceparent(value):
    """``(trace_id, parent_id, flags)`` of a valid ``traceparent`` header, else None."""
    m = _TRACEPARENT.fullmatch(value.strip()) if value else None
    if m is None:
        return None
    version, trace_id, parent_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):  # ff is forbidden; version 00 has exactly four fields
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id, flags


def local_span(parent):
    """``(trace_id, span_id, flags)`` of the service's span: in the caller's trace (``parent``, from
    :func:`parse_traceparent`), or in a new one."""
    if parent is None:
        return secrets.token_hex(16), secrets.token_hex(8), "00"
    return parent[0], secrets.token_hex(8), parent[2]


def export_requested(environ=None):
    """Whether the OTEL_* environment asks for trace export."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def init_app(app, environ=None):
    exporter = _otel_exporter() if export_requested(environ) else None

    @app.before_request
    def start_trace():
        parent = parse_traceparent(request.headers.get("traceparent", ""))
        if exporter is not None:
            g.span = exporter.start(parent)
            ctx = g.span.get_span_context()
            g.trace_id, g.span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
            g.trace_flags = f"{int(ctx.trace_flags):02x}"
        else:
            g.trace_id, g.span_id, g.trace_flags = local_span(parent)

    @app.after_request
    def return_trace(response):
        if "trace_id" in g:
            response.headers["traceparent"] = f"00-{g.trace_id}-{g.span_id}-{g.trace_flags}"
        span = g.pop("span", None)
        if span is not None:
            exporter.end(span, response.status_code)
        return response


def _otel_exporter():
    try:
        return _OtelExporter()
    except ImportError:
        log.error("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
                  "(pip install 'mnist-serving[otel]'): traces are not exported")
        return None


class _OtelExporter:
    """One OpenTelemetry server span per request, batched to an OTLP/HTTP collector."""

    def __init__(self):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            SpanKind,
            Status,
            StatusCode,
            TraceFlags,
            set_span_in_context,
        )

        resource = Resource.create()  # from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
        if resource.attributes.get("service.name", "").startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "mnist-serving"}))
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = provider.get_tracer("mnist-serving")
        self._remote = lambda trace_id, span_id, flags: set_span_in_context(NonRecordingSpan(SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16)))))
        self._kind, self._status, self._error = SpanKind.SERVER, Status, StatusCode.ERROR

    def start(self, parent):
        context = self._remote(*parent) if parent else None
        return self.tracer.start_span(request.method, context=context, kind=self._kind)

    def end(self, span, status):
        route = request.url_rule.rule if request.url_rule is not None else None
        if route:
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.request.method", request.method)
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("mnist.request_id", g.get("request_id", ""))
        if status >= 500:
            span.set_status(self._status(self._error))
        span.end()
