"""Load-balanced throughput: replicas behind the shipped nginx config, against the same replicas driven directly.

    python benchmarks/replicas_bench.py                 # about 1 minute: 2 rounds of 10 s per phase
    python benchmarks/replicas_bench.py --duration 2 --rounds 1    # a smoke run

The bar (issue 14): 28x28 PNGs through nginx at no less than 80% of the sum of
the replicas' direct rates.

Starts ``--replicas`` instances of the service (gunicorn as ``mnist-serve``
runs it, access log on, the committed model, one models directory) and Debian's
nginx running deploy/nginx/nginx.conf in front of them (tests/replicas.py
adapts only its upstream ports, listen port and temp paths), all on
127.0.0.1, then alternates two phases with ``wrk`` (Debian package ``wrk``):

- direct: every replica driven at once, each by its own wrk with its share
  of the connections. On one machine the replicas share its cores, so this
  is what they deliver together with no balancer; each driven alone would get
  every core, and the sum of those rates would count the cores once per replica.
- through nginx: one wrk with all the connections against nginx, which
  needs CPU from the same cores: the ratio is the front end's whole cost.

The body is examples/digit.png (an MNIST test digit, 28x28) posted as a raw
``image/png`` body. Phases alternate (direct, nginx, direct, ...) so both
meet the same load from the host; the medians are compared.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from tests.replicas import Nginx, Replicas  # noqa: E402

BAR = 0.80
BODY = REPO / "examples" / "digit.png"

# wrk posts the file named by BODY_FILE and prints its summary as one JSON line
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = assert(io.open(os.getenv("BODY_FILE"), "rb")); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "non2xx": %d, "socket_errors": %d, '
    .. '"p50_ms": %f, "p99_ms": %f}\\n', summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


def start_wrk(url, connections, seconds, script):
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
                             url + "/predict"], env={**os.environ, "BODY_FILE": str(BODY)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc):
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {err}")
    summary = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    summary["rate"] = summary["requests"] / summary["seconds"]
    return summary


def direct(ports, connections, seconds, script):
    """Every replica driven at once; ``(sum of rates, per-replica summaries)``."""
    share = [connections // len(ports) + (i < connections % len(ports)) for i in range(len(ports))]
    procs = [start_wrk(f"http://127.0.0.1:{p}", c, seconds, script) for p, c in zip(ports, share)]
    summaries = [result(p) for p in procs]
    return sum(s["rate"] for s in summaries), summaries


def balanced(url, connections, seconds, script):
    summary = result(start_wrk(url, connections, seconds, script))
    return summary["rate"], [summary]


def warm_up(url, n=200):
    """Every worker loaded and answering, before anything is timed."""
    body = BODY.read_bytes()
    with ThreadPoolExecutor(4) as pool:
        statuses = set(pool.map(lambda _: requests.post(url + "/predict", data=body, timeout=10,
                                                        headers={"Content-Type": "image/png"}).status_code, range(n)))
    if statuses != {200}:
        raise RuntimeError(f"warm-up answers: {statuses}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--workers", type=int, default=1,
                   help="gunicorn workers per replica (three replicas of one already fill two cores)")
    p.add_argument("--connections", type=int, default=12, help="wrk connections in all, in either phase")
    p.add_argument("--duration", type=float, default=10, help="seconds per phase")
    p.add_argument("--rounds", type=int, default=2, help="direct/nginx pairs, alternated")
    p.add_argument("--json", help="also write every figure to this file")
    args = p.parse_args(argv)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian package '{tool}')")

    seconds = max(1, round(args.duration))
    with tempfile.TemporaryDirectory(prefix="replicas-bench-") as tmp:
        tmp = Path(tmp)
        models = tmp / "models" / "mnist"
        models.mkdir(parents=True)
        shutil.copytree(REPO / "models" / "mnist" / "1", models / "1")
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT)
        with Replicas(tmp / "models", tmp, args.replicas, workers=args.workers) as replicas, \
                Nginx(replicas.ports, tmp) as front:
            warm_up(front.url)
            load = os.getloadavg()[0]
            rows = []
            for _ in range(args.rounds):
                for phase, run in (("direct", lambda: direct(replicas.ports, args.connections, seconds, script)),
                                   ("nginx", lambda: balanced(front.url, args.connections, seconds, script))):
                    rate, summaries = run()
                    rows.append({"phase": phase, "rate": rate, "summaries": summaries})
                    print(f"  {phase:6s} {rate:8.0f} req/s", file=sys.stderr)

    medians = {phase: statistics.median(r["rate"] for r in rows if r["phase"] == phase)
               for phase in ("direct", "nginx")}
    ratio = medians["nginx"] / medians["direct"]
    print(f"\n{args.replicas} replicas x {args.workers} worker(s), {args.connections} connections, {seconds} s per "
          f"phase, {args.rounds} round(s); {os.cpu_count()} CPUs, {platform.machine()}, load average {load:.2f} "
          "at the start\n")
    print("| phase | round | req/s | p50 ms | p99 ms | non-2xx | socket errors |")
    print("| --- | --: | --: | --: | --: | --: | --: |")
    for i, row in enumerate(rows):
        s = row["summaries"]
        print(f"| {'direct, sum of ' + str(len(s)) + ' replicas' if row['phase'] == 'direct' else 'through nginx'} "
              f"| {i // 2 + 1} | {row['rate']:,.0f} | {max(x['p50_ms'] for x in s):.2f} | "
              f"{max(x['p99_ms'] for x in s):.2f} | {sum(x['non2xx'] for x in s)} | "
              f"{sum(x['socket_errors'] for x in s)} |")
    print("\n(direct rows: p50 and p99 of the slowest replica, errors summed)")
    errors = sum(x["non2xx"] + x["socket_errors"] for row in rows for x in row["summaries"])
    verdict = "met" if ratio >= BAR and errors == 0 else "NOT met"
    print(f"\nmedian direct {medians['direct']:,.0f} req/s, through nginx {medians['nginx']:,.0f} req/s: "
          f"{100 * ratio:.0f}%, {errors} errors (bar {100 * BAR:.0f}% with none: {verdict})")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "load_average": load, "rows": rows,
                                               "medians": medians, "ratio": ratio, "time": time.time()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
