"""The compatibility matrix in shards on this machine: plan, run the shards as concurrent processes, merge.

    python scenarios/matrix_sharded.py --versions 0.4.24,1.0.21,1.5.9 [--paths all] [--upgrades-only]
        [--seed 0] [--examples N] [--max-shrinks N] [--profile P] --shards N [--jobs J]
        [--workdir DIR] [--markdown F] [--json F] [--failures-dir D] [--timings-from MATRIX_JSON]

Exactly what a CI job matrix does (`chroma-compat matrix --plan`, one `--plan-file --shard K` per
runner, `--merge`), with the runners replaced by ``--jobs`` concurrent processes here; the nox
``matrix`` session publishes docs/matrix.* this way. Each shard's output goes to
``WORKDIR/logs/shard-K.log``; an interrupted run started again with the same --workdir resumes
every shard where it stopped. Prints the wall seconds (also returned by :func:`run`, for a
benchmark comparing shards against one process on the same plan). Exit: the merge's code
(0, or 2 when a shard or pair is missing) or the first failing step's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_chroma_compat.roundtrip import timings  # noqa: E402  (stdlib and filelock only)

CLI = [sys.executable, "-m", "pytest_chroma_compat"]
PLANNED = ("versions", "paths", "seed", "examples", "max_shrinks", "profile")


def _plan_args(args: argparse.Namespace) -> list[str]:
    out = []
    for name in PLANNED:
        value = getattr(args, name)
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    return out + (["--upgrades-only"] if args.upgrades_only else [])


def _shard(plan: Path, number: int, workdir: Path, failures_dir: str | None) -> int:
    log = workdir / "logs" / f"shard-{number}.log"
    command = CLI + [
        "matrix",
        "--plan-file",
        str(plan),
        "--shard",
        str(number),
        "--json",
        str(workdir / "results" / f"shard-{number}.json"),
    ]
    if failures_dir:
        command += ["--failures-dir", failures_dir]
    with open(log, "a", encoding="utf-8") as out:
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode


def _same_plan(one: Path, other: Path) -> bool:
    try:
        a, b = json.loads(one.read_text()), json.loads(other.read_text())
    except (OSError, ValueError):
        return False
    return (a.get("plan_id"), a.get("tool_version"), a.get("shards")) == (
        b.get("plan_id"),
        b.get("tool_version"),
        b.get("shards"),
    )


def run(args: argparse.Namespace) -> dict:
    """Plan, shards, merge; the timings of each step and the exit codes."""
    workdir = Path(args.workdir)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / "results").mkdir(parents=True, exist_ok=True)
    if args.timings_from:  # a cache that never measured these pairs plans by the published page's seconds
        seeded = timings.record(
            timings.from_matrix_json(json.loads(Path(args.timings_from).read_text())), only_missing=True
        )
        print(f"timings: {seeded} pair-path(s) taken from {args.timings_from}", flush=True)
    started = time.monotonic()
    plan, fresh = workdir / "plan.json", workdir / "plan.new.json"
    step = subprocess.run(
        CLI + ["matrix", *_plan_args(args), "--plan", "--shards", str(args.shards), "--json", str(fresh)]
    )
    if step.returncode:
        return {"exit": step.returncode, "wall_s": round(time.monotonic() - started, 1)}
    # a rerun in the same workdir resumes: the first plan stays (the timings its shards recorded since
    # would lay the pairs out otherwise, and a shard refuses results of another layout)
    if plan.exists() and _same_plan(plan, fresh):
        fresh.unlink()
        print(f"resuming the plan in {plan}", flush=True)
    else:
        fresh.replace(plan)
    shards_started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        codes = list(pool.map(lambda k: _shard(plan, k, workdir, args.failures_dir), range(1, args.shards + 1)))
    shards_s = time.monotonic() - shards_started
    for number, code in enumerate(codes, start=1):
        if code:
            print(f"shard {number} exited {code}: see {workdir / 'logs' / f'shard-{number}.log'}", flush=True)
    outputs = []
    for flag in ("markdown", "json", "failures_dir"):
        if getattr(args, flag):
            outputs += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    results = sorted(str(p) for p in (workdir / "results").glob("shard-*.json"))
    merge = subprocess.run(CLI + ["matrix", "--merge", *results, *outputs]) if results else None
    wall = time.monotonic() - started
    outcome = {
        "exit": merge.returncode if merge else 2,
        "wall_s": round(wall, 1),
        "shards_s": round(shards_s, 1),
        "shard_exits": codes,
        "plan": str(plan),
    }
    print(
        f"wall seconds: {wall:.1f} (shards {shards_s:.1f}; {args.shards} shard(s), {args.jobs} at a time)", flush=True
    )
    return outcome


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--versions", required=True, help="as `chroma-compat matrix --versions` takes them")
    p.add_argument("--paths")
    p.add_argument("--upgrades-only", action="store_true")
    p.add_argument("--seed", type=int)
    p.add_argument("--examples", type=int)
    p.add_argument("--max-shrinks", type=int)
    p.add_argument("--profile")
    p.add_argument("--shards", type=int, default=3)
    p.add_argument("--jobs", type=int, help="shard processes at a time (default: --shards)")
    p.add_argument("--workdir", help="plan, results and logs (default: a temporary directory, removed after)")
    p.add_argument("--markdown")
    p.add_argument("--json")
    p.add_argument("--failures-dir")
    p.add_argument(
        "--timings-from",
        metavar="MATRIX_JSON",
        help="seed the timings cache from a published matrix JSON, for pair-paths it lacks",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.jobs = args.jobs or args.shards
    if args.workdir:
        return run(args)["exit"]
    with tempfile.TemporaryDirectory(prefix="matrix-sharded-") as tmp:
        args.workdir = tmp
        outcome = run(args)
        if outcome["exit"]:
            for log in sorted(Path(tmp, "logs").glob("*.log")):  # the logs go with the directory: show them
                sys.stdout.write(f"--- {log.name}\n{log.read_text()[-4000:]}")
        return outcome["exit"]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
