"""Backpressure: a bound on the model requests a worker holds, and a quick 503 past it.

A worker runs one forward pass at a time, so every request it has taken in
and not yet answered waits for the CPU behind the others: with no bound, a
client pool larger than the service can serve makes every answer slower,
without limit, until clients time out. Here a worker holds at most
MAX_QUEUED_REQUESTS model requests (/predict, /read, V2 inference), waiting or
running; the next one is answered at once with 503 ``overloaded`` and
``Retry-After``, which clients (``service.client`` among them) retry after a
pause, and which a load balancer can send to another replica. An accepted
request then waits for at most that many forward passes.

A request is counted once its body has arrived (:mod:`service.body` bounds
the arrival on its own): clients that upload slowly hold bytes, not places in
the queue, so they cannot turn everyone else away.

Under the gevent worker a request that is admitted yields once before its
work, so every request whose bytes came in with it is counted before any of
them runs: that is what makes ``held`` the length of the worker's queue
rather than 0 or 1. The probes and /metrics are never refused: a deployment
must be able to see a busy replica as alive.
"""
from flask import g, request

from service.errors import ApiError
from service.state import state

# the endpoints that run the model; everything else is cheap and always answered
GUARDED = {"predict.predict", "read.read", "v2.infer"}
RETRY_AFTER_SECONDS = 1


class Admission:
    """The model requests one worker holds: admitted and not yet answered."""

    def __init__(self, limit):
        self.limit, self.held = limit, 0
        self.pause = _cooperative_yield()

    def try_enter(self):
        # gevent switches greenlets only while one waits for I/O, never between this test
        # and the increment, so the count needs no lock
        if self.held >= self.limit:
            return False
        self.held += 1
        return True

    def leave(self):
        self.held -= 1


def init_app(app):
    """Register after :mod:`service.body`, so that a request is counted once its body is in."""
    app.before_request(admit)
    app.teardown_request(release)


def admit():
    if request.method != "POST" or request.endpoint not in GUARDED:
        return
    st = state()
    if not st.admission.try_enter():
        raise ApiError(503, "overloaded", f"this worker already holds {st.admission.limit} requests "
                                          "(MAX_QUEUED_REQUESTS); retry shortly",
                       {"Retry-After": str(RETRY_AFTER_SECONDS)})
    g.admitted = True
    st.metrics.held.inc()
    st.admission.pause()


def release(exc=None):
    if g.pop("admitted", False):
        st = state()
        st.admission.leave()
        st.metrics.held.dec()


def _cooperative_yield():
    """A call that lets the requests that arrived with this one be counted before it runs:
    ``gevent.sleep(0)`` under the gevent worker, nothing elsewhere (tests, the debug server)."""
    try:
        from gevent import monkey, sleep
    except ImportError:
        return lambda: None
    return (lambda: sleep(0)) if monkey.is_module_patched("socket") else (lambda: None)
