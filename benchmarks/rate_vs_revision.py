"""Single-image /predict rate of this checkout against an earlier revision, same host, same run.

    python benchmarks/rate_vs_revision.py --base da2ae92            # ~4 minutes
    python benchmarks/rate_vs_revision.py --base da2ae92 --rounds 5 --concurrency 1 8 32

Checks the earlier revision out into a temporary git worktree and runs
``benchmarks/serve_bench.py --only "28x28 PNG"`` from each tree in turn,
``--rounds`` times, alternating, so that both see the same machine: each
serves its own committed default model (the newest version in its
``models/``), as it would ship. Prints the median requests/s per concurrency
for each, and the ratio.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = "28x28 png"  # serve_bench.py's name for a single 28x28 PNG as the raw body


def rates(tree, args, out):
    """``{concurrency: req/s}`` of one serve_bench run from ``tree``."""
    subprocess.run([sys.executable, "benchmarks/serve_bench.py", "--only", PAYLOAD, "--duration", str(args.duration),
                    "--concurrency", *map(str, args.concurrency), "--json", str(out)],
                   cwd=tree, check=True, stdout=subprocess.DEVNULL)
    runs = json.loads(out.read_text())["runs"]
    return {r["concurrency"]: r["rps"] for r in runs if r["payload"].startswith(PAYLOAD)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the earlier revision (a commit, tag or branch)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = p.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    seen = {"base": [], "head": []}
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=REPO, check=True,
                       capture_output=True)
        try:
            for i in range(args.rounds):
                for name, tree in (("base", base_tree), ("head", REPO)):
                    seen[name].append(rates(tree, args, Path(tmp) / f"{name}-{i}.json"))
                    print(f"round {i + 1} {name}: " + ", ".join(f"c={c} {r:,.0f} req/s"
                                                               for c, r in seen[name][-1].items()), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, capture_output=True)
    print(f"\n| connections | {args.base} req/s | {head} req/s | ratio |\n| --: | --: | --: | --: |")
    for c in args.concurrency:
        base = statistics.median(r[c] for r in seen["base"])
        new = statistics.median(r[c] for r in seen["head"])
        print(f"| {c} | {base:,.0f} | {new:,.0f} | {new / base:.2f} |")


if __name__ == "__main__":
    main()
