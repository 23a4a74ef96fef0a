"""`nox -s benchmarks`: every side-by-side comparison in one run, written to docs/performance.json and .md.

Sections (each comparison measures both of its sides in this run and reports a ratio; the breakdown
measures where one side's time goes):

- provisioning: `env ensure` against venv + pip, cold and warm (provisioning.py)
- worker: calls through the worker against the same calls in-process (worker_overhead.py)
- round-trip: one worker per release across examples against a process per example (round_trip.py)
- validate: validate against a plain get loop at 10k and 100k; 1M with --full (validate_section.py)
- matrix: a sharded matrix plan against one process (sharding.py)
- breakdown: where the time of a checked pair, a steady in-place example and validate of a small store
  goes, phase by phase (breakdown.py, instrumented at run time by _phases.py)
- pair-time: seconds per checked pair, this tree against a baseline commit, same run (pair_time.py)

The load is recorded before and after each section, with the CPU other
processes used meanwhile; a section disturbed by other work (more than
NOISY_CORES of it) is measured once more and the quieter attempt kept, unless
it took longer than RERUN_UNDER_SECONDS: then the page marks it as disturbed.
``--only a,b`` measures those sections and keeps the others from the previous
JSON, each with its own date.

    python benchmarks/run.py [--only provisioning,worker,...] [--full] [--json docs/performance.json]
        [--markdown docs/performance.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import machine  # noqa: E402
import performance_page  # noqa: E402

NOISY_CORES = 0.5  # other processes' average use during a section, of this machine's cores, before a rerun
RERUN_UNDER_SECONDS = 300  # a longer section is not measured twice (the page marks it if disturbed)


def _provisioning(args: argparse.Namespace) -> dict:
    import provisioning

    return provisioning.measure(args.provisioning_release, args.repeats)


def _worker(args: argparse.Namespace) -> dict:
    import worker_overhead

    return worker_overhead.measure(args.worker_release, args.worker_records, repeats=args.repeats)


def _round_trip(args: argparse.Namespace) -> dict:
    import round_trip

    return round_trip.measure(args.old, args.new, args.examples)


def _validate(args: argparse.Namespace) -> dict:
    import validate_section

    return validate_section.measure(full=args.full)


def _matrix(args: argparse.Namespace) -> dict:
    import sharding

    return sharding.measure()


def _breakdown(args: argparse.Namespace) -> dict:
    import breakdown

    return breakdown.measure(
        pair_releases=args.breakdown_pair,
        examples=args.breakdown_examples,
        steady_releases=(args.old, args.new),
        steady_examples=args.steady_examples,
        validate_releases=args.breakdown_validate,
        records=args.validate_records,
        only=tuple(p.strip() for p in args.breakdown_parts.split(",") if p.strip()),
    )


def _pair_time(args: argparse.Namespace) -> dict:
    import pair_time

    return pair_time.measure(
        args.baseline or pair_time.BASELINE, args.pairs or pair_time.PAIRS, args.pair_examples, args.pair_repeats
    )


#: name -> (how to measure it, the script that measures it alone)
SECTIONS: dict[str, tuple[Callable[[argparse.Namespace], dict], str]] = {
    "provisioning": (_provisioning, "python benchmarks/provisioning.py"),
    "worker": (_worker, "python benchmarks/worker_overhead.py"),
    "round-trip": (_round_trip, "python benchmarks/round_trip.py"),
    "validate": (_validate, "python benchmarks/validate_scale.py --sizes 10000,100000"),
    "matrix": (_matrix, "python benchmarks/sharding.py"),
    "breakdown": (_breakdown, "python benchmarks/breakdown.py"),
    "pair-time": (_pair_time, "python benchmarks/pair_time.py"),
}


def _two(text: str) -> tuple[str, str]:
    old, _, new = text.replace("->", ",").partition(",")
    return old.strip(), new.strip()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _noisy(watch: dict, limit: float = NOISY_CORES) -> bool:
    return (watch.get("other_processes_cores") or 0) > limit


def run_section(name: str, args: argparse.Namespace) -> dict:
    """One section, measured again once if other work disturbed it; the quieter attempt is kept."""
    measure, direct = SECTIONS[name]
    command = performance_page.RERUN.format(name=name) + (" --full" if name == "validate" and args.full else "")
    attempts = []
    while True:
        _log(f"== {name} (load {machine.loadavg()}) ...")
        watch = machine.Watch()
        try:
            result, error = measure(args), None
        except Exception as exc:  # one broken section must not lose the others' results
            traceback.print_exc()
            result, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        w = watch.result()
        attempts.append({"date": machine.now(), "watch": w, "result": result, "error": error})
        _log(f"== {name}: {w}")
        if error or not _noisy(w, args.noisy_cores) or len(attempts) > 1 or w["seconds"] > RERUN_UNDER_SECONDS:
            break
        _log(f"== {name}: other processes used {w['other_processes_cores']} cores meanwhile: measuring again")
    ok = [a for a in attempts if not a["error"]] or attempts
    kept = min(ok, key=lambda a: a["watch"].get("other_processes_cores") or 0)
    return {
        "date": kept["date"],
        "machine": machine.describe(),
        "command": command,
        "direct": direct,
        "watch": kept["watch"],
        "result": kept["result"],
        "error": kept["error"],
        "noisy": _noisy(kept["watch"], args.noisy_cores),
        "discarded": [a["watch"] for a in attempts if a is not kept],
    }


def _previous(path: Path) -> dict:
    try:
        return json.loads(path.read_text())["sections"]
    except (OSError, ValueError, KeyError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", help=f"comma-separated sections ({', '.join(SECTIONS)}); others keep their previous results"
    )
    parser.add_argument("--full", action="store_true", help="validate at 1M records too (most of an hour)")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "performance.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument(
        "--noisy-cores",
        type=float,
        default=NOISY_CORES,
        help="measure a section again when other processes used more cores than this meanwhile",
    )
    parser.add_argument("--repeats", type=int, default=3, help="warm provisioning runs and worker runs per side")
    parser.add_argument("--provisioning-release", default="1.0.21")
    parser.add_argument("--worker-release", default="1.5.9")
    parser.add_argument("--worker-records", type=int, default=5000)
    parser.add_argument("--old", default="0.4.24", help="round trip: the older release")
    parser.add_argument("--new", default="1.5.9", help="round trip: the newer release")
    parser.add_argument("--examples", type=int, default=20, help="round trip: examples the harness checks")
    parser.add_argument(
        "--breakdown-pair", type=_two, default=("1.0.21", "1.5.9"), help="breakdown: the pair checked whole"
    )
    parser.add_argument(
        "--breakdown-examples", type=int, help="breakdown: examples per path (default: the published matrix's)"
    )
    parser.add_argument(
        "--steady-examples", type=int, default=12, help="breakdown: steady in-place examples (--old -> --new)"
    )
    parser.add_argument(
        "--breakdown-validate", type=_two, default=("0.4.24", "1.5.9"), help="breakdown: the store's writer, target"
    )
    parser.add_argument("--validate-records", type=int, default=200, help="breakdown: records of the validated store")
    parser.add_argument("--breakdown-parts", default="pair,steady,validate", help="breakdown: which measurements")
    parser.add_argument(
        "--baseline", help="pair-time: the commit this tree is measured against (default: pair_time.BASELINE)"
    )
    parser.add_argument(
        "--pairs", help="pair-time: OLD->NEW,... pairs of the published matrix (default: pair_time.PAIRS)"
    )
    parser.add_argument(
        "--pair-examples", type=int, help="pair-time: examples per path (default: the published matrix's)"
    )
    parser.add_argument(
        "--pair-repeats", type=int, default=3, help="pair-time: checks per side per pair (the median counts)"
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; one of {', '.join(SECTIONS)}")
    sections = _previous(args.json) if args.only else {}
    started = machine.now()
    for name in names:
        sections[name] = run_section(name, args)
    argv_shown = " ".join(argv if argv is not None else sys.argv[1:])
    data = {
        "generated": started,
        "command": f"python benchmarks/run.py {argv_shown}".strip(),
        "machine": machine.describe(),
        "sections": sections,
    }
    for name in names:
        sections[name]["run"] = started  # which run measured it: sections carried over keep their own
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1) + "\n")
    args.markdown.write_text(performance_page.render(data))
    _log(f"wrote {args.json} and {args.markdown}")
    return 1 if any(sections[n]["error"] for n in names) else 0


if __name__ == "__main__":
    sys.exit(main())
