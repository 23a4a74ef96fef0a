"""Issue 23, parts 3, 4 and 8 (round trip): paths mean what they say, pre-existing is a property of a
release, every finding the README lists has a known shape, and the verdict line names the failing check
and its first evidence.

Real releases: 0.3.29 (a 0.3 store opened in place by 0.4.24 shows nothing), 0.5.23 -> 1.0.21 (the float
filter finding), 1.5.9 -> 1.5.9 (chroma #7594's list-metadata leak, a defect of 1.5.9 itself).
"""

import json
import re
from pathlib import Path

import pytest

from pytest_chroma_compat.roundtrip import known_shapes, pair
from pytest_chroma_compat.roundtrip.invariants import Outcome
from pytest_chroma_compat.roundtrip.matrix import report, upgrade_paths

from .conftest import NEW, OLD, run_cli

pytest_plugins = ["pytester"]

LEGACY, MID5, V1 = "0.3.29", "0.5.23", "1.0.21"
ROOT = Path(__file__).resolve().parents[1]


def _last(proc) -> str:
    return proc.stderr.strip().splitlines()[-1]


def _check(tmp_path, *args):
    return run_cli("check", *args, "--failures-dir", str(tmp_path))


# -- part 3: in place means in place ------------------------------------------------------------------------


def test_a_0_3_store_in_place_is_not_safe_and_export_import_is(tmp_path):
    """0.4.24 opens a 0.3 store without an error and sees none of its collections: in place is NOT SAFE
    (exit 1) with the advice, never silently carried through export/import; export-import holds (exit 0)."""
    bad = _check(tmp_path, "--from", LEGACY, "--to", OLD, "--path", "in-place", "--examples", "2", "--seed", "0")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    line = _last(bad)
    assert line.startswith(f"chroma-compat: chromadb {LEGACY} -> {OLD}: NOT SAFE (in-place"), line
    assert "collections: " in line and "sees none of its" in line and "--path export-import" in line, line
    assert "routed" not in bad.stdout + bad.stderr
    good = _check(tmp_path, "--from", LEGACY, "--to", OLD, "--path", "export-import", "--examples", "2", "--seed", "0")
    assert good.returncode == 0, good.stdout + good.stderr
    assert ": SAFE (" in _last(good)


def _cell(old, new, path, *, ok=True, notes=(), pre=(), allow=False):
    invariants = [{"name": "all", "status": "pass", "detail": "", "evidence": {}}]
    return {
        "old": old,
        "new": new,
        "allow_pre_existing": allow,
        "paths": [{"path": path, "ok": ok, "notes": list(notes), "pre_existing": list(pre), "invariants": invariants}],
    }


def test_safe_upgrade_paths_take_only_hops_that_held_as_asked():
    versions = ["0.3.29", "0.4.24", "0.5.23"]
    cells = [
        _cell(
            "0.3.29",
            "0.5.23",
            "in-place",
            notes=["legacy store: ...; routed through export/import as chroma-migrate does"],
        ),
        _cell("0.3.29", "0.4.24", "in-place", pre=["writable"]),
        _cell("0.4.24", "0.5.23", "in-place", pre=["writable"], allow=True),
    ]
    rows = {r["from"]: r["routes"] for r in upgrade_paths.summary(versions, cells, ["in-place"])}
    assert rows["0.3.29"]["in-place"] is None  # rerouted, and a pre-existing defect not allowed: no safe hop
    assert rows["0.4.24"]["in-place"]["to"] == "0.5.23"  # allowed by the run that made the cell


