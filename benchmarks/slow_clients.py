"""Does the service keep answering while slow clients hold connections open?

    python benchmarks/slow_clients.py                      # ~1 minute: 64 of each kind for 20 s
    python benchmarks/slow_clients.py --connections 256 --hold 30 --modes headers
    python benchmarks/slow_clients.py --url http://127.0.0.1:8000   # a server already running

Without ``--url`` it starts the service's gunicorn (2 workers, default config)
on 127.0.0.1 over a temporary copy of the committed model. For each mode it
holds ``--connections`` slow connections open for ``--hold`` seconds (replacing
any the server closes), and meanwhile probes ``/health/live`` and ``/predict``
in turn, one every 100 ms, each on a fresh connection with 2 s to answer:

- ``headers``: slowloris: a request line, then a header line a second, never the end of the head;
- ``body``: a POST /predict head with Content-Length 100000, then a byte a second;
- ``idle``: a POST /predict head with Content-Length 100, then nothing.

It prints one markdown table, and exits 1 if fewer than 95% of any mode's probes
were answered 200 within 2 s. Latencies include failed probes, at the time they
gave up. It talks to 127.0.0.1 only, and stops by itself.
"""
import argparse
import gzip
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.live_server import LiveServer  # noqa: E402
from tests.slowclient import MODES, PROBE_TIMEOUT, SlowClients, answered_share, digit_png, probe_for  # noqa: E402

REQUIRED_SHARE = 0.95
COMMITTED_MODEL = REPO / "models" / "mnist" / "1"


def mnist_png():
    """The first MNIST test digit as a PNG when MNIST_DIR holds the test set, else a drawn 7."""
    path = Path(os.environ.get("MNIST_DIR", "")).expanduser() / "t10k-images-idx3-ubyte.gz"
    if not os.environ.get("MNIST_DIR") or not path.exists():
        return digit_png()
    from PIL import Image
    with gzip.open(path) as f:
        pixels = f.read(16 + 28 * 28)[16:]
    buf = io.BytesIO()
    Image.frombytes("L", (28, 28), pixels).save(buf, format="PNG")
    return buf.getvalue()


def local_port(url):
    """The port of ``url``, refusing any host but this machine's loopback."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"--url must be http://127.0.0.1:PORT (this benchmark attacks only loopback), got {url}")
    return parts.port or 80


def percentile(values, q):
    """The ``q``-th percentile (nearest rank) of ``values``, 0 for none."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else 0.0


def run_mode(port, mode, connections, hold, image):
    """Hold ``connections`` slow clients of ``mode`` for ``hold`` s while probing; one table row's numbers."""
    with SlowClients(port, mode, connections) as slow:
        probes = probe_for(port, hold, image)
    ms = [p.seconds * 1000 for p in probes]
    failures = [p for p in probes if not p.ok]
    for p in failures[:3]:  # enough to see what went wrong, not a flood
        print(f"  {mode}: probe {p.path} failed: status {p.status}, {p.seconds:.2f} s, {p.detail[:120]}",
              file=sys.stderr)
    return {"mode": mode, "connections": connections, "hold": hold, "probes": len(probes),
            "share": answered_share(probes), "p50": percentile(ms, 50), "p99": percentile(ms, 99),
            "max": max(ms, default=0.0), "reconnects": slow.reconnects,
            "life": statistics.median(slow.lifetimes) if slow.lifetimes else None,
            "endings": ", ".join(f"{k} x{v}" for k, v in slow.endings.most_common()) or "-",
            "refused": slow.failed_connects}


def table(rows):
    """The results as one markdown table."""
    lines = [f"| mode | connections | hold s | probes sent | answered 200 within {PROBE_TIMEOUT:.0f} s "
             "| p50 ms | p99 ms | max ms | slow conns closed by server (reconnects) | median life s "
             "| how they ended | failed connects |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|"]
    for r in rows:
        life = "-" if r["life"] is None else f"{r['life']:.1f}"
        lines.append(f"| {r['mode']} | {r['connections']} | {r['hold']:g} | {r['probes']} | {r['share']:.1%} "
                     f"| {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['reconnects']} | {life} "
                     f"| {r['endings']} | {r['refused']} |")
    return "\n".join(lines)


def run_all(port, args):
    """Every requested mode against the server on ``port``, one after another."""
    image, rows = mnist_png(), []
    for mode in args.modes:
        rows.append(run_mode(port, mode, args.connections, args.hold, image))
        time.sleep(1)  # let the server drop the last mode's connections before the next one
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=64, help="slow connections held at once, per mode")
    p.add_argument("--hold", type=float, default=20, help="seconds each mode holds them")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--url", help="a running server on 127.0.0.1 (default: start one)")
    args = p.parse_args()

    if args.url:
        rows = run_all(local_port(args.url), args)
    else:
        with tempfile.TemporaryDirectory(prefix="slow-clients-") as tmp:
            models = Path(tmp) / "models"
            shutil.copytree(COMMITTED_MODEL, models / "mnist" / "1")
            with LiveServer(models, tmp, workers=2) as server:
                server.wait_models_loaded()
                rows = run_all(server.port, args)
    print(table(rows))
    return 0 if all(r["share"] >= REQUIRED_SHARE for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
