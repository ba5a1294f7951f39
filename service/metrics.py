"""Prometheus metrics that add up across gunicorn workers.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set (see gunicorn.conf.py) before
prometheus_client is imported: every worker then writes its samples to files
in that directory, and a scrape of any worker merges all of them, including
the counts of workers that have exited. Without it (tests, the debug server)
the metrics live in this process's registry.

Label values come only from route templates, a fixed set of methods, status
codes, error codes defined in this package and the configured model name, so
client input can never create new series.
"""
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import disable_created_metrics, multiprocess

# *_created series double the output and no dashboard here uses them.
disable_created_metrics()

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}


class Metrics:
    """The service's metrics; one instance per app, kept in ``app.extensions``."""

    def __init__(self, multiproc_dir=""):
        self.multiproc_dir = multiproc_dir
        self.registry = r = CollectorRegistry()
        self.requests = Counter("mnist_http_requests", "HTTP requests by route template, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("mnist_http_request_duration_seconds", "Time to answer a request.",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.inference = Histogram("mnist_inference_duration_seconds", "Forward pass time for one request's batch.",
                                   buckets=INFERENCE_BUCKETS, registry=r)
        self.images = Counter("mnist_images_predicted", "Images classified.", registry=r)
        self.digits = Counter("mnist_predictions", "Predicted digits.", ["digit"], registry=r)
        self.upload_bytes = Counter("mnist_upload_bytes", "Bytes of image data received.", registry=r)
        self.errors = Counter("mnist_errors", "Error responses by error code.", ["code"], registry=r)
        self.model_info = Gauge("mnist_model_info", "1 for the model version a worker serves.",
                                ["name", "version"], multiprocess_mode="livemax", registry=r)
        self.reload_time = Gauge("mnist_model_last_reload_timestamp_seconds",
                                 "Unix time of the last successful model (re)load.",
                                 multiprocess_mode="livemax", registry=r)
        self.reloads = Counter("mnist_model_reloads", "Model loads by result.", ["result"], registry=r)

    def observe_request(self, route, method, status, seconds):
        method = method if method in METHODS else "OTHER"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def model_swapped(self, previous, model, when):
        if previous is not None:
            self.model_info.labels(previous.name, str(previous.version)).set(0)
        self.model_info.labels(model.name, str(model.version)).set(1)
        self.reload_time.set(when)
        self.reloads.labels("success").inc()

    def render(self):
        """``(body, content_type)`` of a scrape."""
        if self.multiproc_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