def test_the_published_matrix_recommends_only_cells_that_are_safe_as_asked():
    """docs/matrix.json after the 0.3.29 in-place cells were re-run: no chain uses a hop whose path did not
    hold as asked, and no 0.3 store is sent anywhere in place."""
    doc = json.loads((ROOT / "docs" / "matrix.json").read_text())
    cells = {(c["old"], c["new"]): c for c in doc["cells"]}
    for row in doc["upgrade_paths"]:
        for found in row["routes"].values():
            for hop in (found or {}).get("hops", []):
                cell = cells[(hop["old"], hop["new"])]
                path = next(p for p in cell["paths"] if p["path"] == hop["path"])
                assert upgrade_paths.safe_as_asked(path, cell), hop
    legacy = next(r for r in doc["upgrade_paths"] if r["from"] == LEGACY)
    assert legacy["routes"]["in-place"] is None
    page = (ROOT / "docs" / "matrix.md").read_text()
    assert not re.search(rf"\| \*\*{re.escape(LEGACY)}\*\* \| \*\*[\d.]+\*\*", page), "0.3.29 in place recommended"


# -- part 4: known shapes for every README finding; pre-existing in a release -----------------------------------


def test_every_finding_has_a_shape_and_the_leak_shape_needs_list_metadata():
    names = {s.name for s in known_shapes.SHAPES}
    assert {"deleted-document", "float-filters", "list-metadata-leak"} <= names
    scalar = frozenset({"str", "int", "float"})
    assert "list-metadata-leak" not in {s.name for s in known_shapes.applicable(scalar)}
    assert "list-metadata-leak" in {s.name for s in known_shapes.applicable(scalar | {"list_str"})}
    (floats,) = [c for c in known_shapes.cases({}, True) if c[0].name == "float-filters"]
    ops = {op[1] for f in floats[2].filters for op in [next(iter(f["where"]["total"].items()))]}
    assert ops >= set(known_shapes.MISS_EQ_GTE + known_shapes.MISS_EQ_LTE)


def test_one_example_finds_the_float_filter_whatever_the_seed(tmp_path):
    """The known shape runs before Hypothesis draws anything, so the seed cannot matter (measured with seeds
    0, 7, 12345 and none); one unusual seed here."""
    proc = _check(tmp_path, "--from", MID5, "--to", V1, "--path", "in-place", "--examples", "1", "--seed", "12345")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = _last(proc)
    assert "NOT SAFE (in-place [known shape 'float-filters']: filters: " in line, line
    assert "'$eq': 0.9560197081789759" in line and "got []" in line, line


@pytest.fixture(scope="module")
def leak_runs(tmp_path_factory):
    """1.5.9 -> 1.5.9 in place, seed 1 (the draw that used to say SAFE) and seed 2 with the policy flag."""
    where = tmp_path_factory.mktemp("leak")
    base = ["--from", NEW, "--to", NEW, "--path", "in-place", "--examples", "10", "--json"]
    strict = _check(where, *base, "--seed", "1")
    allowed = _check(where, *base, "--seed", "2", "--allow-pre-existing")
    return strict, allowed


def test_the_1_5_9_leak_is_pre_existing_in_1_5_9_and_fails_by_validates_policy(leak_runs):
    strict, _ = leak_runs
    assert strict.returncode == 1, strict.stdout[-2000:] + strict.stderr
    line = _last(strict)
    assert (
        f"NOT SAFE (pre-existing in {NEW}, not caused by the upgrade (in-place: writable: known shape "
        f"'list-metadata-leak'" in line
    ), line
    assert "unexpected key 'tags'" in line and "--allow-pre-existing" in line, line
    doc = json.loads(strict.stdout)
    (path,) = doc["paths"]
    assert path["ok"] and path["outcome"] == "pre-existing" and path["pre_existing"] == ["writable"]
    assert not doc["safe"] and doc["allow_pre_existing"] is False
    writable = next(i for i in path["invariants"] if i["name"] == "writable")
    assert writable["status"] == "pre-existing" and f"pre-existing in {NEW}: " in writable["detail"]
    assert "before the upgrade" in writable["evidence"]  # the old release's own write check, same data


