"""The round trip's reason to exist: one worker per release kept alive across examples, against a
process per example.

The same generated cases are checked by the harness (one old and one new
worker alive across examples) and by a process-per-example baseline (a fresh
worker per side per example: spawn, import chromadb, write; spawn, import,
read), back to back in one run. Target: >= 20x the baseline's examples/min. The harness's time
includes the rollback reopen that check_pair runs once at the end of the pair.

    python benchmarks/round_trip.py [--old 0.4.24] [--new 1.5.9] [--examples 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_RATIO = 20


def _cases(runner, n: int):
    from hypothesis.errors import NonInteractiveExampleWarning

    from pytest_chroma_compat.roundtrip.pair import Case

    cases = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        while len(cases) < n:
            program = runner.program_strategy("in-place").example()
            probes = runner.probe_strategy(program.model).example()
            cases.append(Case(runner.old.version, runner.new.version, "in-place", program, probes))
    return cases


def measure(old: str = "0.4.24", new: str = "1.5.9", examples: int = 20) -> dict:
    from pytest_chroma_compat.roundtrip.pair import PairRunner

    with PairRunner(old, new) as runner:
        cases = _cases(runner, examples)
        runner.old.info(), runner.new.info()  # workers up, as they are during a check
        started = time.perf_counter()
        verdicts = [runner.run_case(case) for case in cases]
        # the rollback reopen of the first example's store runs once at the end of the pair (moved there
        # from right after the first example): counted here, as check_pair pays it
        runner.settle_rollbacks()
        harness = time.perf_counter() - started
        failed = [r.first_failure() for r in verdicts if not r.ok]
        baseline_n = max(2, examples // 5)
        started = time.perf_counter()
        for case in cases[:baseline_n]:
            runner.old.close()  # a fresh process per side per example
            runner.new.close()
            runner.run_case(case)  # throughput, whatever the verdict
        baseline = time.perf_counter() - started
    h_rate, b_rate = examples / harness * 60, baseline_n / baseline * 60
    return {
        "pair": f"{old}->{new}",
        "examples": examples,
        "baseline_examples": baseline_n,
        "harness_examples_per_min": round(h_rate, 1),
        "baseline_examples_per_min": round(b_rate, 1),
        "baseline_seconds_per_example": round(baseline / baseline_n, 2),
        "ratio": round(h_rate / b_rate, 1),
        "target_ratio": TARGET_RATIO,
        "failing_examples": failed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default="0.4.24")
    parser.add_argument("--new", default="1.5.9")
    parser.add_argument("--examples", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(measure(args.old, args.new, args.examples), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
