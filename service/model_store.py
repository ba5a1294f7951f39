"""The serving model: found in MODELS_DIR/<name>/<N>/, validated, hot-swapped.

One reference, ``store.current``, points at an immutable :class:`ServedModel`.
A new version is loaded and checked completely on the side (card, checksum,
shapes, finite weights, a self-check prediction) and only then swapped in with
a single assignment, so a request sees either the old model or the new one,
never a mix and never a half-loaded one. A version that fails, for any
reason at all, is logged once, counted, remembered (``store.rejected``, shown
by /health) and skipped until its files change; the current model keeps
serving, and a newer or older valid version is still found. A version whose
directory or files are links leading out of the store is refused.

Reasons kept for clients name versions, never filesystem paths; the log has both.
"""
import datetime
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuralnet.calibration import softmax
from neuralnet.model_io import CARD, WEIGHTS, ModelFormatError, forward, list_versions, load_verified
from neuralnet.network import Network

log = logging.getLogger(__name__)

OTHER_VERSIONS_CACHED = 2  # older (or not yet polled) versions kept loaded for requests that name them


class VersionUnavailable(LookupError):
    """A version asked for by number that cannot be served; the message says why."""


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: int
    network: Network
    card: dict[str, Any]
    loaded_at: str
    path: Path
    probe_checked: bool = False

    def predict(self, x: NDArray[np.float32]) -> NDArray[np.floating]:
        """``x: (n, 784)`` float32 in [0, 1] -> ``(n, 10)`` probabilities (rows sum to 1)."""
        out = forward(self.network, self.card, x)
        if self.network.layers[-1].describe() != {"type": "activation", "name": "softmax"}:
            out = softmax(out)  # scores -> probabilities
        return out

    def logits(self, x: NDArray[np.float32]) -> NDArray[np.floating]:
        """``x: (n, 784)`` float32 in [0, 1] -> ``(n, 10)`` outputs before the final softmax."""
        return forward(self.network, self.card, x, logits=True)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": str(self.version), "loaded_at": self.loaded_at,
                "test_accuracy": self.card.get("metrics", {}).get("test_accuracy"),
                "probe_checked": self.probe_checked}


def load(model_dir: Path, version: int) -> ServedModel:
    """Load and validate one version; raises ModelFormatError with a one-line reason."""
    path = Path(model_dir) / str(version)
    inside_store(Path(model_dir), path)
    network, card, probe_checked = load_verified(path)
    if card["architecture"]["input_size"] != 784 or card["architecture"]["output_size"] != 10:
        raise ModelFormatError(f"expects {card['architecture']['input_size']} inputs and "
                               f"{card['architecture']['output_size']} outputs, not 784 and 10")
    model = ServedModel(Path(model_dir).name, int(version), network, card,
                        datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), path,
                        probe_checked)
    self_check(model)
    return model


def inside_store(model_dir: Path, path: Path) -> None:
    """Refuse a version whose directory or files resolve outside ``model_dir`` (links out of the store)."""
    root = model_dir.resolve()
    for target in (path, path / CARD, path / WEIGHTS):
        if not target.resolve().is_relative_to(root):
            raise ModelFormatError(f"{target.relative_to(model_dir)} links outside the model store")


def self_check(model: ServedModel) -> None:
    """Predict on a blank and a noise image: shapes right, probabilities finite and summing to 1."""
    x = np.zeros((2, 784), np.float32)
    x[1] = np.random.default_rng(0).random(784, dtype=np.float32)
    with np.errstate(all="ignore"):  # overflow is judged below, not warned about
        p = model.predict(x)
    if p.shape != (2, 10) or not np.isfinite(p).all() or not np.allclose(p.sum(axis=1), 1, atol=1e-3):
        raise ModelFormatError(f"self-check failed (output shape {p.shape}, not valid probabilities)")


Signature = tuple[tuple[Any, ...], ...] | None


def _signature(path: Path) -> Signature:
    """Changes whenever a file in the version dir is written, so a fixed version is retried."""
    try:
        with os.scandir(path) as entries:
            return tuple(sorted((e.name, *_stamp(e)) for e in entries))
    except OSError:
        return None


def _stamp(entry: os.DirEntry) -> tuple[int, int]:
    """Size and mtime of a directory entry; an entry that cannot be stat'ed (a dangling link) as itself."""
    try:
        st = entry.stat()
    except OSError:
        st = entry.stat(follow_symlinks=False)
    return st.st_size, st.st_mtime_ns


