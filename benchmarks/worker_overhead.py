"""What the worker's pipe costs: the same calls through ``Release(...).ephemeral()`` and in-process.

Both sides run ``_overhead_calls.run_calls`` on the same seeded records with
the same release: once from this process through a fresh worker (every batch
packed, sent, unpacked and answered across the pipe), once inside a script run
by the release environment's own python (chromadb called directly, under the
same hermetic environment a worker gets). Each side is timed from an open
client to the last call, so neither interpreter's start nor chromadb's import
counts. Sides alternate, ``repeats`` times each; the medians are reported as
records/s per phase and the worker's share of the in-process rate.

    python benchmarks/worker_overhead.py [--release 1.5.9] [--records 5000] [--dim 384] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PHASES = ("add", "get", "query")


def _through_worker(version: str, args: dict) -> dict:
    sys.path.insert(0, str(HERE))
    from _overhead_calls import run_calls

    from pytest_chroma_compat.engine.client import Release

    with Release(version) as rel:
        client = rel.ephemeral()
        client.heartbeat()
        phases = run_calls(client, **args)
        client.close()
    return phases


def _in_process(version: str, args: dict) -> dict:
    from pytest_chroma_compat.engine import cache_dirs, envs

    env = envs.ensure(version)
    with tempfile.TemporaryDirectory(prefix="bench-inprocess-", dir=cache_dirs.scratch_dir()) as scratch:
        proc = subprocess.run(
            [str(env.interpreter), str(HERE / "_overhead_calls.py"), json.dumps(args)],
            cwd=scratch,
            env=envs.hermetic_environ(Path(scratch)),
            capture_output=True,
            text=True,
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the in-process script failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    out = json.loads(lines[-1])
    if out["chromadb"] != version:
        raise RuntimeError(f"the in-process script ran chromadb {out['chromadb']}, expected {version}")
    return out["phases"]


def measure(
    version: str = "1.5.9",
    records: int = 5000,
    dim: int = 384,
    repeats: int = 3,
    batch: int = 500,
    queries: int = 1000,
    query_batch: int = 100,
    seed: int = 0,
) -> dict:
    """Both sides ``repeats`` times, alternating; medians per phase."""
    from pytest_chroma_compat.engine import releases

    version = releases.resolve(version)
    args = {
        "n": records,
        "dim": dim,
        "seed": seed,
        "batch": batch,
        "queries": min(queries, records),
        "query_batch": query_batch,
    }
    runs: dict[str, list[dict]] = {"worker": [], "in_process": []}
    for _ in range(repeats):
        runs["worker"].append(_through_worker(version, args))
        runs["in_process"].append(_in_process(version, args))
    rows = []
    for phase in PHASES:
        rate = {
            side: statistics.median(r[phase]["records"] / r[phase]["seconds"] for r in got)
            for side, got in runs.items()
        }
        rows.append(
            {
                "phase": phase,
                "records": runs["worker"][0][phase]["records"],
                "worker_records_per_s": round(rate["worker"]),
                "in_process_records_per_s": round(rate["in_process"]),
                "ratio": round(rate["worker"] / rate["in_process"], 3),
            }
        )
    total = {side: statistics.median(sum(r[p]["seconds"] for p in PHASES) for r in got) for side, got in runs.items()}
    return {
        "release": version,
        "records": records,
        "dim": dim,
        "batch": batch,
        "queries": args["queries"],
        "query_batch": query_batch,
        "repeats": repeats,
        "rows": rows,
        "worker_seconds": round(total["worker"], 3),
        "in_process_seconds": round(total["in_process"], 3),
        "ratio": round(total["in_process"] / total["worker"], 3),
        "runs": {side: [{p: round(r[p]["seconds"], 4) for p in PHASES} for r in got] for side, got in runs.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", default="1.5.9")
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.release, args.records, args.dim, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
