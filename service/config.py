"""The service's configuration: one typed object, read once from the environment.

Every field has a default; ``Config.from_env()`` overrides them from the
variables in ``ENV`` (documented in README.md and .env.example), and tests pass
keyword overrides on top. A malformed value stops start-up with a message that
names the variable, instead of surfacing as a 500 later.
"""
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from service.cors import parse_origins

_CHECKOUT_MODELS = Path(__file__).resolve().parents[1] / "models"


def default_models_dir() -> Path:
    """models/ of the checkout (an editable install) or of the working directory
    (``pip install . && mnist-serve`` in a clone), else /models (the container)."""
    for candidate in (_CHECKOUT_MODELS, Path.cwd() / "models"):
        if candidate.is_dir():
            return candidate
    return Path("/models")


class ConfigError(ValueError):
    """An environment variable that cannot be used as it is."""


@dataclass(frozen=True)
class Config:
    models_dir: Path = None  # type: ignore[assignment]  # None = default_models_dir(), in __post_init__
    model_name: str = "mnist"
    model_version: str = "latest"        # "latest" or a version number to pin
    reload_interval: float = 5.0         # seconds between scans of the models dir; 0 = never
    max_upload_bytes: int = 10 * 2**20   # whole request body
    max_image_pixels: int = 12_000_000   # per decoded image (width x height; JPEGs as decoded, at reduced scale)
    max_request_pixels: int = 50_000_000  # summed over a request's images, checked before any is decoded
    # request bodies a worker holds at once, received or arriving; past it uploads get 503.
    # 0 = the larger of 64 MiB and MAX_UPLOAD_BYTES
    max_pending_bytes: int = 0
    max_batch_images: int = 64           # images per /predict request
    # model requests (/predict, /read, V2 inference) a worker holds at once, waiting or
    # running; past it they get 503 overloaded with Retry-After, at once
    max_queued_requests: int = 32
    body_timeout: float = 60.0           # seconds a request body may take to arrive in all (408 after)
    api_key: str = ""                    # empty = /predict is open
    # origins whose pages may call the API (comma-separated, or *); empty = no CORS headers
    cors_origins: str = ""
    # calibrated confidence below which /predict answers "uncertain"; negative = the model card's
    confidence_threshold: float = -1.0
    # digit score below which /predict answers "not_a_digit"; empty = the model card's
    digit_score_threshold: str = ""
    log_level: str = "INFO"
    access_log: bool = True
    host: str = "0.0.0.0"
    port: int = 8000
    workers: int = 2
    # where gunicorn's workers share metric samples; gunicorn.conf.py fills it in
    # (a temp dir) before anything imports prometheus_client. Empty = this process only.
    prometheus_multiproc_dir: str = ""

    def __post_init__(self) -> None:
        if self.models_dir is None:
            object.__setattr__(self, "models_dir", default_models_dir())
        object.__setattr__(self, "models_dir", Path(self.models_dir))
        if self.model_version != "latest" and not re.fullmatch(r"[1-9][0-9]{0,17}", str(self.model_version)):
            raise ConfigError(f"MODEL_VERSION must be 'latest' or a positive integer, got {self.model_version!r}")
        if self.max_pending_bytes == 0:
            object.__setattr__(self, "max_pending_bytes", max(64 * 2**20, self.max_upload_bytes))
        for name in ("max_upload_bytes", "max_image_pixels", "max_request_pixels", "max_pending_bytes",
                     "max_batch_images", "max_queued_requests", "port", "workers", "body_timeout"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.upper()} must be at least 1, got {getattr(self, name)}")

        if self.confidence_threshold > 1:
            raise ConfigError(f"CONFIDENCE_THRESHOLD must be at most 1, got {self.confidence_threshold}")
        if self.digit_score_threshold:
            try:
                float(self.digit_score_threshold)
            except ValueError:
                raise ConfigError(f"DIGIT_SCORE_THRESHOLD={self.digit_score_threshold!r} is not a number") from None
        try:
            parse_origins(self.cors_origins)
        except ValueError as exc:
            raise ConfigError(f"CORS_ORIGINS: {exc}") from None
        if self.max_pending_bytes < self.max_upload_bytes:
            raise ConfigError("MAX_PENDING_BYTES must be at least MAX_UPLOAD_BYTES, or no full-size upload "
                              "could ever be received")

    @property
    def digit_score_override(self) -> float | None:
        return float(self.digit_score_threshold) if self.digit_score_threshold else None

    @property
    def cors_origin_set(self) -> set[str]:
        return parse_origins(self.cors_origins)

    @property
    def pinned_version(self) -> int | None:
        return None if self.model_version == "latest" else int(self.model_version)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Config":
        """Defaults, then ``environ`` (default ``os.environ``), then ``overrides``."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f.name.upper())
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(f.name, raw.strip(), f.type)
        return replace(cls(**values), **overrides)


def _parse(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind is bool:
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return raw.lower() in {"1", "true", "yes", "on"}
        if kind in (int, float):
            return kind(raw)
        return raw
    except ValueError:
        raise ConfigError(f"{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
