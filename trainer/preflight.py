"""Checks made before a training run starts, so that no run is lost to a setup mistake.

Training the default preset takes minutes; finding out only when the model is
saved that the models directory belongs to another user (the usual case with
`docker compose run trainer` and a host directory) throws all of it away. Each
check here tries the real operation on a scratch name, since permission bits
say nothing about read-only mounts, ACLs or root squashing, and says what to
change in one message.
"""
import os
import tempfile
from pathlib import Path

from trainer.data import missing_files

COMPOSE_HINT = ("with docker compose, run the trainer as the owner of the host directory: "
                "`env UID=$(id -u) GID=$(id -g) docker compose run --rm trainer` (bash will not assign UID "
                "itself), or set UID and GID in .env")


def problems(models_dir, model_name, data_dir, download):
    """Reasons the run would fail at its end or its start, as one-line messages ([] if none)."""
    found = []
    target = Path(models_dir) / model_name
    reason = _unwritable(target)
    if reason:
        found.append(f"cannot write model versions to {target} ({reason}) as uid {os.getuid()}, "
                     f"gid {os.getgid()}; {COMPOSE_HINT}, or pass --models-dir")
    if download and missing_files(data_dir):  # (without download, loading says what is missing at once)
        reason = _unwritable(Path(data_dir))
        if reason:
            found.append(f"MNIST must be downloaded, but {data_dir} is not writable ({reason}); "
                         "pass --data-dir with a writable directory or the files themselves")
    return found


def _unwritable(directory):
    """None if files can be created in ``directory``, or in the nearest existing folder above it
    (where the run would create it), else why not. Leaves nothing behind either way."""
    existing = directory.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".tmp-preflight-"):
            pass
    except OSError as exc:
        return os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return None
