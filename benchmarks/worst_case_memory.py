"""Peak worker memory and time for the worst legal batches under the default limits.

    python benchmarks/worst_case_memory.py [--workers 2]

Starts the real server (gunicorn, default limits, the committed model) once
per kind of batch, sends that batch to /predict over HTTP on 127.0.0.1, and
reports the answer, its time, and the peak resident memory (VmHWM) of the
busiest worker, before and after. One server per kind, so that each peak
belongs to one kind of request. Exits 1 if any peak exceeds --bound MB or an
answer takes longer than 30 s or is not 200/4xx.
"""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import LiveServer  # noqa: E402
from tests.worst_case import KINDS, batch, multipart, peak_rss_mb, worker_pids  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def measure(kind, workdir, workers):
    """``(status, code, seconds, peak MB before, peak MB after, body MB)`` for one worst batch of ``kind``."""
    body, content_type = multipart(batch(kind))
    with LiveServer(models_dir(workdir), workdir, workers=workers) as server:
        server.wait_models_loaded()
        pids = worker_pids(server.proc.pid)
        before = max(peak_rss_mb(p) for p in pids)
        start = time.perf_counter()
        r = requests.post(server.url + "/predict", data=body, headers={"Content-Type": content_type}, timeout=60)
        seconds = time.perf_counter() - start
        after = max(peak_rss_mb(p) for p in pids)
        code = r.json().get("code", "") if r.status_code >= 400 else ""
    return r.status_code, code, seconds, before, after, len(body) / 2**20


def models_dir(workdir):
    root = Path(workdir) / "models"
    if not root.exists():
        shutil.copytree(REPO / "models" / "mnist" / "1", root / "mnist" / "1")
    return root


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--bound", type=float, default=512, help="peak RSS per worker allowed, MB")
    args = p.parse_args(argv)
    print("| batch | body MB | answer | time s | worker peak RSS before, MB | after, MB |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    ok = True
    with tempfile.TemporaryDirectory() as workdir:
        for kind in args.kinds:
            status, code, seconds, before, after, size = measure(kind, workdir, args.workers)
            print(f"| {kind} | {size:.2f} | {status} {code} | {seconds:.2f} | {before:.0f} | {after:.0f} |", flush=True)
            ok &= after <= args.bound and seconds <= 30 and (status == 200 or 400 <= status < 500)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
