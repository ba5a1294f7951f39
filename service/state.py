"""What the app holds while it runs, typed, and the one way views reach it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:  # only for the annotations: these modules import this one
    from service.admission import Admission
    from service.body import PendingBytes
    from service.config import Config
    from service.metrics import Metrics
    from service.model_store import ModelStore

KEY = "mnist"


@dataclass(frozen=True)
class State:
    """One per app (per worker process): built by ``create_app``, kept in ``app.extensions``."""
    config: Config
    store: ModelStore
    metrics: Metrics
    pending: PendingBytes  # request body bytes this worker holds
    admission: Admission  # model requests this worker holds


def install(app: Flask, state: State) -> None:
    app.extensions[KEY] = state


def state(app: Flask | None = None) -> State:
    """The state of ``app``, or of the app handling the current request."""
    return (app or current_app).extensions[KEY]
