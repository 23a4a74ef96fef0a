"""Seconds per checked pair: this tree against a baseline commit, measured in the same run (issue 27, item 3).

A fixed subset of the published matrix's pairs (docs/matrix.json), safe and
unsafe cells, each checked as a user checks it, in the matrix's configuration:

    python -m pytest_chroma_compat check --from A --to B --examples 8 --seed 0 --profile ci
        --max-shrinks 25 --failures-dir <tmp> --json

in a fresh process with PYTHONPATH at the tree and its cwd in a temporary
directory, by the baseline (a detached ``git worktree`` of ``--baseline``, made
here and removed afterwards) and by this tree, ``--repeats`` times each per pair
(a side's median counts), the side that goes first alternating from run to run.
Both use the same cached release environments. Reported per pair: the seconds of each side, each path's
verdict on each side (they must be equal; a difference is printed as such),
and the median of the per-pair ratios (current / baseline; the target is 0.5).

    python benchmarks/pair_time.py [--baseline 3da0fc3] [--pairs 0.4.24->1.0.0,1.0.21->1.5.9,...]
        [--examples 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

BASELINE = "3da0fc3"  # the commit before issue 27's work
#: safe and unsafe cells of the published matrix (one that shrank, one a known shape fails, safe ones)
PAIRS = ("0.4.24->1.0.0", "1.0.21->1.5.9", "0.5.23->0.6.3", "0.6.3->1.4.1", "1.3.7->1.5.9")
TARGET_RATIO = 0.5
TIMEOUT = 3600  # one check (a shrinking unsafe pair took 600 s in the published matrix)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def matrix_inputs() -> dict:
    return json.loads((ROOT / "docs" / "matrix.json").read_text())["inputs"]


def published(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The published cells of these pairs: path -> outcome, and the seconds they took then."""
    cells = {(c["old"], c["new"]): c for c in json.loads((ROOT / "docs" / "matrix.json").read_text())["cells"]}
    out = {}
    for pair in pairs:
        cell = cells.get(pair)
        if cell is None:
            raise SystemExit(f"{pair[0]}->{pair[1]} is not a pair of the published matrix (docs/matrix.json)")
        out[pair] = {
            "verdicts": {p["path"]: p["outcome"] for p in cell["paths"]},
            "seconds": round(sum(p["seconds"] for p in cell["paths"]), 1),
        }
    return out


def _commit(tree: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _changed(tree: Path) -> int:
    """Files the tree changes against its HEAD (the current side is HEAD plus these)."""
    out = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                         capture_output=True, text=True).stdout  # fmt: skip
    return len(out.splitlines())


