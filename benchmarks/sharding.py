"""A sharded matrix against one process, for the same plan on this machine.

Back to back in one run: `chroma-compat matrix` running the whole plan in one
process, then ``scenarios/matrix_sharded.py`` (plan, ``--shards`` shard
processes at once, merge: what a CI job matrix does, its runners replaced by
local processes). Both are timed from the outside, start to merged page, and
their results compared the way tests/test_matrix_shards.py compares them: the
JSON documents without what legitimately differs between two runs (when it was
generated, seconds), and the pages without their "Generated" line.
Each side has a private timings file, so the plan balances by the defaults
(matrix_plan.DEFAULT_SECONDS) as a first CI run would.

    python benchmarks/sharding.py [--versions 1.0.21,1.3.7,1.4.1,1.5.9] [--shards 2] [--examples 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARDED = ROOT / "scenarios" / "matrix_sharded.py"
VERSIONS = "1.0.21,1.3.7,1.4.1,1.5.9"  # 0.6.3 -> 1.x in place fails and shrinks: 300 s a pair here
PATHS = "in-place,export-import"
VOLATILE = ("generated", "seconds")


def _stable(value):
    """A matrix document minus what differs between two runs of one plan."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _page(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if not ln.startswith("Generated ")]


def _timed(cmd: list[str], cwd: Path, env: dict, what: str) -> float:
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:  # an unsafe upgrade is a result (exit 0); anything else is not
        raise RuntimeError(f"{what} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return seconds


def measure(versions: str = VERSIONS, shards: int = 2, examples: int = 2, seed: int = 0, paths: str = PATHS) -> dict:
    inputs = [
        "--versions",
        versions,
        "--upgrades-only",
        "--paths",
        paths,
        "--examples",
        str(examples),
        "--seed",
        str(seed),
    ]
    outputs = ["--json", "matrix.json", "--markdown", "matrix.md"]
    with tempfile.TemporaryDirectory(prefix="bench-sharding-") as tmp:
        base = Path(tmp)
        single, sharded = base / "single", base / "sharded"
        env = {**os.environ, "TMPDIR": tmp}
        single_s = _timed(
            [sys.executable, "-m", "pytest_chroma_compat", "matrix", *inputs, *outputs],
            single,
            {**env, "CHROMA_COMPAT_TIMINGS": str(base / "timings-single.json")},
            "the single matrix",
        )
        sharded_s = _timed(
            [
                sys.executable,
                str(SHARDED),
                *inputs,
                "--shards",
                str(shards),
                "--jobs",
                str(shards),
                "--workdir",
                str(base / "work"),
                *outputs,
            ],
            sharded,
            {**env, "CHROMA_COMPAT_TIMINGS": str(base / "timings-sharded.json")},
            "matrix_sharded.py",
        )
        one, merged = (json.loads((d / "matrix.json").read_text()) for d in (single, sharded))
        same_doc = _stable(one) == _stable(merged)
        same_page = _page(single / "matrix.md") == _page(sharded / "matrix.md")
        plan = json.loads((base / "work" / "plan.json").read_text())
    difference = (
        []
        if same_doc
        else [
            f"{c1.get('old')}->{c1.get('new')}"
            for c1, c2 in zip(one.get("cells", []), merged.get("cells", []))
            if _stable(c1) != _stable(c2)
        ]
    )
    return {
        "plan": f"{versions}, upgrades only, {paths}, --examples {examples}, --seed {seed}",
        "pairs": len(one.get("cells", [])),
        "shards": shards,
        "jobs": shards,
        "cores": os.cpu_count(),
        "plan_id": plan.get("plan_id"),
        "single_seconds": round(single_s, 1),
        "sharded_seconds": round(sharded_s, 1),
        "ratio": round(single_s / sharded_s, 2),
        "equal": same_doc and same_page,
        "equal_json": same_doc,
        "equal_page": same_page,
        **(
            {"difference": "cells differ: " + ", ".join(difference or ["(other fields)"])}
            if not same_doc
            else {"difference": "the pages differ"}
            if not same_page
            else {}
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", default=VERSIONS)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--examples", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(measure(args.versions, args.shards, args.examples, args.seed), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