def test_allowed_pre_existing_is_shown_and_safe(leak_runs):
    _, allowed = leak_runs
    assert allowed.returncode == 0, allowed.stdout[-2000:] + allowed.stderr
    line = _last(allowed)
    assert ": SAFE (" in line and f"pre-existing in {NEW}" in line and "allowed (--allow-pre-existing)" in line
    doc = json.loads(allowed.stdout)
    assert doc["safe"] and doc["allow_pre_existing"] and doc["paths"][0]["pre_existing"] == ["writable"]


# -- part 8: the verdict line names the failing check and its first evidence --------------------------------------


def _report(outcomes, path="in-place"):
    rep = pair.PathReport("0.4.24", "1.0.21", path, outcomes=outcomes, examples=1)
    rep.rollback = "not possible: KeyError: '_type'"
    return rep


def test_the_verdict_line_carries_the_evidence_when_the_detail_does_not():
    counted = _report([Outcome("count", "fail", "", {"docs": {"expected": 3, "count()": 2, "records read": 2}})])
    line = report.verdict_line("0.4.24", "1.0.21", [counted])
    assert "NOT SAFE (in-place: count (evidence: " in line and '"expected": 3' in line, line
    other = _report(
        [Outcome("writable", "error", "'docs': add with a document failed: InternalError")], "unflushed-wal"
    )
    both = report.verdict_line("0.4.24", "1.0.21", [counted, other])
    assert "unflushed-wal: writable: 'docs': add with a document failed" in both, both


def test_pre_existing_alone_follows_the_policy_and_names_the_release():
    rep = _report([Outcome("filters", "pre-existing", "pre-existing in 0.4.24: 1 of 2 filter(s) answer differently")])
    assert rep.ok and rep.blocked() and not rep.blocked(True) and rep.outcome == "pre-existing"
    strict = report.verdict_line("0.4.24", "1.0.21", [rep])
    assert "NOT SAFE (pre-existing in 0.4.24, not caused by the upgrade (in-place: filters: 1 of 2" in strict
    assert report.unsafe([rep]) and not report.unsafe([rep], allow_pre_existing=True)
    assert "SAFE (1 path(s)" in report.verdict_line("0.4.24", "1.0.21", [rep], allow_pre_existing=True)
    assert "PRE-EXISTING" in report.path_text(rep)


@pytest.mark.slow
def test_the_plugin_follows_the_same_policy_and_names_the_reason(pytester):
    """pytest --chroma-from 1.5.9 --chroma-to 1.5.9: the in-place check fails as pre-existing in 1.5.9 (the reason
    on the verdict line and at once); with --chroma-allow-pre-existing it is an xfail and the verdict is SAFE."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        "from pytest_chroma_compat.plugin.pair_checks import test_chroma_round_trip_in_place  # noqa: F401\n"
    )
    base = [
        "-p",
        "no:cacheprovider",
        f"--chroma-from={NEW}",
        f"--chroma-to={NEW}",
        "--chroma-seed=0",
        "--chroma-examples=1",
        "--chroma-progress=off",
        "-rx",
    ]
    strict = pytester.runpytest_subprocess(*base)
    out = strict.stdout.str()
    assert strict.ret == 1, out[-3000:]
    (line,) = re.findall(r"^chroma-compat verdict: (.*)$", out, re.M)
    assert line.startswith(
        f"chromadb {NEW} -> {NEW}: NOT SAFE (in-place failed [pre-existing in {NEW} (not caused "
        f"by the upgrade): writable: known shape 'list-metadata-leak'"
    ), line
    assert out.index("chroma-compat round trip [in-place] NOT SAFE: pre-existing in") < out.index("= FAILURES =")
    allowed = pytester.runpytest_subprocess(*base, "--chroma-allow-pre-existing")
    out = allowed.stdout.str()
    assert allowed.ret == 0, out[-3000:]
    allowed.assert_outcomes(xfailed=1)
    (line,) = re.findall(r"^chroma-compat verdict: (.*)$", out, re.M)
    assert line.startswith(f"chromadb {NEW} -> {NEW}: SAFE (in-place allowed [pre-existing in {NEW}"), line
