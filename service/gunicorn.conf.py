"""gunicorn settings for mnist-serve (``gunicorn -c service/gunicorn.conf.py 'service:create_app()'``).

Values come from the same environment variables as the app's Config, so the
container, compose and ``mnist-serve`` agree without repeating themselves.
"""
import ctypes
import ctypes.util
import os
import shutil
import tempfile

# These must be set before anything imports NumPy or prometheus_client, and
# importing the service package imports both: keep them above that import.
#
# Each worker process is single-threaded NumPy: two workers already fill two
# cores, and BLAS threads inside each would only fight over them. Set before
# any worker imports NumPy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

# prometheus_client's multiprocess mode: every worker writes its samples into
# files here and a scrape merges them all. It must be set before a worker
# imports prometheus_client, and emptied at start so that a restart does not
# resurrect the previous run's counts.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # unset or empty (empty would mean the cwd)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(tempfile.gettempdir(), "mnist-serving-metrics")


def _keep_freed_memory(mmap_threshold=4 << 20, trim_threshold=16 << 20):
    """Let glibc's malloc keep and reuse freed request buffers instead of returning them.

    A V2 batch request allocates a few MB of short-lived buffers (the body,
    simdjson's tape, the tensors). By default glibc hands blocks over 128 kB
    back to the kernel on free, and thread arenas trim their heaps, so every
    request faulted its memory in afresh, and V2 batches spent much of their
    CPU time in the kernel (docs/benchmarks.md has what this setting earns).
    Set in the master before it forks, so every worker inherits it; a no-op
    where malloc is not glibc's.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    mallopt(M_TRIM_THRESHOLD, trim_threshold)


_keep_freed_memory()

from prometheus_client import multiprocess  # noqa: E402  (after the environment above)

from service.config import Config  # noqa: E402

_cfg = Config.from_env()

bind = [f"{_cfg.host}:{_cfg.port}"]
workers = _cfg.workers
# A gevent worker (service.worker.Worker): a connection waiting for a slow or
# silent client costs a greenlet, not a thread, so clients that trickle bytes
# cannot hold the workers; the worker's docstring and docs/reliability.md say
# more. CPU work still runs one request at a time per process, as with sync
# workers, and keep-alive saves clients a handshake per prediction.
worker_class = "service.worker.Worker"
worker_connections = 1000     # open connections per worker; each idle one costs a few kB
keepalive = 5                 # seconds an idle keep-alive connection stays open, and the
                              # deadline for a request's head to arrive
# Requests a client may send on one connection before it is asked to reconnect
# (nginx's keepalive_requests). Workers accept connections in a race, and a
# client that opens its pool at once can land every connection on one worker
# and keep it there, leaving the other core idle. Reconnecting every 100
# requests lets an idle worker win the next accept, so load evens out within
# seconds, for 1% more handshakes.
_KEEPALIVE_REQUESTS = 100
timeout = 30                  # a worker silent this long is killed and replaced
graceful_timeout = 25         # SIGTERM: finish in-flight requests for up to this long
# Model loading stays in the workers (no preload): each loads, validates and
# self-checks the model itself and polls for new versions, so the master never
# holds state a worker could disagree with.
preload_app = False
max_requests = 0
# The app writes one JSON access line per request (with route and request ID)
# to stdout through logging; gunicorn's own access log would duplicate it.
accesslog = None
errorlog = "-"
loglevel = _cfg.log_level.lower()
logger_class = "service.gunicorn_logging.JsonLogger"
forwarded_allow_ips = "127.0.0.1"
# gunicorn 27's control socket (for gunicornc) would live in ~/.gunicorn, which a
# read-only container cannot create; nothing here uses it.
control_socket_disable = True


def on_starting(server):
    _say_what_is_served(server.log)
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    try:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
    except OSError as exc:  # the workers find out too, and keep their metrics in memory
        server.log.error("cannot prepare the metrics directory: %s", os.strerror(exc.errno or 0))


def _say_what_is_served(log):
    """One line at start naming the store, and a warning when it holds nothing to serve."""
    from neuralnet.model_io import list_versions

    store = _cfg.models_dir.resolve() / _cfg.model_name
    versions = list_versions(store)
    if versions:
        log.info("serving %r from %s (versions on disk: %s)", _cfg.model_name, store, ", ".join(map(str, versions)))
    else:
        log.warning("no versions of %r in %s: /health will answer 503 until one is written there "
                    "(set MODELS_DIR or --models-dir, or train one with mnist-train)", _cfg.model_name, store)


def pre_request(worker, req):
    if req.req_number >= _KEEPALIVE_REQUESTS:  # requests so far on this connection
        req.must_close = True  # answered with "Connection: close"; the client reconnects


def child_exit(server, worker):
    # keep the dead worker's counters (they are history), drop its live gauges
    try:
        multiprocess.mark_process_dead(worker.pid)
    except OSError:  # a read-only metrics directory: there was nothing to drop
        pass
