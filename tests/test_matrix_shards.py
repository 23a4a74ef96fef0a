"""The sharded matrix on real releases: a plan, its shards as separate `chroma-compat` processes, their
merge, compared with one `chroma-compat matrix` process of the same inputs.

0.4.24 -> 1.0.21 and -> 1.5.9 fail in place on a known shape (a case file the merge must carry over
from the shards); 1.0.21 -> 1.5.9 is safe but one-way. Nothing about the outcome is assumed: the
merged page must equal the single process's, whatever the releases did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_chroma_compat.roundtrip import timings
from pytest_chroma_compat.roundtrip.matrix import plan as matrix_plan

RELEASES = "0.4.24,1.0.21,1.5.9"
INPUTS = [
    "--versions",
    RELEASES,
    "--upgrades-only",
    "--paths",
    "in-place,export-import",
    "--examples",
    "2",
    "--seed",
    "0",
]
# a second, smaller plan: another seed and other paths, so another plan id
OTHER = ["--versions", "1.0.21,1.5.9", "--paths", "export-import", "--examples", "1", "--seed", "1"]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_chroma_compat", *args]


def cli(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


def start(*args: str, cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=900)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def without(value, keys=("generated", "seconds")):
    """The document minus what legitimately differs between two runs of one plan."""
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def page(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if not ln.startswith("Generated ")]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Plan 3 shards; run them and the single-process matrix at once (separate processes); merge."""
    base = tmp_path_factory.mktemp("matrix-shards")
    env = {**os.environ, "CHROMA_COMPAT_TIMINGS": str(base / "timings.json")}
    sharded, single = base / "sharded", base / "single"
    (sharded / "results").mkdir(parents=True)
    single.mkdir()
    plan = cli("matrix", *INPUTS, "--plan", "--shards", "3", "--json", "plan.json", cwd=sharded, env=env)
    assert plan.returncode == 0, plan.stderr
    procs = [
        start(
            "matrix",
            "--plan-file",
            "plan.json",
            "--shard",
            str(k),
            "--json",
            f"results/shard-{k}.json",
            cwd=sharded,
            env=env,
        )
        for k in (1, 2, 3)
    ]
    whole = start("matrix", *INPUTS, "--markdown", "matrix.md", "--json", "matrix.json", cwd=single, env=env)
    shards = [finish(p) for p in procs]
    whole_done = finish(whole)
    for proc in shards + [whole_done]:
        assert proc.returncode == 0, proc.stderr
    results = [f"results/shard-{k}.json" for k in (1, 2, 3)]
    merged = cli(
        "matrix", "--merge", *results, "--markdown", "matrix.md", "--json", "matrix.json", cwd=sharded, env=env
    )
    return SimpleNamespace(
        base=base,
        env=env,
        sharded=sharded,
        single=single,
        shards=shards,
        whole=whole_done,
        merged=merged,
        results=results,
        plan=json.loads((sharded / "plan.json").read_text()),
    )


def test_merged_shards_publish_what_one_process_publishes(run):
    assert run.merged.returncode == 0, run.merged.stderr
    assert page(run.sharded / "matrix.md") == page(run.single / "matrix.md")
    merged = json.loads((run.sharded / "matrix.json").read_text())
    single = json.loads((run.single / "matrix.json").read_text())
    assert without(merged) == without(single)
    assert merged["plan_id"] == run.plan["plan_id"] and merged["inputs"]["seed"] == 0
    # the case files came through the result files, byte for byte, and the page links to them
    cases = sorted(p.name for p in (run.sharded / "matrix-cases").iterdir())
    assert cases == sorted(p.name for p in (run.single / "matrix-cases").iterdir())
    for name in cases:
        assert (run.sharded / "matrix-cases" / name).read_bytes() == (run.single / "matrix-cases" / name).read_bytes()
    linked = [p["case_file"] for c in merged["cells"] for p in c["paths"] if p["case_file"]]
    for case in linked:
        assert (run.sharded / case).is_file() and f"]({case})" in (run.sharded / "matrix.md").read_text()
    # the stderr verdicts agree too
    assert run.merged.stderr.strip().splitlines()[-1] == run.whole.stderr.strip().splitlines()[-1]
    assert "## Safe upgrade paths" in (run.sharded / "matrix.md").read_text()


def test_safe_upgrade_paths_follow_only_safe_upgrade_edges(run):
    doc = json.loads((run.sharded / "matrix.json").read_text())
    safe = {(c["old"], c["new"], p["path"]) for c in doc["cells"] for p in c["paths"] if p["ok"] and p["invariants"]}
    versions = doc["versions"]
    for row in doc["upgrade_paths"]:
        for route, found in row["routes"].items():
            if found is None:
                continue
            at = row["from"]
            for hop in found["hops"]:
                assert hop["old"] == at and versions.index(hop["new"]) > versions.index(at)
                assert (hop["old"], hop["new"], hop["path"]) in safe
                assert route == "any" or hop["path"] == route
                at = hop["new"]
            assert at == found["to"]


