"""Prometheus metrics that add up across gunicorn workers.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set (see gunicorn.conf.py) before
prometheus_client is imported: every worker then writes its samples to files
in that directory, and a scrape of any worker merges all of them, including
the counts of workers that have exited. Without it (tests, the debug server)
the metrics live in this process's registry.

Metrics must never cost a prediction. The sample files are memory-mapped, and
a page that cannot be backed (a full tmpfs) kills the process with SIGBUS at
its first write, so each worker allocates its files whole before using them.
Where that fails (a full, read-only or missing directory), the worker keeps
its metrics in its own memory instead: /metrics then shows only the answering
worker's counts, the log says so once, and /health's ``metrics`` field says
``degraded``.

Label values come only from route templates, a fixed set of methods, status
codes, error codes defined in this package and the configured model name, so
client input can never create new series.
"""
import logging
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

log = logging.getLogger(__name__)

# *_created series double the output and no dashboard here uses them.
disable_created_metrics()

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
# dense near 1, where a drift from "sure" to "fairly sure" first shows
CONFIDENCE_BUCKETS = (0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
# prometheus_client's per-process sample files (counter_<pid>.db, ...) and the
# size each is given up front: the label sets here are bounded (route templates,
# methods, statuses, codes) and need a few hundred kB at most.
SAMPLE_FILES = ("counter", "histogram", "gauge_livemax", "gauge_livesum")
SAMPLE_FILE_BYTES = 1 << 20


def reserve_sample_files(directory, pid=None):
    """Allocate this process's sample files in ``directory``; None, or why it cannot be used."""
    pid = os.getpid() if pid is None else pid
    try:
        for prefix in SAMPLE_FILES:
            fd = os.open(os.path.join(directory, f"{prefix}_{pid}.db"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size < SAMPLE_FILE_BYTES:
                    os.posix_fallocate(fd, 0, SAMPLE_FILE_BYTES)  # real blocks, or ENOSPC now
            finally:
                os.close(fd)
    except OSError as exc:
        return os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return None


class Metrics:
    """The service's metrics; one instance per app, kept in ``app.extensions``."""

    def __init__(self, multiproc_dir=""):
        self.multiproc_dir, self.degraded = multiproc_dir, None
        if multiproc_dir:
            reason = reserve_sample_files(multiproc_dir)
            if reason is not None:
                log.error("metrics directory unusable (%s): this worker keeps its metrics in memory, "
                          "and /metrics shows only the worker that answers", reason)
                # every metric created from here on, in this process, keeps its value in memory
                values.ValueClass = values.MutexValue
                self.multiproc_dir, self.degraded = "", f"per-worker only: metrics directory unusable ({reason})"
        self.registry = r = CollectorRegistry()
        self.requests = Counter("mnist_http_requests", "HTTP requests by route template, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("mnist_http_request_duration_seconds", "Time to answer a request.",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.inference = Histogram("mnist_inference_duration_seconds", "Forward pass time for one request's batch.",
                                   buckets=INFERENCE_BUCKETS, registry=r)
        self.images = Counter("mnist_images_predicted", "Images classified.", registry=r)
        self.digits = Counter("mnist_predictions", "Predicted digits.", ["digit"], registry=r)
        self.statuses = Counter("mnist_predictions_by_status", "Answers of /predict and /read (one per image or "
                                "digit read) by status: ok, uncertain, no_digit, not_a_digit, several_digits.",
                                ["status"], registry=r)
        self.confidence = Histogram("mnist_prediction_confidence", "Calibrated confidence of the answers of "
                                    "/predict and /read that found ink.", buckets=CONFIDENCE_BUCKETS, registry=r)
        self.upload_bytes = Counter("mnist_upload_bytes", "Bytes of image data received.", registry=r)
        self.errors = Counter("mnist_errors", "Error responses by error code.", ["code"], registry=r)
        self.model_info = Gauge("mnist_model_info", "1 for the model version a worker serves.",
                                ["name", "version"], multiprocess_mode="livemax", registry=r)
        self.reload_time = Gauge("mnist_model_last_reload_timestamp_seconds",
                                 "Unix time of the last successful model (re)load.",
                                 multiprocess_mode="livemax", registry=r)
        self.held = Gauge("mnist_requests_held", "Model requests (/predict, /read, V2 inference) the workers hold, "
                          "waiting or running; past MAX_QUEUED_REQUESTS per worker they get 503 overloaded.",
                          multiprocess_mode="livesum", registry=r)
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