def _imports_from(tree: Path, cwd: Path) -> str:
    """Where ``import pytest_chroma_compat`` resolves with PYTHONPATH at ``tree`` (checked, never assumed)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    out = subprocess.run(
        [sys.executable, "-c", "import pytest_chroma_compat as p; print(p.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"with PYTHONPATH={tree}, pytest_chroma_compat is imported from {out}, not the tree")
    return out


def check_once(tree: Path, old: str, new: str, inputs: dict, examples: int, work: Path) -> dict:
    """One ``chroma-compat check`` of ``old -> new`` by the package in ``tree``: seconds, exit code, verdicts."""
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    argv = ["check", "--from", old, "--to", new, "--examples", str(examples), "--seed", str(inputs["seed"])]
    argv += ["--profile", inputs["profile"], "--max-shrinks", str(inputs["max_shrinks"])]
    argv += ["--failures-dir", str(run_dir / "failures"), "--json"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *argv],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    seconds = time.perf_counter() - t0
    out = {"seconds": round(seconds, 2), "exit": proc.returncode, "verdicts": None, "error": None}
    try:
        body = json.loads(proc.stdout)
        out["verdicts"] = {p["path"]: p["outcome"] for p in body["paths"]}
        out["safe"] = body.get("safe")
        out["path_seconds"] = {p["path"]: p["seconds"] for p in body["paths"]}
        out["rollbacks"] = {p["path"]: p.get("rollback") for p in body["paths"]}
    except (ValueError, KeyError, TypeError):
        out["error"] = f"exit {proc.returncode}: " + (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
    if proc.returncode not in (0, 1) and out["error"] is None:
        out["error"] = f"exit {proc.returncode}: " + (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
    shutil.rmtree(run_dir, ignore_errors=True)
    return out


def runs_of(row: dict) -> list[tuple[str, dict]]:
    return [(side, row[side]) for side in ("baseline", "current")]


def differences(base: dict, cur: dict) -> list[str]:
    """Each path whose verdict differs between the two sides (a side that gave none differs too)."""
    b, c = base.get("verdicts"), cur.get("verdicts")
    if b is None or c is None:
        return [f"baseline: {base.get('error') or 'no verdicts'}; current: {cur.get('error') or 'no verdicts'}"]
    return [
        f"{p}: baseline {b.get(p, 'not run')}, current {c.get(p, 'not run')}"
        for p in sorted(set(b) | set(c))
        if b.get(p) != c.get(p)
    ]


def _one_side(runs: list[dict]) -> dict:
    """A side's runs of one pair: the median seconds, and the first run's verdicts (or the first that differs)."""
    out = dict(runs[0])
    out["runs"] = [r["seconds"] for r in runs]
    out["seconds"] = round(statistics.median(out["runs"]), 2)
    for r in runs[1:]:
        if r.get("verdicts") != runs[0].get("verdicts") or r.get("error"):
            out["unsteady"] = f"its runs differ: {runs[0].get('verdicts')} then {r.get('verdicts') or r.get('error')}"
            out["error"] = out["error"] or r.get("error")
    return out


def _worktree(ref: str, where: Path) -> Path:
    tree = where / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
        capture_output=True,
        text=True,
        check=True,
    )
    return tree


def _remove_worktree(tree: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True, text=True)
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True, text=True)


def _pairs(text: str | list | tuple) -> list[tuple[str, str]]:
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        old, _, new = item.strip().partition("->")
        if not old or not new:
            raise SystemExit(f"a pair is OLD->NEW, not {item!r}")
        out.append((old.strip(), new.strip()))
    return out


def measure(
    baseline: str = BASELINE, pairs: str | list | tuple = PAIRS, examples: int | None = None, repeats: int = 1
) -> dict:
    """Each pair ``repeats`` times per side (the side that goes first alternating); a side's median counts."""
    inputs = matrix_inputs()
    examples = examples or inputs["examples"]
    chosen = _pairs(pairs)
    cells = published(chosen)
    work = Path(tempfile.mkdtemp(prefix="pair-time-"))
    rows = []
    try:
        base_tree = _worktree(baseline, work)
        trees = {"baseline": base_tree, "current": ROOT}
        imported = {side: _imports_from(tree, work) for side, tree in trees.items()}
        commits = {"baseline": _commit(base_tree), "current": _commit(ROOT), "current_changed_files": _changed(ROOT)}
        for i, (old, new) in enumerate(chosen):
            row: dict = {"pair": f"{old}->{new}", "order": [], "load_before": _load()}
            runs: dict[str, list[dict]] = {"baseline": [], "current": []}
            for rep in range(repeats):
                order = ("baseline", "current") if (i + rep) % 2 == 0 else ("current", "baseline")
                row["order"].append(list(order))
                for side in order:
                    _log(f"== pair-time: {old} -> {new}, {side} (load {_load()}) ...")
                    runs[side].append(check_once(trees[side], old, new, inputs, examples, work))
                    _log(f"   {runs[side][-1]['seconds']} s, {runs[side][-1]['verdicts'] or runs[side][-1]['error']}")
            for side, done in runs.items():
                row[side] = _one_side(done)
            row["load_after"] = _load()
            b, c = row["baseline"], row["current"]
            row["ratio"] = round(c["seconds"] / b["seconds"], 3) if b["seconds"] else None
            row["differences"] = differences(b, c) + [
                f"{k}: {v['unsteady']}" for k, v in runs_of(row) if "unsteady" in v
            ]
            row["same_verdicts"] = not row["differences"]
            row["published"] = cells[(old, new)]
            rows.append(row)
    finally:
        if (work / "baseline").exists():
            _remove_worktree(work / "baseline")
        shutil.rmtree(work, ignore_errors=True)
    ok = [r for r in rows if r["ratio"] is not None and not r["baseline"]["error"] and not r["current"]["error"]]
    return {
        "baseline_ref": baseline,
        "commits": commits,
        "imported_from": imported,
        "config": {k: inputs[k] for k in ("seed", "profile", "max_shrinks")} | {"examples": examples},
        "matrix_examples": inputs["examples"],
        "matrix_generated": json.loads((ROOT / "docs" / "matrix.json").read_text()).get("generated"),
        "command": "python -m pytest_chroma_compat check --from A --to B --examples {examples} --seed {seed} "
        "--profile {profile} --max-shrinks {max_shrinks} --failures-dir <tmp> --json".format(
            **{**inputs, "examples": examples}
        ),
        "repeats": repeats,
        "rows": rows,
        "median_baseline_seconds": round(statistics.median(r["baseline"]["seconds"] for r in ok), 2) if ok else None,
        "median_current_seconds": round(statistics.median(r["current"]["seconds"] for r in ok), 2) if ok else None,
        "median_ratio": round(statistics.median(r["ratio"] for r in ok), 3) if ok else None,
        "target_ratio": TARGET_RATIO,
        "all_same_verdicts": all(r["same_verdicts"] for r in rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="the commit measured against (default: %(default)s)")
    parser.add_argument("--pairs", default=",".join(PAIRS), help="OLD->NEW,... pairs of the published matrix")
    parser.add_argument("--examples", type=int, help="examples per path (default: the published matrix's)")
    parser.add_argument("--repeats", type=int, default=3, help="checks per side per pair (the median counts)")
    args = parser.parse_args()
    print(json.dumps(measure(args.baseline, args.pairs, args.examples, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
