"""The right writer and the one-way door, on stores written by real releases.

A store says which *range* of releases could have written it (1.0.0-1.2.2
apply the same migrations); reports must state that range and the release
chosen to read it, never the reader as the writer. After the target has
written to its copy, the reading release must open that copy again, or the
report says, prominently, that rolling back is not possible.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import inventory, reports, writers
from pytest_chroma_compat.snapshot.validate import validate

from .conftest import NEW, run_cli

FIRST_RUST, OLDEST_SQLITE = "1.0.21", "0.4.0"


def _write(release: Release, path: Path) -> Path:
    """A few records with documents and str/int metadata: what every SQLite-era release accepts."""
    with release.persistent(path) as client:
        col = client.create_collection("notes")
        col.add(
            ids=[f"n{i}" for i in range(12)],
            embeddings=[[float(i), 1.0, 0.5] for i in range(12)],
            documents=[f"note number {i}" for i in range(12)],
            metadatas=[{"k": i, "s": str(i)} for i in range(12)],
        )
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("writers")
    out = {}
    for version in (FIRST_RUST, OLDEST_SQLITE, NEW):
        with Release(version) as release:
            out[version] = _write(release, root / version)
    return out


def _validate(store: Path, to: str, tmp_path: Path, **kw):
    return validate(str(store), to, workdir=tmp_path / "work", contracts=False, **kw)


def test_a_1_0_21_store_is_named_by_its_range_not_the_newest_release(written, tmp_path):
    """Before: "written by 1.2.2" and "safe to upgrade 1.2.2 -> 1.5.9" for a store 1.0.21 wrote."""
    result = _validate(written[FIRST_RUST], NEW, tmp_path)
    wr = result.inventory["writer_range"]
    assert FIRST_RUST in wr["versions"] and len(wr["versions"]) > 1, wr
    reader = result.source_release
    assert reader in wr["versions"] and reader == wr["readers"][0]
    assert f"one of chromadb {wr['first']}-{wr['last']}" in result.source_release_evidence
    assert f"read with chromadb {reader}, the newest candidate that opens the store" in result.source_release_evidence
    assert "pass --from X if you know which release wrote it" in result.source_release_evidence
    assert f"chromadb {wr['first']}-{wr['last']} -> {NEW}" in result.summary
    assert f"chromadb {reader} -> " not in result.summary
    md = reports.markdown(result)
    assert f"| read with | {reader} (written by one of chromadb" in md and f"| written by | {reader}" not in md
    assert f"{wr['first']}-{wr['last']} -> {NEW}" in md.splitlines()[0]
    report = result.to_json()
    assert report["releases"]["source"] == reader and report["rollback"]["checked"] is True


def test_a_0_4_0_store_is_read_by_0_4_0_and_gets_the_real_answer(written, tmp_path):
    """Before: read with 0.4.3, which refuses it (another hash of one migration): "store is damaged", exit 2."""
    assert inventory.take(written[OLDEST_SQLITE])["writer_range"]["versions"] == [OLDEST_SQLITE]
    result = _validate(written[OLDEST_SQLITE], NEW, tmp_path)
    assert result.error is None, result.error
    assert result.source_release == OLDEST_SQLITE
    assert result.exit_code == 1, result.summary
    opened = next(c for c in result.checks if c.name == "open")
    # measured: 1.5.9 (and 0.4.24) refuse the hash 0.4.0 recorded for its first metadata migration
    assert opened.status == "fail" and "Inconsistent hash" in opened.evidence["error"], opened


def test_a_candidate_that_refuses_the_store_gives_way_to_the_next_older_one(written, tmp_path, monkeypatch):
    """Without the hash signal the range is 0.4.0-0.4.3: 0.4.3, 0.4.2 and 0.4.1 refuse, and 0.4.0 reads it."""
    monkeypatch.setattr(writers, "LAST_OPENER", ("schema", "user_version"))
    result = _validate(written[OLDEST_SQLITE], "0.4.24", tmp_path)
    assert result.inventory["writer_range"]["readers"] == ["0.4.3", "0.4.2", "0.4.1", "0.4.0"]
    assert result.error is None and result.source_release == OLDEST_SQLITE, result.error
    assert "chromadb 0.4.3 refused it: " in result.source_release_evidence
    assert result.exit_code == 1 and "Inconsistent hash" in next(c for c in result.checks if c.name == "open").detail


def test_rollback_after_upgrading_1_0_21_to_1_5_9_is_not_possible(written, tmp_path):
    """1.0.21 panics on a store 1.5.9 has written to: shown always, in the exit code only when required."""
    plain = _validate(written[FIRST_RUST], NEW, tmp_path, from_=FIRST_RUST)
    assert plain.rollback["possible"] is False and plain.rollback["release"] == FIRST_RUST
    assert "range start index" in plain.rollback["error"], plain.rollback
    assert plain.exit_code == 0, plain.summary  # outside the verdict by default
    assert "rollback after upgrading: NOT POSSIBLE" in reports.terminal(plain).split("\n\n")[0]  # by the verdict
    assert "**rollback after upgrading: NOT POSSIBLE" in reports.markdown(plain)
    out = tmp_path / "r.json"
    proc = run_cli(
        "validate",
        str(written[FIRST_RUST]),
        "--to",
        NEW,
        "--from",
        FIRST_RUST,
        "--no-contracts",
        "--require-rollback",
        "--json",
        str(out),
        "--workdir",
        str(tmp_path / "work"),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["rollback"]["possible"] is False and "range start index" in report["rollback"]["error"]
    assert [c["status"] for c in report["checks"] if c["name"] == "rollback-after-upgrade"] == ["fail"]


def test_same_release_validation_can_roll_back(written, tmp_path):
    result = _validate(written[NEW], NEW, tmp_path, require_rollback=True)
    assert result.rollback == {**result.rollback, "checked": True, "possible": True, "error": None}
    assert result.exit_code == 0, result.summary
    assert "rollback after upgrading: possible" in reports.terminal(result)
