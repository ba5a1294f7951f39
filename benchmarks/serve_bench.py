"""Serving throughput and latency of the real gunicorn server, and where the time goes.

    python benchmarks/serve_bench.py                 # ~2 minutes: every payload at c = 1, 8, 32
    python benchmarks/serve_bench.py --duration 5 --concurrency 8
    python benchmarks/serve_bench.py --versions 1 2  # the committed MLP against the CNN, same run
    python benchmarks/serve_bench.py --versions 1 4 --only "28x28 png" --rounds 5   # alternating, medians

Starts ``mnist-serve``'s gunicorn (default config: 2 workers, access log on,
written to a file) on 127.0.0.1 with the committed model, then drives it with
``wrk`` (Debian package ``wrk``) from a separate process:

- ``/health/live``: no work at all, the speed limit of the HTTP stack itself;
- a 28x28 PNG and a 280x280 PNG as raw ``image/png`` bodies;
- a multipart batch of 32 28x28 PNGs (images/s = requests/s x 32);
- a V2 (Open Inference Protocol) request of 64 MNIST digits as an FP32
  ``[64, 784]`` tensor to ``/v2/models/mnist/infer``, twice: as JSON, the
  way tritonclient writes it with ``binary_data=False``, and in Triton's binary
  tensor format, its default (images/s = requests/s x 64).

With ``--versions``, the server is started once per committed version, pinned
with MODEL_VERSION, and every payload runs against each in turn.

Then, in this process, it times the forward pass alone for 1, 32 and 64 images
per version, each stage of a request (parse, decode, preprocess, forward pass,
JSON) on the same payloads, reads each worker's RSS, and times loading +
self-checking the model. The load generator shares the machine's
cores with the server, as a sidecar or a co-located client would.
"""
import argparse
import gzip
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The in-process stage timings below should see what a worker sees: gunicorn's
# config gives every worker a single BLAS thread (set before NumPy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# ... and the metrics cost below is measured in multiprocess mode, as in a
# worker: every update writes a shared mmap file (set before prometheus_client loads).
METRICS_DIR = tempfile.mkdtemp(prefix="serve-bench-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neuralnet.model_io import list_versions  # noqa: E402
from service import predict, preprocess, tensors, uploads  # noqa: E402
from service.answers import Policy, judge  # noqa: E402
from service.config import Config  # noqa: E402
from service.metrics import Metrics  # noqa: E402
from service.model_store import load  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

LIMITS = Config(models_dir=".")  # the service's defaults

# wrk prints its numbers through this script as one JSON line
WRK_LUA = """
wrk.method = "POST"
local f = io.open(os.getenv("BODY_FILE"), "rb"); wrk.body = f:read("*a"); f:close()
for name, value in os.getenv("BODY_HEADERS"):gmatch("([^:\\n]+): ([^\\n]*)") do wrk.headers[name] = value end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('JSON {"requests": %d, "seconds": %f, "non2xx": %d, "socket_errors": %d, '
    .. '"p50_ms": %f, "p95_ms": %f, "p99_ms": %f}\\n', summary.requests, summary.duration / 1e6,
    e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3))
end
"""


def mnist_digits(n):
    root = Path(os.environ.get("MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]


def encode(pixels):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def payloads():
    digits = mnist_digits(32)
    canvas = Image.fromarray(255 - digits[0]).resize((280, 280), Image.Resampling.BILINEAR)
    boundary = "mnistbench"
    parts = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{i}.png\"\r\n"
                     f"Content-Type: image/png\r\n\r\n".encode() + encode(d) + b"\r\n" for i, d in enumerate(digits))
    binary, json_length = v2_binary_body(64)
    return {  # name: (body, request headers, images per request)
        "28x28 png": (encode(digits[0]), "Content-Type: image/png", 1),
        "280x280 png": (encode(np.asarray(canvas)), "Content-Type: image/png", 1),
        "batch of 32": (parts + f"--{boundary}--\r\n".encode(),
                        f"Content-Type: multipart/form-data; boundary={boundary}", 32),
        "v2 fp32 x 64": (v2_body(64), "Content-Type: application/json", 64),
        "v2 binary fp32 x 64": (binary, f"Inference-Header-Content-Length: {json_length}", 64),
    }


def v2_pixels(n):
    return mnist_digits(n).reshape(n, 784).astype(np.float32) / np.float32(255)


def v2_body(n):
    """An inference request as tritonclient writes it with binary_data=False: FP32 values as Python floats, flat."""
    return json.dumps({"inputs": [{"name": "image", "shape": [n, 784], "datatype": "FP32",
                                   "data": [v.item() for v in v2_pixels(n).ravel()]}]}).encode()


def v2_binary_body(n):
    """The same with tritonclient's defaults (binary tensor extension): ``(body, JSON length)``."""
    x = v2_pixels(n)
    header = json.dumps({"inputs": [{"name": "image", "shape": [n, 784], "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + x.tobytes(), len(header)


def route(payload):
    return "/v2/models/mnist/infer" if payload.startswith("v2") else "/predict"


def wrk(url, body, headers, concurrency, duration, workdir):
    body_file, script = workdir / "body", workdir / "post.lua"
    body_file.write_bytes(body)
    script.write_text(WRK_LUA)
    env = {**os.environ, "BODY_FILE": str(body_file), "BODY_HEADERS": headers}
    args = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line[5:] for line in out.splitlines() if line.startswith("JSON ")))


STAGES = ("parse", "decode", "preprocess", "forward", "json")


def stage_times(model, payload, headers, n_images, repeat):
    """Median milliseconds per request for each stage, in this process, through the service's own functions.

    A V2 request has no decode or preprocess stage: its "parse" is reading the
    tensor out of the JSON (or binary) body.
    """
    if payload.startswith(b"{"):
        json_length = int(headers.rpartition(": ")[2]) if "Inference-Header" in headers else len(payload)
        body, binary = payload[:json_length], payload[json_length:]
        outputs = tensors.parse_request(body, n_images, binary).outputs  # as asked: JSON or binary
        steps = [("parse", lambda _: tensors.parse_request(body, n_images, binary).x),
                 ("forward", model.predict),
                 ("json", lambda p: tensors.encode_response(model, "bench", outputs, p, p.argmax(axis=1)))]
    else:
        boundary = headers.partition("boundary=")[2].encode()
        steps = [("parse", lambda _: [c for _, c in uploads.split_multipart(payload, boundary)] if boundary
                  else [payload]),
                 ("decode", lambda blobs: predict.decode_all(blobs, LIMITS.max_image_pixels,
                                                             LIMITS.max_request_pixels)),
                 ("preprocess", preprocess.prepare),
                 ("forward", lambda prepared: judge(Policy.from_card(model.card), model.logits(prepared[0]),
                                                    prepared[1])),
                 ("json", lambda answered: predict.encode_predictions(model, *answered))]
    times = {name: [] for name in STAGES}
    for _ in range(repeat):
        value = None
        for name, step in steps:
            start = time.perf_counter()
            value = step(value)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: float(np.median(v)) if v else 0.0 for name, v in times.items()}


def worker_rss_mb(master_pid):
    children = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    rss = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        rss.append(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024)
    return rss


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", nargs="+", metavar="TEXT", help="run only payloads whose name contains TEXT")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--versions", type=int, nargs="+",
                   help="committed versions of models/mnist to compare (default: the latest, as served)")
    p.add_argument("--rounds", type=int, default=1,
                   help="start every version this many times, alternating, and compare their medians: "
                        "the VM's speed drifts between one server's runs and the next's")
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    versions = args.versions or [max(list_versions(REPO / "models" / "mnist"))]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    results = {"runs": [], "worker_rss_mb": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for round_ in range(1, args.rounds + 1):
            for version in versions:
                with LiveServer(REPO / "models", tmp, workers=args.workers, reload_interval=5,
                                model_version=version) as server:
                    server.wait_models_loaded()
                    drive(server, version, args, results, tmp, round_)
                    results["worker_rss_mb"][version] = worker_rss_mb(server.proc.pid)
    if len(versions) > 1:
        report_ratios(results, versions)
    report_in_process(results, versions)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(METRICS_DIR, ignore_errors=True)


def drive(server, version, args, results, tmp, round_=1):
    """Every payload at every concurrency against one running server."""
    cases = {"/health/live (no work)": (b"", "", 0), **payloads()}
    cases = {k: v for k, v in cases.items() if not args.only or any(t in k for t in args.only)}
    print(f"\nmodel version {version} ({architecture(version)})" + (f", round {round_}" if args.rounds > 1 else ""))
    print(f"{'payload':<24}{'c':>4}{'req/s':>10}{'img/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, (body, headers, n) in cases.items():
        path = "/health/live" if n == 0 else route(name)
        for c in args.concurrency:
            r = wrk(server.url + path, body, headers, c, args.duration, tmp) if n else \
                wrk_get(server.url + path, c, args.duration, tmp)
            rps = r["requests"] / r["seconds"]
            errors = r["non2xx"] + r["socket_errors"]
            results["runs"].append({"version": version, "round": round_, "payload": name, "concurrency": c,
                                    "rps": rps, "images_per_s": rps * n, **r})
            print(f"{name:<24}{c:>4}{rps:>10,.0f}{rps * n:>10,.0f}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}"
                  f"{r['p99_ms']:>9.2f}{errors:>8}", flush=True)


def report_ratios(results, versions):
    """Each version's median images/s over the rounds, and its ratio to the first version's."""
    cases = dict.fromkeys((r["payload"], r["concurrency"]) for r in results["runs"])
    print(f"\nimages/s (req/s where a request carries none), median of "
          f"{max(r['round'] for r in results['runs'])} round(s) (ratio to version {versions[0]})")
    print(f"{'payload':<24}{'c':>4}" + "".join(f"{'v' + str(v):>18}" for v in versions))
    for payload, c in cases:
        medians = [float(np.median([r["images_per_s"] or r["rps"] for r in results["runs"]
                                    if (r["payload"], r["concurrency"], r["version"]) == (payload, c, v)]))
                   for v in versions]
        cells = "".join(f"{m:>10,.0f} ({m / medians[0]:.0%})" if i else f"{m:>18,.0f}"
                        for i, m in enumerate(medians))
        print(f"{payload:<24}{c:>4}{cells}", flush=True)


def architecture(version):
    card = json.loads((REPO / "models" / "mnist" / str(version) / "model.json").read_text())
    kinds = [layer["type"] for layer in card["architecture"]["layers"]]
    return f"{'CNN' if 'conv2d' in kinds else 'MLP'}, {card['training'].get('preset', '?')} preset"


def wrk_get(url, concurrency, duration, workdir):
    script = workdir / "get.lua"
    script.write_text(WRK_LUA.split("done =", 1)[0].replace('wrk.method = "POST"', "").split("local f")[0]
                      + "done =" + WRK_LUA.split("done =", 1)[1])
    args = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "-s", str(script), url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line[5:] for line in out.splitlines() if line.startswith("JSON ")))


def metrics_cost_us(n=20_000):
    """Microseconds of metric updates one single-image /predict makes, and of one scrape."""
    m = Metrics(METRICS_DIR)

    def one_request():
        m.observe_request("/predict", "POST", 200, 0.003)
        m.upload_bytes.inc(300)
        m.inference.observe(0.0001)
        m.images.inc(1)
        m.digits.labels("7").inc(1)

    t = time.perf_counter()
    for _ in range(n):
        one_request()
    per_request = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for _ in range(100):
        m.render()
    return per_request, (time.perf_counter() - t) / 100 * 1e6


def forward_ms(model, n, repeat):
    """Median milliseconds of ``model.predict`` on ``n`` MNIST digits: the network alone."""
    x, times = v2_pixels(n), []
    for _ in range(repeat):
        start = time.perf_counter()
        model.predict(x)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def report_in_process(results, versions):
    for version in versions:
        rss = results["worker_rss_mb"][version]
        print(f"\nversion {version}: worker RSS after the runs: {', '.join(f'{m:.0f} MB' for m in rss)}")
    print(f"\nforward pass alone (ms, median, one BLAS thread as in a worker):\n{'version':<10}"
          f"{'1 image':>10}{'32':>10}{'64':>10}{'load ms':>10}")
    results["forward_ms"], results["model_load_ms"] = {}, {}
    for version in versions:
        loads = []
        for _ in range(5):
            t = time.perf_counter()
            model = load(REPO / "models" / "mnist", version)
            loads.append((time.perf_counter() - t) * 1e3)
        results["model_load_ms"][version] = float(np.median(loads))
        results["forward_ms"][version] = {n: forward_ms(model, n, 500 if n == 1 else 100) for n in (1, 32, 64)}
        f = results["forward_ms"][version]
        print(f"{version:<10}{f[1]:>10.3f}{f[32]:>10.3f}{f[64]:>10.3f}{results['model_load_ms'][version]:>10.0f}")
    print("(load: read, validate and self-check the version, with its probe batch)")
    results["metrics_us_per_request"], results["metrics_scrape_us"] = metrics_cost_us()
    print(f"metric updates per /predict (multiprocess mmap): {results['metrics_us_per_request']:.1f} us; "
          f"rendering a scrape: {results['metrics_scrape_us'] / 1e3:.2f} ms")
    print(f"\nwhere a request's CPU time goes (ms, median, in-process, version {versions[-1]}):")
    print(f"{'payload':<20}{'parse':>9}{'decode':>9}{'preproc':>9}{'forward':>9}{'json':>9}")
    results["stages_ms"] = {}
    for name, (body, headers, n) in payloads().items():
        s = stage_times(model, body, headers, n, repeat=200 if n == 1 else 30)
        results["stages_ms"][name] = s
        print(f"{name:<20}" + "".join(f"{s[k]:>9.3f}" for k in STAGES))


if __name__ == "__main__":
    main()
