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
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--only", "worker",
                           "--worker-records", "200", "--repeats", "1", "--noisy-cores", "99",
                           "--json", str(out), "--markdown", str(page)],
                          capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp)})
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
