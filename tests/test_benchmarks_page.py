"""docs/performance.md is rendered from a real run's JSON: a quick real run of the cheapest comparison
(worker overhead on 200 records of 1.5.9, one run per side) through benchmarks/run.py, then the page.
Not marked slow: 10-12 s measured (a worker and the release's own interpreter, once each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import performance_page  # noqa: E402


@pytest.fixture(scope="module")
def worker_run(tmp_path_factory) -> tuple[dict, str]:
    tmp = tmp_path_factory.mktemp("bench")
    out, page = tmp / "performance.json", tmp / "performance.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--only",
            "worker",
            "--worker-records",
            "200",
            "--repeats",
            "1",
            "--noisy-cores",
            "99",
            "--json",
            str(out),
            "--markdown",
            str(page),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), page.read_text()


def test_the_page_shows_both_sides_and_their_ratio_from_the_run(worker_run):
    data, page = worker_run
    sec = data["sections"]["worker"]
    result = sec["result"]
    assert sec["error"] is None and result["release"] == "1.5.9" and result["records"] == 200
    for row in result["rows"]:
        assert row["worker_records_per_s"] > 0 and row["in_process_records_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["worker_records_per_s"] / row["in_process_records_per_s"], rel=0.01)
        line = next(ln for ln in page.splitlines() if ln.startswith(f"| {row['phase']} |"))
        assert f"{row['worker_records_per_s']:,}" in line and f"{row['in_process_records_per_s']:,}" in line
        assert f"{row['ratio']:.2f}x" in line
    assert "Rerun: `nox -s benchmarks -- --only worker`" in page
    assert f"| cores | {data['machine']['cores']} |" in page
    assert "load average (1/5/15 min)" in page
    # the sections this run did not measure say how to measure them; nothing is made up for them
    assert page.count("Not measured yet") == len(performance_page.SECTIONS) - 1


def test_a_section_from_an_earlier_run_keeps_its_date_and_says_so(worker_run):
    data, _ = worker_run
    later = {**data, "generated": "2099-01-01 00:00:00 UTC"}
    page = performance_page.render(later)
    assert f"*from an earlier run, {data['sections']['worker']['date']}*" in page
    assert "measured " + data["sections"]["worker"]["date"] not in page


# -- the cost breakdown and the pair time (issue 27) ---------------------------------------------------


def _run(tmp: Path, *args: str) -> tuple[dict, str]:
    out, page = tmp / "performance.json", tmp / "performance.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), *args, "--noisy-cores", "99"]
        + ["--json", str(out), "--markdown", str(page)],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), page.read_text()


def _cells(page: str, first: str, after: str = "") -> list[str]:
    """The cells of the table row that starts with ``first`` (the first after the line ``after``)."""
    lines = page.splitlines()
    start = lines.index(after) if after else 0
    line = next(ln for ln in lines[start:] if ln.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.fixture(scope="module")
def steady_run(tmp_path_factory) -> tuple[dict, str]:
    """A real breakdown of steady in-place examples (0.4.24 -> 1.5.9, 2 examples after 2): about 10 s."""
    return _run(
        tmp_path_factory.mktemp("breakdown"),
        "--only",
        "breakdown",
        "--breakdown-parts",
        "steady",
        "--steady-examples",
        "2",
    )


def test_the_breakdown_page_shows_each_phase_of_the_run(steady_run):
    data, page = steady_run
    sec = data["sections"]["breakdown"]
    assert sec["error"] is None
    m = sec["result"]["steady"]
    assert m["examples"] == 2 and m["not_measured"] == [], m["not_measured"]
    # the instrumentation saw the real work: each example wrote a store, and each evaluation of what the
    # new release read ran every invariant once (an example whose data the old release refused reads nothing)
    phases = {p["phase"]: p for p in m["phases"]}
    assert phases["store writes (old release)"]["count"] == 2
    evaluated = phases["invariants (evaluate)"]["count"]
    assert evaluated == phases["reads (observe)"]["count"] <= 2
    for name in ("collections", "count", "ids", "documents", "metadata", "embeddings", "filters", "query"):
        assert phases[f"invariant: {name}"]["count"] == evaluated
    assert sum(e["examples"] for e in m["per_example"]) == 2
    # own seconds never add up to more than the whole (store opens are worker calls, counted in those)
    assert sum(p["exclusive"] or 0 for p in m["phases"] if not p["phase"].startswith("store opens")) <= (
        m["total_seconds"] + 0.01
    )
    after = "### A steady in-place example"
    assert f"**{m['seconds_per_example']:.3f} s per example** over 2 examples" in page
    for p in m["phases"]:
        if not (p["count"] or p.get("background_count")):
            continue
        cells = _cells(page, p["phase"], after)
        assert cells[1] == f"{p['seconds'] / 2:.4f}" and cells[2] == f"{p['seconds']:.2f}"
        assert cells[3] == f"{100 * p['share']:.1f}%" and cells[5] == str(p["count"])
    for e in m["per_example"]:
        cells = _cells(page, e["path"], after)
        assert cells[2:5] == [str(e["examples"]), f"{e['mean_seconds']:.3f}", f"{e['mean_worker_calls']:.1f}"]
    assert "Rerun: `nox -s benchmarks -- --only breakdown`" in page


def test_a_phase_whose_function_is_gone_is_named_never_a_crash(steady_run):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _phases

    from pytest_chroma_compat.roundtrip import invariants, pair

    before = (pair.PairRunner.run_case, pair.observe, dict(invariants.CHECKS))
    rec = _phases.Recorder().install(
        _phases.PAIR
        + [
            _phases.Target("a renamed phase", "roundtrip.pair:PairRunner.no_such_method"),
            _phases.Target("a moved module", "roundtrip.no_such_module:probe"),
        ]
    )
    try:
        assert pair.observe is not before[1] and pair.observe is invariants.observe  # wrapped where imported
        gone = rec.summary()["not_measured"]
    finally:
        rec.uninstall()
    assert (pair.PairRunner.run_case, pair.observe, dict(invariants.CHECKS)) == before  # all put back
    assert [(g["phase"], g["why"]) for g in gone] == [
        ("a renamed phase", "not measured (name gone)"),
        ("a moved module", "not measured (name gone)"),
    ]
    data, _ = steady_run
    data = json.loads(json.dumps(data))
    data["sections"]["breakdown"]["result"]["steady"]["not_measured"] = gone
    page = performance_page.render(data)
    assert "**a renamed phase: not measured (name gone)** (`roundtrip.pair:PairRunner.no_such_method`" in page


def test_pair_time_takes_its_pairs_from_the_published_matrix():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import pair_time

    cells = pair_time.published(pair_time._pairs(pair_time.PAIRS))
    outcomes = {o for c in cells.values() for o in c["verdicts"].values()}
    assert {"safe", "unsafe"} <= outcomes  # safe and unsafe cells
    with pytest.raises(SystemExit, match="not a pair of the published matrix"):
        pair_time.published([("1.5.9", "0.4.24")])
    assert pair_time.differences({"verdicts": {"in-place": "safe"}}, {"verdicts": {"in-place": "unsafe"}}) == [
        "in-place: baseline safe, current unsafe"
    ]


@pytest.mark.slow
def test_the_pair_time_page_shows_both_sides_of_the_run(tmp_path):
    """A real run: the baseline commit in a git worktree made and removed by the script, one pair, 1 example."""
    data, page = _run(
        tmp_path, "--only", "pair-time", "--pairs", "1.3.7->1.5.9", "--pair-examples", "1", "--pair-repeats", "1"
    )
    sec = data["sections"]["pair-time"]
    assert sec["error"] is None
    r = sec["result"]
    [row] = r["rows"]
    assert "/baseline/" in r["imported_from"]["baseline"] and r["imported_from"]["current"].startswith(str(ROOT))
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True).stdout
    assert r["imported_from"]["baseline"].split("/pytest_chroma_compat")[0] not in worktrees  # removed after
    assert row["same_verdicts"] and row["baseline"]["verdicts"] == row["current"]["verdicts"]
    assert row["ratio"] == pytest.approx(row["current"]["seconds"] / row["baseline"]["seconds"], abs=0.001)
    cells = _cells(page, row["pair"])
    assert cells[1:4] == [
        f"{row['baseline']['seconds']:.1f} s",
        f"{row['current']['seconds']:.1f} s",
        f"{row['ratio']:.2f}x",
    ]
    assert _cells(page, "median")[3].startswith(f"**{r['median_ratio']:.3f}x**")
    row["current"]["verdicts"]["in-place"] = "unsafe"  # a difference is printed as such
    row["differences"], row["same_verdicts"], r["all_same_verdicts"] = (
        ["in-place: baseline safe, current unsafe"],
        False,
        False,
    )
    changed = performance_page.render(data)
    assert "**differ**: in-place: baseline safe, current unsafe" in changed
    assert "The verdicts differ between the two sides" in changed


def test_the_published_page_is_the_rendering_of_the_published_json():
    """docs/performance.md says only what docs/performance.json holds: rendered from it, byte for byte
    (after a change to the renderer: `python benchmarks/performance_page.py docs/performance.json
    docs/performance.md`)."""
    data = json.loads((ROOT / "docs" / "performance.json").read_text())
    assert performance_page.render(data) == (ROOT / "docs" / "performance.md").read_text()
