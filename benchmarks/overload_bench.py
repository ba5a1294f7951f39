"""Overload: 256 connections of wrk against 2 workers, with and without the queue bound.

    python benchmarks/overload_bench.py                      # ~1 minute
    python benchmarks/overload_bench.py --limits 8 32 0 --duration 10

Starts the real gunicorn server (2 workers, the committed default model) on
127.0.0.1 once per value of MAX_QUEUED_REQUESTS (0 here means "no bound": a
limit no run can reach), and drives it with ``wrk`` (Debian package ``wrk``),
one connection per wrk thread, each posting one 28x28 MNIST PNG to /predict
again as soon as its answer arrives (wrk does not honour Retry-After: the
worst case for the server).

wrk reports one latency distribution for every answer together, which under
overload mixes quick refusals with the accepted requests. With one
connection per thread, the script below times each request itself (LuaJIT's
FFI reads the monotonic clock when wrk builds a request and when its answer
is complete) and keeps the times by status, so the table gives the accepted
requests' own percentiles. It also checks every refusal: a 503 whose body
has ``"code":"overloaded"`` and that carries ``Retry-After``.
"""
import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.serve_bench import encode, mnist_digits  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

UNBOUNDED = 1_000_000

WRK_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } mnist_timespec;
           int clock_gettime(int clk_id, mnist_timespec *tp); ]]
local ts = ffi.new("mnist_timespec")
local function now_ms() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6 end
local f = assert(io.open(os.getenv("BODY_FILE"), "rb")); local body = f:read("*a"); f:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) started = 0; accepted = {}; refused = {}; other = 0; bad_refusals = 0 end
function request()
  started = now_ms()
  return wrk.format("POST", "/predict", {["Content-Type"] = "image/png"}, body)
end
function response(status, headers, resp_body)
  local ms = now_ms() - started
  if status == 200 then accepted[#accepted + 1] = ms
  elseif status == 503 then
    refused[#refused + 1] = ms
    if not headers["Retry-After"] or not string.find(resp_body, '"code":"overloaded"', 1, true) then
      bad_refusals = bad_refusals + 1 end
  else other = other + 1 end
end
function done(summary, latency, requests)
  local a, r, o, b = {}, {}, 0, 0
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("accepted")) do a[#a + 1] = v end
    for _, v in ipairs(t:get("refused")) do r[#r + 1] = v end
    o = o + t:get("other"); b = b + t:get("bad_refusals")
  end
  local e = summary.errors
  io.write("JSON ", string.format('{"seconds": %f, "other": %d, "bad_refusals": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, ', summary.duration / 1e6, o, b, e.connect, e.read, e.write, e.timeout),
    '"accepted": [', table.concat(a, ","), '], "refused": [', table.concat(r, ","), "]}\n")
end
"""


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def run(limit, connections, duration, workdir, body_file, script):
    env = {"MAX_QUEUED_REQUESTS": limit or UNBOUNDED, "ACCESS_LOG": "1"}
    with LiveServer(REPO / "models", workdir, workers=2, **env) as server:
        server.wait_models_loaded()
        subprocess.run(["wrk", "-t2", "-c8", "-d2s", "-s", str(script), server.url], env=_env(body_file),
                       capture_output=True, check=True)  # warm-up: imports, caches, the model's first batches
        out = subprocess.run(["wrk", f"-t{connections}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
                              "-s", str(script), server.url], env=_env(body_file), capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("JSON ")), None)
    if out.returncode or line is None:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    return json.loads(line[5:])


def _env(body_file):
    import os

    return {**os.environ, "BODY_FILE": str(body_file)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limits", type=int, nargs="+", default=[32, 0],
                   help="MAX_QUEUED_REQUESTS values to run (0: no bound)")
    p.add_argument("--connections", type=int, default=256)
    p.add_argument("--duration", type=int, default=10, help="seconds of load per run")
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        body_file, script = tmp / "digit.png", tmp / "overload.lua"
        body_file.write_bytes(encode(mnist_digits(1)[0]))
        script.write_text(WRK_LUA)
        print(f"# {platform.node()}: {platform.processor() or platform.machine()}, "
              f"{len(__import__('os').sched_getaffinity(0))} cores; {time.strftime('%Y-%m-%d %H:%M')}; "
              f"wrk, {args.connections} connections, {args.duration} s, 28x28 PNG to /predict, 2 workers\n")
        print("| MAX_QUEUED_REQUESTS | answers/s | accepted/s | 503/s | accepted p50 / p99 / max ms "
              "| 503 p50 / p99 ms | other statuses | bad 503s | socket errors, timeouts |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for limit in args.limits:
            r = run(limit, args.connections, args.duration, tmp, body_file, script)
            a, f, s = r["accepted"], r["refused"], r["seconds"]
            errors = r["connect"] + r["read"] + r["write"]
            print(f"| {limit or 'none'} | {(len(a) + len(f)) / s:,.0f} | {len(a) / s:,.0f} | {len(f) / s:,.0f} "
                  f"| {pct(a, 50):.1f} / {pct(a, 99):.1f} / {max(a, default=float('nan')):.1f} "
                  f"| {pct(f, 50):.1f} / {pct(f, 99):.1f} | {r['other']} | {r['bad_refusals']} "
                  f"| {errors}, {r['timeout']} |", flush=True)


if __name__ == "__main__":
    main()
