"""Where a verdict's time goes: per-phase seconds, share and counts of one whole checked pair, of a steady
in-place example and of validate on a small store (issue 27, item 1).

Three measurements, each instrumented at run time by benchmarks/_phases.py
(the package's functions wrapped and put back; nothing in it edited):

- pair: one whole pair (default 1.0.21 -> 1.5.9) as ``chroma-compat check --from A --to B --examples 8
  --seed 0 --profile ci --max-shrinks 25`` runs it (the published matrix's configuration), in this
  process, through the check command's own options and the pair runner (all paths);
- steady: the round-trip benchmark's generated in-place cases (0.4.24 -> 1.5.9) through one pair
  runner, the first ``--steady-skip`` examples not counted (they carry the pair's one-off costs), the
  rest per example;
- validate: a store of 200 records written by a release (benchmarks/validate_scale.py's seeded store,
  384-d, a document and metadata per record), validated toward the newer release with the writer
  auto-detected, warm: one run first (environments built, contract answers cached), then the
  measured run.

    python benchmarks/breakdown.py [--pair 1.0.21,1.5.9] [--examples 8] [--steady 0.4.24,1.5.9]
        [--steady-examples 12] [--validate 0.4.24,1.5.9] [--records 200] [--only pair,steady,validate]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _phases  # noqa: E402

MAX_SHRINKS = 25  # the published matrix's (docs/matrix.json "inputs"); read from it when it is there
PARTS = ("pair", "steady", "validate")


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def matrix_inputs() -> dict:
    """The published matrix's configuration (seed, examples, profile, max_shrinks), from docs/matrix.json."""
    try:
        return json.loads((HERE.parent / "docs" / "matrix.json").read_text())["inputs"]
    except (OSError, ValueError, KeyError):
        return {"seed": 0, "examples": 8, "profile": "ci", "max_shrinks": MAX_SHRINKS}


def _check_args(old: str, new: str, examples: int, seed: int, profile: str, max_shrinks: int, failures: Path):
    """The check command's own options, parsed by its own parser (its defaults, as a user gets them)."""
    from pytest_chroma_compat.roundtrip import cli

    parser = argparse.ArgumentParser(prog="chroma-compat")
    cli.register(parser.add_subparsers())
    argv = ["check", "--from", old, "--to", new, "--examples", str(examples), "--seed", str(seed)]
    argv += ["--profile", profile, "--max-shrinks", str(max_shrinks), "--failures-dir", str(failures), "--json"]
    return parser.parse_args(argv), "chroma-compat " + " ".join(argv[:-3] + ["--json"])


def pair(old: str, new: str, examples: int, seed: int, profile: str, max_shrinks: int) -> dict:
    """One whole pair, in process, as ``chroma-compat check`` runs it."""
    with tempfile.TemporaryDirectory(prefix="breakdown-pair-") as tmp:
        args, command = _check_args(old, new, examples, seed, profile, max_shrinks, Path(tmp))

        def run(rec: _phases.Recorder) -> list:
            try:
                from pytest_chroma_compat.cli.verb_args import round_trip
            except ImportError:  # the door moved: the pair runner's entry point, with the same options
                from pytest_chroma_compat.roundtrip.pair import check_pair

                def round_trip(a, old, new, progress):
                    kw = {"examples": a.examples, "seed": a.seed, "profile": a.profile}
                    kw |= {"failures_dir": a.failures_dir, "max_shrinks": a.max_shrinks}
                    return check_pair(old, new, None, progress=progress, **kw)

            return round_trip(args, args.old, args.new, rec.progress)

        load0, t0 = _load(), time.perf_counter()
        reports, rec = _phases.measure(_phases.PAIR, run)
        total = time.perf_counter() - t0
    out = rec.summary(total)
    out.update(
        {
            "what": f"{old} -> {new}, all paths",
            "command": command,
            "load_before": load0,
            "load_after": _load(),
            "verdicts": [
                {
                    "path": r.path,
                    "outcome": r.outcome,
                    "examples": r.examples,
                    "shrinks": r.shrink_steps,
                    "seconds": round(r.seconds, 2),
                    "rollback": r.rollback,
                }
                for r in reports
            ],
        }
    )
    return out


def steady(old: str, new: str, examples: int, skip: int) -> dict:
    """Generated in-place examples through one pair runner; the first ``skip`` not counted."""
    import round_trip

    from pytest_chroma_compat.roundtrip.pair import PairRunner

    with PairRunner(old, new) as runner:
        cases = round_trip._cases(runner, examples + skip)
        runner.old.info(), runner.new.info()  # workers up, as during a check
        for case in cases[:skip]:
            runner.run_case(case)
        load0, t0 = _load(), time.perf_counter()
        verdicts, rec = _phases.measure(_phases.PAIR, lambda rec: [runner.run_case(c) for c in cases[skip:]])
        total = time.perf_counter() - t0
    out = rec.summary(total)
    out.update(
        {
            "what": f"{old} -> {new}, in-place, examples {skip + 1}-{skip + examples} of one pair runner",
            "examples": examples,
            "skipped": skip,
            "seconds_per_example": round(total / examples, 4),
            "failing_examples": sum(not v.ok for v in verdicts),
            "load_before": load0,
            "load_after": _load(),
        }
    )
    return out