def test_shards_record_their_timings_and_the_next_plan_uses_them(run):
    known = timings.load(run.base / "timings.json")
    for old, new in matrix_plan.pairs(run.plan["inputs"]):
        for path in ("in-place", "export-import"):
            assert (old, new, path) in known
    again = cli("matrix", *INPUTS, "--plan", "--shards", "3", cwd=run.base, env=run.env)
    plan = json.loads(again.stdout)
    for shard in plan["by_shard"]:
        for pair in shard["pairs"]:
            measured = sum(known[(pair["old"], pair["new"], p)] for p in ("in-place", "export-import"))
            assert pair["estimate_s"] == pytest.approx(measured, abs=0.2)


def test_the_plan_is_deterministic_and_ready_for_a_ci_matrix(run, tmp_path):
    first = cli("matrix", *INPUTS[:-2], "--plan", "--shards", "2", "--json", "a.json", cwd=tmp_path, env=run.env)
    second = cli("matrix", *INPUTS[:-2], "--plan", "--shards", "2", "--json", "b.json", cwd=tmp_path, env=run.env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    plan = json.loads((tmp_path / "a.json").read_text())
    assert plan["inputs"]["seed"] == 0  # --plan without --seed fixes one: every shard draws the same
    assert plan["plan_id"] == run.plan["plan_id"]  # the shard count does not change results
    assert plan["shards"] == 2 and [e["shard"] for e in plan["matrix"]["include"]] == [1, 2]
    for entry, shard in zip(plan["matrix"]["include"], plan["by_shard"]):
        assert entry["releases"] == ",".join(shard["releases"]) == shard["releases_csv"]
        assert set(shard["releases"]) == {v for p in shard["pairs"] for v in (p["old"], p["new"])}
    env_ensure = cli("env", "ensure", plan["matrix"]["include"][0]["releases"], cwd=tmp_path, env=run.env)
    assert env_ensure.returncode == 0, env_ensure.stderr


def test_a_missing_shard_is_named_and_its_pairs_are_not_run(run, tmp_path):
    proc = cli(
        "matrix",
        "--merge",
        *[str(run.sharded / r) for r in run.results[:2]],
        "--markdown",
        "m.md",
        "--json",
        "m.json",
        cwd=tmp_path,
        env=run.env,
    )
    assert proc.returncode == 2, proc.stderr
    assert "chroma-compat: missing shard 3 of 3: no result file for it" in proc.stderr.splitlines()
    lost = run.plan["by_shard"][2]["pairs"]
    for pair in lost:
        assert f"chroma-compat: missing pair {pair['old']} -> {pair['new']}: not run" in proc.stderr.splitlines()
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["not_run"] == [{"old": p["old"], "new": p["new"]} for p in lost]
    assert "not run" in (tmp_path / "m.md").read_text()


@pytest.fixture(scope="module")
def interrupted(run):
    """A 2-pair shard of another plan, stopped (SIGTERM) once its first pair is written, then rerun."""
    work = run.base / "interrupted"
    work.mkdir()
    plan = cli("matrix", *OTHER, "--plan", "--shards", "1", "--json", "plan.json", cwd=work, env=run.env)
    assert plan.returncode == 0, plan.stderr
    args = ("matrix", "--plan-file", "plan.json", "--shard", "1", "--json", "shard-1.json")
    proc = start(*args, cwd=work, env=run.env)
    result = work / "shard-1.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        doc = json.loads(result.read_text()) if result.exists() else {"pairs": [], "started": []}
        if doc["pairs"] and len(doc["started"]) == 2:  # the first pair written, the second under way
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    stopped = finish(proc)
    after_stop = json.loads(result.read_text())
    resumed = cli(*args, cwd=work, env=run.env)
    return SimpleNamespace(
        work=work, stopped=stopped, after_stop=after_stop, resumed=resumed, final=json.loads(result.read_text())
    )


def test_an_interrupted_shard_resumes_without_rerunning_finished_pairs(interrupted):
    assert interrupted.stopped.returncode == 128 + signal.SIGTERM, interrupted.stopped.stderr
    assert len(interrupted.after_stop["pairs"]) == 1
    assert interrupted.resumed.returncode == 0, interrupted.resumed.stderr
    assert "(1 from an earlier run)" in interrupted.resumed.stderr.strip().splitlines()[-1]
    final = interrupted.final
    assert [(p["cell"]["old"], p["cell"]["new"]) for p in final["pairs"]] == [("1.0.21", "1.5.9"), ("1.5.9", "1.0.21")]
    starts = [(s["old"], s["new"]) for s in final["started"]]
    assert starts.count(("1.0.21", "1.5.9")) == 1  # finished before the signal: never started again
    assert starts.count(("1.5.9", "1.0.21")) == 2  # interrupted, then run again
    assert final["pairs"][0] == interrupted.after_stop["pairs"][0]


def test_results_of_another_plan_are_refused(run, interrupted):
    other = str(interrupted.work / "shard-1.json")
    shard = cli("matrix", "--plan-file", "plan.json", "--shard", "1", "--json", other, cwd=run.sharded, env=run.env)
    assert shard.returncode == 2 and len(shard.stderr.strip().splitlines()) == 1, shard.stderr
    assert "holds results of another plan or shard" in shard.stderr
    merge = cli(
        "matrix",
        "--merge",
        *run.results,
        other,
        "--json",
        str(interrupted.work / "m.json"),
        cwd=run.sharded,
        env=run.env,
    )
    assert merge.returncode == 2 and len(merge.stderr.strip().splitlines()) == 1, merge.stderr
    assert "come from different plans" in merge.stderr
    assert not (interrupted.work / "m.json").exists()
    options = cli(
        "matrix",
        "--plan-file",
        "plan.json",
        "--shard",
        "1",
        "--json",
        "x.json",
        "--examples",
        "3",
        cwd=run.sharded,
        env=run.env,
    )
    assert options.returncode == 2 and options.stderr.strip() == (
        "chroma-compat: error: --examples cannot be given with --plan-file: a shard runs with its plan's options"
    )


# -- the balancer and the estimates, on synthetic costs ---------------------------------------------------------


def test_longest_first_onto_the_least_loaded_shard():
    costs = [("a", 7), ("b", 5), ("c", 4), ("d", 3), ("e", 3), ("f", 2)]
    assert matrix_plan.balance(costs, 3) == [["a", "f"], ["b", "e"], ["c", "d"]]
    # ties: units in the order given, shards by number; empty shards stay empty
    assert matrix_plan.balance([("x", 1), ("y", 1), ("z", 1)], 4) == [["x"], ["y"], ["z"], []]


def test_the_balance_is_within_lpt_bound_of_the_optimum():
    import itertools
    import random

    rng = random.Random(0)
    for _ in range(200):
        costs = [(i, rng.choice([1, 2, 3, 5, 8, 13, 40, 228])) for i in range(rng.randint(1, 8))]
        shards = rng.randint(1, 4)
        got = max(sum(dict(costs)[u] for u in s) for s in matrix_plan.balance(costs, shards))
        best = min(
            max(sum(c for (_, c), s in zip(costs, assign) if s == k) for k in range(shards))
            for assign in itertools.product(range(shards), repeat=len(costs))
        )
        assert got <= best * (4 / 3 - 1 / (3 * shards)) + 1e-9
        assert matrix_plan.balance(costs, shards) == matrix_plan.balance(list(costs), shards)


def test_unknown_pair_paths_are_estimated_from_their_series_then_their_path():
    known = {
        ("0.5.20", "1.0.0", "unflushed-wal"): 200.0,
        ("0.5.23", "1.0.10", "unflushed-wal"): 220.0,
        ("1.4.1", "1.5.0", "unflushed-wal"): 3.0,
        ("1.0.0", "1.5.0", "in-place"): 4.0,
    }
    assert matrix_plan.estimate(known, "0.5.23", "1.0.21", "unflushed-wal") == 210.0  # same series pair
    assert matrix_plan.estimate(known, "0.6.3", "1.3.7", "unflushed-wal") == 200.0  # same path: the median
    assert (
        matrix_plan.estimate(known, "0.6.3", "1.3.7", "export-import") == matrix_plan.DEFAULT_SECONDS["export-import"]
    )
    assert matrix_plan.estimate(known, "1.0.0", "1.5.0", "in-place") == 4.0  # measured


def test_versions_take_pep440_ranges_over_the_non_yanked_catalogue():
    from pytest_chroma_compat.cli.main import _versions
    from pytest_chroma_compat.engine import releases

    assert _versions([">=1.5,<1.6"]) == releases.select(">=1.5,<1.6")
    assert _versions(["1.0", "latest,0.4.24"]) == [releases.resolve("1.0"), releases.versions()[-1], "0.4.24"]
    assert not any(releases.lookup(v).yanked for v in _versions([">=0.4.0"]))
