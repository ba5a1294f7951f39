"""Overload: 256 connections of wrk against 2 workers, with and without the queue bound, and behind nginx.

    python benchmarks/overload_bench.py                      # ~1 minute
    python benchmarks/overload_bench.py --limits 8 32 0 --fronts direct --duration 10

Starts the real gunicorn server (2 workers, the committed default model) on
127.0.0.1 and drives it with ``wrk`` (Debian package ``wrk``): 256
connections, each posting one 28x28 MNIST PNG to /predict again as soon as
its answer arrives (wrk does not honour Retry-After: the worst case for the
server). Two fronts:

- ``direct``: wrk against gunicorn, once per value of MAX_QUEUED_REQUESTS
  (0 here means "no bound": a limit no run can reach);
- ``nginx``: wrk against the shipped deploy/nginx/nginx.conf (Debian package
  ``nginx``) in front of the same server (MAX_QUEUED_REQUESTS at its
  default), its bound on model requests in flight set to ``--nginx-bound``
  for these 2 workers.

wrk reports one latency distribution for every answer together, which under
overload mixes quick refusals with the accepted requests. So the script
below times each request itself: it gives every request its own
X-Request-ID, which the service and nginx send back, and LuaJIT's FFI reads
the monotonic clock when wrk builds the request and when its answer is
complete. The table then has the accepted requests' own percentiles. Every
refusal is checked: a 503 whose body has ``"code": "overloaded"`` and that
carries ``Retry-After``. Two wrk threads: a thread per connection, as an
earlier version ran, took up to 0.9 of a core from the server it measured.
"""
import argparse
import contextlib
import json
import os
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
from service.config import Config  # noqa: E402
from tests import loadgen  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402
from tests.replicas import Nginx  # noqa: E402

UNBOUNDED = 1_000_000

WRK_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } mnist_timespec;
           int clock_gettime(int clk_id, mnist_timespec *tp); ]]
local ts = ffi.new("mnist_timespec")
local function now_ms() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6 end
local f = assert(io.open(os.getenv("BODY_FILE"), "rb")); local body = f:read("*a"); f:close()
local threads = {}
function setup(thread) table.insert(threads, thread); thread:set("id", #threads) end
function init(args) sent = {}; n = 0; accepted = {}; refused = {}; other = 0; bad_refusals = 0; unmatched = 0 end
function request()
  n = n + 1
  local rid = id .. "-" .. n
  sent[rid] = now_ms()
  return wrk.format("POST", "/predict", {["Content-Type"] = "image/png", ["X-Request-ID"] = rid}, body)
end
function response(status, headers, resp_body)
  local rid = headers["X-Request-ID"]
  local t0 = rid and sent[rid]
  if not t0 then unmatched = unmatched + 1; return end
  sent[rid] = nil
  local ms = now_ms() - t0
  if status == 200 then accepted[#accepted + 1] = ms
  elseif status == 503 then
    refused[#refused + 1] = ms
    if headers["Retry-After"] ~= "1" or not string.find(resp_body, '"code":%s*"overloaded"') then
      bad_refusals = bad_refusals + 1 end
  else other = other + 1 end
end
function done(summary, latency, requests)
  local a, r, o, b = {}, {}, 0, 0
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("accepted")) do a[#a + 1] = v end
    for _, v in ipairs(t:get("refused")) do r[#r + 1] = v end
    o = o + t:get("other") + t:get("unmatched"); b = b + t:get("bad_refusals")
  end
  local e = summary.errors
  io.write("JSON ", string.format('{"seconds": %f, "other": %d, "bad_refusals": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, ', summary.duration / 1e6, o, b, e.connect, e.read, e.write, e.timeout),
    '"accepted": [', table.concat(a, ","), '], "refused": [', table.concat(r, ","), "]}\n")
end
"""


def pct(values, q):
    return loadgen.percentile(sorted(values), q)


def run(front, limit, args, workdir, body_file, script):
    """One wrk run of ``args.duration`` s; ``front`` is "direct" or "nginx"."""
    env = {"MAX_QUEUED_REQUESTS": limit or UNBOUNDED, "ACCESS_LOG": "1"}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(LiveServer(REPO / "models", workdir, workers=2, **env))
        server.wait_models_loaded()
        url = server.url
        if front == "nginx":
            url = stack.enter_context(Nginx([server.port], workdir, model_requests=args.nginx_bound)).url
        wrk = ["wrk", "-s", str(script), "--timeout", "10s"]
        subprocess.run([*wrk, "-t2", "-c8", "-d2s", url], env=_env(body_file), capture_output=True,
                       check=True)  # warm-up: imports, caches, the model's first batches
        out = subprocess.run([*wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", url],
                             env=_env(body_file), capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("JSON ")), None)
    if out.returncode or line is None:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    return json.loads(line[5:])


def _env(body_file):
    return {**os.environ, "BODY_FILE": str(body_file)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fronts", nargs="+", choices=["direct", "nginx"], default=["direct", "nginx"])
    p.add_argument("--limits", type=int, nargs="+", default=[32, 0],
                   help="MAX_QUEUED_REQUESTS values to run directly (0: no bound)")
    p.add_argument("--nginx-bound", type=int, default=8,
                   help="nginx's bound on model requests in flight (4 per worker, as shipped)")
    p.add_argument("--connections", type=int, default=256)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--duration", type=int, default=10, help="seconds of load per run")
    args = p.parse_args()
    for tool in ("wrk", *(["nginx"] if "nginx" in args.fronts else [])):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install {tool}")
    runs = [("direct", limit) for limit in args.limits] if "direct" in args.fronts else []
    runs += [("nginx", Config(models_dir=".").max_queued_requests)] if "nginx" in args.fronts else []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        body_file, script = tmp / "digit.png", tmp / "overload.lua"
        body_file.write_bytes(encode(mnist_digits(1)[0]))
        script.write_text(WRK_LUA)
        print(f"# {platform.node()}: {platform.processor() or platform.machine()}, "
              f"{len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.2f}; "
              f"{time.strftime('%Y-%m-%d %H:%M')}; wrk, {args.threads} threads, {args.connections} connections, "
              f"{args.duration} s, 28x28 PNG to /predict, 2 workers\n")
        print("| front | bound | answers/s | accepted/s | 503/s | accepted p50 / p99 / max ms "
              "| 503 p50 / p99 ms | other answers | bad 503s | socket errors, timeouts |")
        print("| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: |")
        for front, limit in runs:
            r = run(front, limit, args, tmp, body_file, script)
            a, f, s = r["accepted"], r["refused"], r["seconds"]
            errors = r["connect"] + r["read"] + r["write"]
            bound = (f"nginx {args.nginx_bound} in flight, then MAX_QUEUED_REQUESTS={limit}" if front == "nginx"
                     else f"MAX_QUEUED_REQUESTS={limit}" if limit else "none")
            print(f"| {front} | {bound} | {(len(a) + len(f)) / s:,.0f} | {len(a) / s:,.0f} | {len(f) / s:,.0f} "
                  f"| {pct(a, 50):.1f} / {pct(a, 99):.1f} / {max(a, default=float('nan')):.1f} "
                  f"| {f'{pct(f, 50):.1f} / {pct(f, 99):.1f}' if f else '-'} | {r['other']} | {r['bad_refusals']} "
                  f"| {errors}, {r['timeout']} |", flush=True)


if __name__ == "__main__":
    main()