def validate(writer: str, target: str, records: int, dim: int = 384) -> dict:
    """validate of a ``records``-record store written by ``writer``, toward ``target``, warm."""
    import validate_scale

    from pytest_chroma_compat.snapshot.validate import validate as run_validate

    store, build = validate_scale.ensure_store(writer, records, dim)
    t0 = time.perf_counter()
    first = run_validate(str(store), target)  # environments built, contract answers cached: warm from here
    first_seconds = time.perf_counter() - t0
    load0, t0 = _load(), time.perf_counter()
    result, rec = _phases.measure(_phases.VALIDATE, lambda rec: run_validate(str(store), target))
    total = time.perf_counter() - t0
    out = rec.summary(total)
    out.update(
        {
            "what": f"{records} records x {dim}-d written by {writer}, validated toward {target} "
            "(--from auto-detected), warm",
            "store": {"writer": writer, "records": records, "dim": dim, "cached": build.get("cached")},
            "first_run_seconds": round(first_seconds, 2),
            "verdict": _verdict(result),
            "first_verdict": _verdict(first),
            "validate_timings": {k: round(v, 3) for k, v in (result.timings or {}).items()},
            "load_before": load0,
            "load_after": _load(),
        }
    )
    return out


def _verdict(result) -> str:
    if result.error:
        return f"could not validate: {result.error}"
    failed = [c.name for c in result.checks if c.status in ("fail", "error")]
    return "failed: " + ", ".join(failed) if failed else "passed"


def measure(
    pair_releases: tuple[str, str] = ("1.0.21", "1.5.9"),
    examples: int | None = None,
    steady_releases: tuple[str, str] = ("0.4.24", "1.5.9"),
    steady_examples: int = 12,
    steady_skip: int = 2,
    validate_releases: tuple[str, str] = ("0.4.24", "1.5.9"),
    records: int = 200,
    only: tuple[str, ...] = PARTS,
) -> dict:
    inputs = matrix_inputs()
    out: dict = {"matrix_inputs": inputs}
    if "pair" in only:
        out["pair"] = pair(
            *pair_releases,
            examples=examples or inputs.get("examples", 8),
            seed=inputs.get("seed", 0),
            profile=inputs.get("profile", "ci"),
            max_shrinks=inputs.get("max_shrinks", MAX_SHRINKS),
        )
    if "steady" in only:
        out["steady"] = steady(*steady_releases, steady_examples, steady_skip)
    if "validate" in only:
        out["validate"] = validate(*validate_releases, records)
    return out


def check_names() -> int:
    """Each phase's function, found or gone (exit 1 when one is gone): nothing is run."""
    gone = 0
    for kind, targets in (("pair", _phases.PAIR), ("validate", _phases.VALIDATE)):
        rec = _phases.Recorder().install(targets)
        rec.uninstall()
        missing = {m["name"] for m in rec.missing}
        gone += len(missing)
        for t in targets:
            print(f"{kind:8s} {'GONE ' if t.name in missing else 'found'} {t.name:60s} {t.label}")
        for m in rec.missing:
            if m["name"] not in {t.name for t in targets}:
                print(f"{kind:8s} GONE  {m['name']:60s} {m['phase']}")
    return 1 if gone else 0


def _two(text: str) -> tuple[str, str]:
    old, new = (v.strip() for v in text.replace("->", ",").split(","))
    return old, new


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", type=_two, default=("1.0.21", "1.5.9"))
    parser.add_argument("--examples", type=int, help="examples per path (default: the published matrix's)")
    parser.add_argument("--steady", type=_two, default=("0.4.24", "1.5.9"))
    parser.add_argument("--steady-examples", type=int, default=12)
    parser.add_argument("--validate", type=_two, default=("0.4.24", "1.5.9"))
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--only", default=",".join(PARTS))
    parser.add_argument(
        "--check-names", action="store_true", help="only say which phases' functions exist (nothing is run)"
    )
    args = parser.parse_args()
    if args.check_names:
        return check_names()
    result = measure(
        args.pair,
        args.examples,
        args.steady,
        args.steady_examples,
        validate_releases=args.validate,
        records=args.records,
        only=tuple(p.strip() for p in args.only.split(",")),
    )
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
