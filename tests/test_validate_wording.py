"""Words that follow the evidence (issue 23, part 8, validate side), on stores real releases wrote.

A downgrade's verdict comes from the measured checks, the rule beside it as a
caveat (``--refuse-downgrade`` makes the rule decide); the rule never says the
target opened a store it failed to open; a writer range is never shortened to
one release; a 0.3 store is reopened by the release that read it (the newest
0.3 release that opens it), never by the range's oldest end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import reports
from pytest_chroma_compat.snapshot.validate import CAVEAT, validate

from .conftest import run_cli


def _write(version: str, path: Path, settings: dict | None = None) -> Path:
    with Release(version) as release:
        with release.persistent(path, settings) as client:
            col = client.create_collection("notes")
            col.add(
                ids=[f"n{i}" for i in range(10)],
                embeddings=[[float(i), 1.0, 0.5] for i in range(10)],
                documents=[f"note {i}" for i in range(10)],
                metadatas=[{"k": i} for i in range(10)],
            )
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wording")
    return {
        "0.6.3": _write("0.6.3", root / "063"),
        "0.4.24-sha256": _write("0.4.24", root / "0424", {"migrations_hash_algorithm": "sha256"}),
    }


def _validate(store: Path, to: str, tmp_path: Path, **kw):
    return validate(str(store), to, workdir=tmp_path / "work", contracts=False, **kw)


def test_a_downgrade_is_judged_by_the_measured_checks_with_the_rule_as_a_caveat(stores, tmp_path):
    result = _validate(stores["0.6.3"], "0.5.23", tmp_path, from_="0.6.3")
    assert result.direction == "rollback" and result.error is None, result.error
    rule = next(c for c in result.checks if c.name == "rollback")
    assert rule.status == "info" and CAVEAT in rule.detail
    opened = next(c for c in result.checks if c.name == "open")
    said = "opened it" if opened.status == "pass" else "failed to open it"
    assert f"chromadb 0.5.23 {said}" in rule.detail and "without complaint" not in rule.detail
    # the verdict is what the measured checks say, not the rule
    assert result.exit_code == (1 if result.failed else 0)
    assert ("rollback", None) not in {(c.name, c.collection) for c in result.failed}
    if result.exit_code == 0:
        assert "caveat: the store was written by chromadb 0.6.3" in result.summary
    strict = _validate(stores["0.6.3"], "0.5.23", tmp_path, from_="0.6.3", refuse_downgrade=True)
    assert strict.exit_code == 1 and ("rollback", None) in {(c.name, c.collection) for c in strict.failed}
    assert "--refuse-downgrade" in next(c for c in strict.checks if c.name == "rollback").detail


def test_a_downgrade_below_the_range_names_the_range_not_one_release(stores, tmp_path):
    """A sha256 0.4.24 store reads as "one of 0.4.18-0.4.24"; 0.4.17 is below it and cannot take the
    setting, so its open fails, and the rule says so instead of "opens without complaint"."""
    result = _validate(stores["0.4.24-sha256"], "0.4.17", tmp_path)
    rule = next(c for c in result.checks if c.name == "rollback")
    assert "one of chromadb 0.4.18-0.4.24 (read with 0.4.24)" in rule.detail, rule.detail
    assert "written by chromadb 0.4.24," not in rule.detail
    assert "failed to open it" in rule.detail and "without complaint" not in rule.detail
    assert result.exit_code == 1 and ("open", None) in {(c.name, c.collection) for c in result.failed}
    settings = next(c for c in result.checks if c.name == "store-settings")
    assert "chromadb 0.4.17 has no such setting" in settings.detail


def test_the_rollback_line_says_why_two_releases_reopen(stores, tmp_path):
    result = _validate(stores["0.4.24-sha256"], "1.5.9", tmp_path)
    rb = result.rollback
    assert rb["releases"] == ["0.4.18", "0.4.24"], rb
    assert rb["why_releases"] == (
        "chromadb 0.4.18: the oldest release that could have written the store; 0.4.24: the release that read it"
    )
    assert rb["why_releases"] in " ".join(reports.terminal(result).split())  # wrapped at 120 columns


def test_refuse_downgrade_is_a_validate_option():
    out = run_cli("validate", "--help")
    assert out.returncode == 0 and "--refuse-downgrade" in out.stdout


@pytest.mark.slow
def test_a_0_3_store_is_reopened_by_the_release_that_read_it(tmp_path):
    """Before: the reopen started with 0.3.3, the oldest 0.3 candidate, which does not build here."""
    store = tmp_path / "legacy"
    with Release("0.3.29") as release:
        with release.persistent(store) as client:
            col = client.create_collection("notes")
            col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])
    result = _validate(store, "0.4.24", tmp_path)
    assert result.source_release == "0.3.29", result.source_release_evidence
    assert result.rollback and result.rollback.get("releases") == ["0.3.29"], result.rollback
    assert result.rollback.get("why_releases") is None
