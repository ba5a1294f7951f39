"""Peak worker memory and time for the worst legal batches under the default limits.

    python benchmarks/worst_case_memory.py [--workers 2]

Starts the real server (gunicorn, default limits, the committed model) once
per kind of batch, sends that batch to /predict over HTTP on 127.0.0.1, and
reports the answer, its time, and the peak resident memory (VmHWM) of the
busiest worker, before and after. One server per kind, so that each peak
belongs to one kind of request; one worker by default, so that every request
lands on the worker measured. With ``--held``, the worst batches are sent
while other clients hold nearly MAX_PENDING_BYTES of unfinished uploads in the
same worker: the whole bound the defaults allow. Exits 1 if any peak exceeds
--bound MB or an answer takes longer than 30 s or is not 200/4xx.
"""
import argparse
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import LiveServer  # noqa: E402
from tests.worst_case import DEFAULTS, KINDS, batch, multipart, peak_rss_mb, worker_pids  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def measure(kind, workdir, workers, held):
    """``(status, code, seconds, peak MB before, peak MB after, body MB)`` for one worst batch of ``kind``."""
    body, content_type = multipart(batch(kind))
    with LiveServer(models_dir(workdir), workdir, workers=workers) as server:
        server.wait_models_loaded()
        pids = worker_pids(server.proc.pid)
        uploads = hold_uploads(server.port, DEFAULTS.max_pending_bytes - len(body)) if held else []
        before = max(peak_rss_mb(p) for p in pids)
        start = time.perf_counter()
        r = requests.post(server.url + "/predict", data=body, headers={"Content-Type": content_type}, timeout=60)
        seconds = time.perf_counter() - start
        after = max(peak_rss_mb(p) for p in pids)
        code = r.json().get("code", "") if r.status_code >= 400 else ""
        for sock in uploads:
            sock.close()
    return r.status_code, code, seconds, before, after, len(body) / 2**20


def hold_uploads(port, total):
    """Connections that send all but the last byte of ``total`` bytes of uploads, and wait."""
    socks, each = [], DEFAULTS.max_upload_bytes
    for size in [each] * (total // each) + [total % each]:
        if size < 2:
            continue
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                     b"Content-Length: %d\r\n\r\n" % size + b"\0" * (size - 1))
        socks.append(sock)
    time.sleep(1)  # the worker has read what was sent
    return socks


def models_dir(workdir):
    root = Path(workdir) / "models"
    if not root.exists():
        shutil.copytree(REPO / "models" / "mnist" / "1", root / "mnist" / "1")
    return root


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--held", action="store_true", help="while other uploads hold MAX_PENDING_BYTES")
    p.add_argument("--bound", type=float, default=512, help="peak RSS per worker allowed, MB")
    args = p.parse_args(argv)
    print("| batch | body MB | answer | time s | worker peak RSS before, MB | after, MB |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    ok = True
    with tempfile.TemporaryDirectory() as workdir:
        for kind in args.kinds:
            status, code, seconds, before, after, size = measure(kind, workdir, args.workers, args.held)
            print(f"| {kind} | {size:.2f} | {status} {code} | {seconds:.2f} | {before:.0f} | {after:.0f} |", flush=True)
            ok &= after <= args.bound and seconds <= 30 and (status == 200 or 400 <= status < 500)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