class ModelStore:
    """Keeps the best loadable version of one model serving, in this process."""

    def __init__(self, models_dir: str | os.PathLike, name: str, pinned: int | None = None, interval: float = 5.0,
                 on_swap: Callable[[ServedModel | None, ServedModel], object] | None = None,
                 on_reject: Callable[[int, str], object] | None = None) -> None:
        self.model_dir = Path(models_dir) / name
        self.name, self.pinned, self.interval = name, pinned, interval
        self.on_swap = on_swap or (lambda previous, model: None)
        self.on_reject = on_reject or (lambda version, reason: None)
        self.current: ServedModel | None = None
        self.reason = "no model loaded yet"
        # version -> (directory signature, reason) when it failed; read by /health
        self._failed: dict[int, tuple[Signature, str]] = {}
        # version -> (directory signature, ServedModel) of older versions requests asked for, oldest first
        self._others: dict[int, tuple[Signature, ServedModel]] = {}
        self._lock = threading.Lock()
        self._poller_pid: int | None = None

    def refresh(self) -> ServedModel | None:
        """Scan once; swap to the wanted version if it differs and validates. Returns current."""
        with self._lock:  # one scan at a time; readers never take this lock
            for version in self._candidates():
                if self.current is not None and version == self.current.version:
                    break  # nothing newer that works
                if self._try(version):
                    break
            if self.current is None:
                reason = self._no_model_reason()
                if reason != self.reason:  # once per change, not once per scan
                    log.error("nothing to serve from %s: %s", self.model_dir, reason)
                self.reason = reason
            return self.current

    def _candidates(self) -> list[int]:
        versions = list_versions(self.model_dir)
        if self.pinned is not None:
            return [self.pinned] if self.pinned in versions else []
        return sorted(versions, reverse=True)

    def _load(self, version: int, signature: Signature) -> ServedModel | None:
        """``version`` loaded and validated, or None once its failure is logged and remembered.

        A version that failed is not tried again until its files change
        (``signature``), whether the poller or a request asked for it.
        Called with the lock held.
        """
        failed = self._failed.get(version)
        if failed is not None and failed[0] == signature:
            return None
        try:
            model = load(self.model_dir, version)
        except Exception as exc:  # whatever a file did to the loader, this version is refused, nothing more
            reason = str(exc) if isinstance(exc, ModelFormatError) else f"unreadable ({type(exc).__name__})"
            self._failed[version] = (signature, reason)
            log.error("skipping %s version %s (%s): %s", self.name, version, self.model_dir / str(version), reason,
                      exc_info=not isinstance(exc, ModelFormatError))
            self.on_reject(version, reason)
            return None
        self._failed.pop(version, None)
        return model

    def _try(self, version: int) -> bool:
        start = time.perf_counter()
        model = self._load(version, _signature(self.model_dir / str(version)))
        if model is None:
            return False
        previous, self.current = self.current, model
        log.info("serving %s version %s (was %s), loaded in %.0f ms%s", self.name, version,
                 previous.version if previous else "none", 1000 * (time.perf_counter() - start),
                 "" if model.probe_checked else "; it has no probe batch, so its card is not checked against "
                                                "its outputs (retrain to add one)")
        self.on_swap(previous, model)
        return True

    def version(self, version: int) -> ServedModel:
        """The model at ``version``: the serving one, or another on disk loaded on demand.

        Lets a client ask for an older version that is still on disk (TF
        Serving's and the V2 protocol's ``versions/<v>``). Raises
        :class:`VersionUnavailable` when it is not on disk, failed validation,
        or the service is pinned to a different version.
        """
        current = self.current
        if current is not None and current.version == version:
            return current
        if self.pinned is not None:
            raise VersionUnavailable(f"version {version} of {self.name!r} is not served: the service is "
                                     f"pinned to version {self.pinned} (MODEL_VERSION)")
        on_disk = list_versions(self.model_dir)
        if version not in on_disk:
            raise VersionUnavailable(f"no version {version} of {self.name!r}; versions on disk: "
                                     f"{', '.join(map(str, on_disk)) or 'none'}")
        path = self.model_dir / str(version)
        signature = _signature(path)
        cached = self._others.get(version)
        if cached is not None and cached[0] == signature:  # without the lock: a scan may hold it
            return cached[1]
        with self._lock:
            cached = self._others.get(version)  # another request may have loaded it meanwhile
            if cached is not None and cached[0] == signature:
                return cached[1]
            model = self._load(version, signature)
            if model is None:
                raise VersionUnavailable(f"version {version} of {self.name!r} failed validation: "
                                         f"{self._failed[version][1]}")
            self._others.pop(version, None)
            self._others[version] = (signature, model)
            while len(self._others) > OTHER_VERSIONS_CACHED:
                self._others.pop(next(iter(self._others)))
        return model

    def available(self) -> list[int]:
        """Version numbers a request may name: the pinned one, or every version on disk."""
        if self.pinned is not None:
            return [self.pinned]
        return list_versions(self.model_dir)

    def rejected(self) -> list[dict[str, str]]:
        """``[{"version", "reason"}, ...]`` for the versions on disk that failed, newest first."""
        on_disk = set(list_versions(self.model_dir))
        return [{"version": str(v), "reason": self._failed[v][1]}
                for v in sorted(self._failed, reverse=True) if v in on_disk]

    def _no_model_reason(self) -> str:
        # no path here: a reason is shown to clients (the log line has it)
        if self.pinned is not None and self.pinned not in list_versions(self.model_dir):
            return f"pinned version {self.pinned} of {self.name!r} not found in the model store"
        if not list_versions(self.model_dir):
            return f"no versions of {self.name!r} in the model store (MODELS_DIR)"
        return f"no valid version of {self.name!r} in the model store (see /health and the logs)"

    def ensure_polling(self) -> None:
        """Start this process's poller once; safe to call on every request and after fork."""
        if self.interval <= 0 or self._poller_pid == os.getpid():
            return
        self._poller_pid = os.getpid()  # a forked worker has the parent's pid here, not its own
        threading.Thread(target=self._poll, name=f"model-poller-{self.name}", daemon=True).start()

    def _poll(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.refresh()
            except Exception:  # never let the poller die: log and try again next time
                log.exception("model refresh failed")
