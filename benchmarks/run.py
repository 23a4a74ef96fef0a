"""Ratio benchmarks, each side by side in one run (`nox -s benchmarks`).

1. round trip: the same generated cases, checked by the harness (one old and
   one new worker alive across examples) and by a process-per-example
   baseline (a fresh worker per side per example: spawn, import chromadb,
   write; spawn, import, read). Target: >= 20x the baseline's examples/min.
2. environment reuse: `chroma-compat env ensure` on a built env, from the
   command line, against a bare `python -c pass`. Target: under 0.5 s.

    python benchmarks/run.py [--old 0.4.24] [--new 1.5.9] [--examples 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings


def _cases(runner, n: int):
    from hypothesis.errors import NonInteractiveExampleWarning

    from pytest_chroma_compat.roundtrip import Case

    cases = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        while len(cases) < n:
            program = runner.program_strategy("in-place").example()
            probes = runner.probe_strategy(program.model).example()
            cases.append(Case(runner.old.version, runner.new.version, "in-place", program, probes))
    return cases


def round_trip(old: str, new: str, examples: int) -> dict:
    from pytest_chroma_compat.roundtrip import PairRunner

    with PairRunner(old, new) as runner:
        cases = _cases(runner, examples)
        runner.old.info(), runner.new.info()  # workers up, as they are during a check
        started = time.perf_counter()
        verdicts = [runner.run_case(case) for case in cases]
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
    return {"pair": f"{old}->{new}", "harness_examples_per_min": round(h_rate, 1),
            "baseline_examples_per_min": round(b_rate, 1), "baseline_seconds_per_example": round(baseline / baseline_n, 2),
            "ratio": round(h_rate / b_rate, 1), "target_ratio": 20,
            "failing_examples": failed}


def env_reuse(version: str, repeats: int = 7) -> dict:
    subprocess.run([sys.executable, "-m", "pytest_chroma_compat", "env", "ensure", version], check=True,
                   capture_output=True)

    def timed(cmd: list[str]) -> float:
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            runs.append(time.perf_counter() - t)
        return statistics.median(runs)

    ensure = timed([sys.executable, "-m", "pytest_chroma_compat", "env", "ensure", version])
    bare = timed([sys.executable, "-c", "pass"])
    return {"version": version, "ensure_seconds": round(ensure, 3), "python_startup_seconds": round(bare, 3),
            "ratio_to_python_startup": round(ensure / bare, 1), "target_seconds": 0.5}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default="0.4.24")
    parser.add_argument("--new", default="1.5.9")
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = {"env_reuse": env_reuse(args.new), "round_trip": round_trip(args.old, args.new, args.examples)}
    rt, er = results["round_trip"], results["env_reuse"]
    print(f"round trip {rt['pair']}: harness {rt['harness_examples_per_min']}/min, process-per-example "
          f"{rt['baseline_examples_per_min']}/min ({rt['baseline_seconds_per_example']} s each): "
          f"{rt['ratio']}x (target {rt['target_ratio']}x)")
    print(f"env reuse {er['version']}: `chroma-compat env ensure` {er['ensure_seconds']} s "
          f"(python startup {er['python_startup_seconds']} s; target {er['target_seconds']} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
