"""The validate reports, from hand-built results: no chromadb, no network.

Evidence carries the user's own strings, so the unsafe result is built to
break naive renderers: pipes and newlines (Markdown tables), ``<`` and ``&``
(XML, HTML), a NUL and an ESC (invalid XML, terminal escapes) and a NaN
(invalid strict JSON).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.snapshot import reports
from pytest_chroma_compat.snapshot.result import Check, CollectionSummary, Validation

INVENTORY = {
    "format": "sqlite",
    "bytes": 123456,
    "writer_range": {"first": "0.4.6", "last": "0.4.24", "evidence": "9 migrations applied"},
    "tenants": ["default_tenant"],
    "databases": [{"id": "d", "name": "default_database", "tenant": "default_tenant"}],
    "collections": [
        {"name": "notes", "count": 3, "dimension": 4, "space": "cosine"},
        {"name": "docs", "count": 2, "dimension": 4, "space": "l2"},
    ],
    "wal": {"rows": 5, "bytes": 2048, "sqlite_wal_bytes": 0},
    "automatically_purge": None,
    "orphaned_segment_dirs": [{"dir": "0000", "bytes": 4096}],
    "missing_segment_dirs": [],
    "problems": [],
}
SOURCE = {
    "location": "./chroma_data",
    "kind": "directory",
    "hash_before": "sha256:aa",
    "hash_after": "sha256:aa",
    "unchanged": True,
}


def _summaries() -> list[CollectionSummary]:
    return [
        CollectionSummary("notes", 3, 3, 3, 4, "cosine", "01", "01", 2, 0),
        CollectionSummary("docs", 2, 2, 2, 4, "l2", "02", "03", 0, 1),
    ]


def _result(checks: list[Check], **kw) -> Validation:
    base = dict(
        source=dict(SOURCE),
        source_release="0.4.24",
        source_release_evidence="9 migrations applied",
        target_release="1.5.9",
        direction="upgrade",
        inventory=INVENTORY,
        checks=checks,
        collections=_summaries(),
        timings={"copy": 0.2, "compare": 1.5, "total": 2.0},
        contracts_crossed=[
            {
                "id": "get-order",
                "title": "get() order",
                "changed_in": "0.5.9",
                "before": "sorted",
                "after": {"order": "insertion"},
            },
            {
                "id": "ne-nin",
                "title": "$ne | $nin",
                "documented": "0.5.0",
                "change": "$ne: [c] -> [b, c]",
                "consequence": "Check filters.",
            },
        ],
    )
    return Validation(**{**base, **kw})


@pytest.fixture
def safe() -> Validation:
    return _result(
        [
            Check("source-unchanged", "pass"),
            Check("open", "pass", seconds=0.5),
            Check("count", "pass", collection="notes"),
            Check("count", "pass", collection="docs"),
            Check("contracts", "info", "1 behaviour contract(s) change"),
        ]
    )


@pytest.fixture
def unsafe() -> Validation:
    hostile = {
        "id": "a|b\nc<d>&e\x00f\x1b[31m",
        "value": float("nan"),
        "inf": float("inf"),
        "nested": [{"x": float("-inf")}],
        "tuple_key": {(1, 2): "k"},
    }
    return _result(
        [
            Check("source-unchanged", "pass"),
            Check("open", "pass"),
            Check(
                "writable",
                "fail",
                "add failed: InternalError | compaction\nsecond line <x> & y",
                "notes",
                hostile,
                0.25,
            ),
            Check("filters", "pre-existing", "both releases miss 1 id", "docs", {"where": {"f": {"$eq": 1.5}}}),
            Check("query", "error", "release raised: KeyError('_type')", "docs", {"traceback": "```\nboom\n```"}),
            Check("embeddings", "skip", "no embeddings", "docs"),
            Check("contracts", "info", "1 contract(s)"),
        ]
    )


@pytest.fixture
def invalid() -> Validation:
    return Validation(
        source={"location": "s3://bucket/prefix/"},
        target_release="1.5.9",
        error="cannot reach s3://bucket/prefix/: NoSuchBucket",
    )


def _strict(text: str) -> dict:
    def reject(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


@pytest.mark.parametrize("name, verdict, code", [("safe", "safe", 0), ("unsafe", "unsafe", 1), ("invalid", "error", 2)])
def test_json_is_strict_and_carries_the_verdict(request, name, verdict, code):
    v = request.getfixturevalue(name)
    text = reports.to_json_text(v)
    doc = _strict(text)
    assert text.endswith("\n")
    assert doc["schema"] == "pytest-chroma-compat/validate-report" and doc["schema_version"] == 2
    assert (doc["verdict"], doc["exit_code"]) == (verdict, code)
    assert len(doc["checks"]) == len(v.checks)


def test_json_keeps_non_finite_floats_as_strings(unsafe):
    evidence = _strict(reports.to_json_text(unsafe))["checks"][2]["evidence"]
    assert (evidence["value"], evidence["inf"], evidence["nested"][0]["x"]) == ("NaN", "Infinity", "-Infinity")
    assert evidence["id"] == "a|b\nc<d>&e\x00f\x1b[31m"  # JSON escapes control characters itself: kept exact
    assert evidence["tuple_key"] == {"(1, 2)": "k"}


def _suite(v: Validation) -> tuple[ET.Element, ET.Element]:
    root = ET.fromstring(reports.junit_xml(v).encode())
    return root, root.find("testsuite")


def test_junit_one_testcase_per_check_with_counts(unsafe):
    root, suite = _suite(unsafe)
    cases = suite.findall("testcase")
    assert len(cases) == len(unsafe.checks) == int(suite.get("tests")) == int(root.get("tests"))
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("2", "1", "1")
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [
        ("chroma-compat.validate.notes", "writable"),
        ("chroma-compat.validate.docs", "filters"),
    ]
    failure = failed[0].find("failure")
    assert failure.get("type") == "fail" and "InternalError | compaction" in failure.get("message")
    assert "<d>&e" in failure.text and "\\u0000f\\u001b[31m" in failure.text  # JSON's own escapes
    assert cases[0].get("classname") == "chroma-compat.validate.store" and cases[2].get("time") == "0.250"
    assert cases[-1].find("system-out").text == "1 contract(s)"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["source"] == "./chroma_data" and props["verdict"] == "unsafe"
    assert (props["source_release"], props["target_release"], props["hash_before"]) == ("0.4.24", "1.5.9", "sha256:aa")


def test_junit_safe_and_invalid(safe, invalid):
    _, suite = _suite(safe)
    counts = [suite.get(k) for k in ("tests", "failures", "errors", "skipped")]
    assert counts == ["5", "0", "0", "0"]
    _, suite = _suite(invalid)
    (case,) = suite.findall("testcase")
    assert case.get("name") == "validate" and "NoSuchBucket" in case.find("error").get("message")
    assert suite.get("errors") == "1"


def test_markdown_tables_escape_user_text(unsafe):
    md = reports.markdown(unsafe)
    assert md.startswith("## chroma-compat validate: NOT safe to upgrade 0.4.24 -> 1.5.9\n")
    assert "| writable | notes | fail | add failed: InternalError \\| compaction<br>second line &lt;x> &amp; y |" in md
    assert "| filters | docs | pre-existing |" in md and "| query | docs | error |" in md
    assert "| notes | 3 | 3 | 3 | yes | 2/0 |" in md and "| docs | 2 | 2 | 2 | no | 0/1 |" in md
    assert "Checks: 2 pass, 1 fail, 1 pre-existing, 1 error, 1 skip, 1 info." in md
    assert "````json" in md  # the evidence holds ``` itself, so its fence is longer
    assert "\x00" not in md and "\x1b" not in md
    assert "chroma-compat validate ./chroma_data --to 1.5.9" in md
    assert '- **get-order: get() order (changed in 0.5.9)**: sorted -> {"order": "insertion"}.' in md
    assert "- **ne-nin: $ne \\| $nin (documented in 0.5.0)**: $ne: [c] -> [b, c]. Check filters." in md
    for line in md.splitlines():
        if line.startswith("| writable"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 5  # still four cells


def test_markdown_safe_and_invalid(safe, invalid):
    assert reports.markdown(safe).startswith("## chroma-compat validate: safe to upgrade 0.4.24 -> 1.5.9")
    md = reports.markdown(invalid)
    assert "could not validate" in md and "chroma-compat validate s3://bucket/prefix/ --to 1.5.9" in md


def test_terminal(safe, unsafe, invalid):
    text = reports.terminal(unsafe)
    assert text.splitlines()[0].startswith("NOT SAFE  chromadb 0.4.24 -> 1.5.9: NOT safe")
    assert "writable [notes]" in text and "0.4.6-0.4.24" in text and "orphaned segment dirs: 1 (4.0 KiB)" in text
    assert "\x00" not in text and "\x1b" not in text and "NaN" in text
    assert "source-unchanged" not in text and "source-unchanged" in reports.terminal(unsafe, verbose=True)
    assert reports.terminal(safe).startswith("SAFE  ")
    assert "  ne-nin: $ne | $nin (documented in 0.5.0)\n      $ne: [c] -> [b, c]\n" in text
    assert all(len(line) < 120 for line in text.splitlines() if "evidence:" not in line)
    assert reports.terminal(invalid).startswith("COULD NOT VALIDATE  could not validate: cannot reach")


def test_terminal_tolerates_an_empty_inventory():
    text = reports.terminal(Validation(source={"location": "x"}, inventory={"collections": "odd"}))
    assert text.startswith("SAFE")


def test_write_reports_is_atomic_and_complete(unsafe, tmp_path):
    out = tmp_path / "deep" / "reports"
    paths = reports.write_reports(
        unsafe, json_path=out / "r.json", junit_path=out / "r.xml", markdown_path=out / "r.md"
    )
    assert paths == [out / "r.json", out / "r.xml", out / "r.md"]
    assert sorted(p.name for p in out.iterdir()) == ["r.json", "r.md", "r.xml"]  # no temp files left
    _strict((out / "r.json").read_text())
    ET.parse(out / "r.xml")
    assert reports.write_reports(unsafe) == []


def test_write_reports_refuses_the_source_and_directories(unsafe, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    unsafe.source["location"] = str(store)
    with pytest.raises(CompatError, match="inside the source"):
        reports.write_reports(unsafe, json_path=tmp_path / "ok.json", junit_path=store / "r.xml")
    assert not (tmp_path / "ok.json").exists()  # checked before anything is written
    with pytest.raises(CompatError, match="directory"):
        reports.write_reports(unsafe, markdown_path=tmp_path)
    with pytest.raises(CompatError, match="same file"):
        reports.write_reports(unsafe, json_path=tmp_path / "a", markdown_path=tmp_path / "a")
