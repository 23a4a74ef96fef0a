"""chroma-compat scan: rules from the contract table, aliases, literal filters, suppressions, the
measured change versions (not the log's), and the command's exit codes."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from pytest_chroma_compat.contracts.measure import load_table
from pytest_chroma_compat.usercode.scan import changes, rules
from pytest_chroma_compat.usercode.scan.reader import scan

from .conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def _scan(tmp_path: Path, code: str, old: str = "0.4.24", new: str = "1.5.9") -> list[tuple[int, str]]:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(code))
    return [(f.line, f.contract_id) for f in scan([str(path)], old, new).findings]


def test_every_scan_rule_names_a_measured_contract_of_the_table():
    ids = {c.id: c for c in load_table()}
    loaded = rules.load()
    assert {r.contract_id for r in loaded} >= {
        "persist-removed",
        "max-batch-size-method",
        "list-collections-names",
        "list-collections-objects",
        "empty-filters-rejected",
        "ne-nin-complement",
        "where-contains-metadata",
        "get-or-create-ignores-metadata",
        "embeddings-numpy",
        "get-order-internal-ids",
        "embedding-function-input",
        "auth-settings-renamed",
        "new-client-constructors",
        "metadata-value-types",
    }
    for r in loaded:
        assert ids[r.contract_id].probe and r.fix, r
        assert r.contract_id in changes.load()["contracts"], r.contract_id


def test_changes_json_agrees_with_the_measured_page():
    """usercode/scan/changes.json and docs/contracts.md come from the same measurement: same change versions."""
    page = (ROOT / "docs" / "contracts.md").read_text()
    rows = re.findall(r"^\| \[([\w.-]+)\]\(#[^)]*\) \|[^|]*\|[^|]*\| ([^|]*) \|", page, flags=re.M)
    assert len(rows) == len(load_table())
    stored = changes.load()["contracts"]
    for cid, cell in rows:
        measured = re.findall(r"\d+\.\d+\.\d+", cell)
        assert stored.get(cid, {"changes": []})["changes"] == measured, cid
    assert changes.load()["versions"][0] == "0.3.29" and len(changes.load()["versions"]) == 92


def test_derive_gives_a_shared_probe_s_changes_to_the_contract_that_documents_them():
    from pytest_chroma_compat.contracts.measure import Observation, contract, histories

    versions = ["0.5.23", "0.6.0", "0.6.3", "1.0.0"]
    values = ["list[Collection]", "list[str]", "list[str]", "list[Collection]"]
    obs = {v: Observation(v, {"list_collections_type": x}) for v, x in zip(versions, values)}
    pair = [contract("list-collections-names"), contract("list-collections-objects")]
    derived = changes.derive(histories(versions, obs, pair), versions)["contracts"]
    assert derived["list-collections-names"]["changes"] == ["0.6.0", "1.0.0"]
    assert derived["list-collections-names"]["owned"] == ["0.6.0"]
    assert derived["list-collections-objects"]["owned"] == ["1.0.0"]
    assert [r["first"] for r in derived["list-collections-objects"]["runs"]] == ["0.5.23", "0.6.0", "1.0.0"]
    stored = changes.load()["contracts"]  # the committed file, from the real measurement
    assert stored["list-collections-names"]["owned"] == ["0.6.0"]
    assert stored["list-collections-objects"]["owned"] == ["1.0.0"]


def test_aliases_attributes_and_literal_filters_nested_under_and_or(tmp_path):
    found = _scan(
        tmp_path,
        """
        import chromadb as cdb
        from chromadb import PersistentClient as PC
        c = PC(path="x")
        other = cdb.HttpClient()
        col = c.get_collection("a")
        n = other.max_batch_size
        col.get(where={"$or": [{"a": 1}, {"$and": [{"b": {"$nin": [1]}}, {"c": 2}]}]})
        F = {"k": {"$ne": 1}}
        col.query(query_embeddings=[[1.0]], where=F)
    """,
    )
    assert found == [(7, "max-batch-size-method"), (8, "ne-nin-complement"), (9, "ne-nin-complement")]


def test_a_suppression_comment_drops_that_contract_on_that_line_only(tmp_path):
    found = _scan(
        tmp_path,
        """
        import chromadb
        client = chromadb.Client()
        client.persist()  # chroma-compat: ignore[persist-removed]
        client.persist()  # chroma-compat: ignore[max-batch-size-method]
        client.persist()
    """,
        old="0.3.29",
    )
    assert found == [(5, "persist-removed"), (6, "persist-removed")]


def test_the_measured_change_version_decides_not_the_log(tmp_path):
    """get_or_create_collection(metadata=) is documented at 0.5.11 but measured at 0.5.9."""
    code = """
        import chromadb
        client = chromadb.PersistentClient(path="x")
        col = client.get_or_create_collection("a", metadata={"v": 2})
    """
    assert _scan(tmp_path, code, "0.5.7", "0.5.9") == [(4, "get-or-create-ignores-metadata")]
    assert _scan(tmp_path, code, "0.5.9", "0.5.11") == []  # the log's release: nothing changes there


def test_a_change_that_changes_back_inside_the_range_is_not_reported(tmp_path):
    code = """
        import chromadb
        col = chromadb.PersistentClient(path="x").get_collection("a")
        page = col.get(limit=2, offset=2)
    """
    assert _scan(tmp_path, code, "0.4.24", "1.5.9") == [(4, "get-order-internal-ids")]
    assert _scan(tmp_path, code, "0.4.19", "1.5.9") == []  # 0.4.20 and back at 0.5.9


def test_only_the_key_the_code_depends_on_counts(tmp_path):
    """$ne and $nin change at different releases (measured): $nin at 0.4.9, both at 0.5.12."""
    code = """
        import chromadb
        col = chromadb.PersistentClient(path="x").get_collection("a")
        a = col.get(where={"k": {"$ne": 1}})
        b = col.get(where={"k": {"$nin": [1]}})
    """
    assert _scan(tmp_path, code, "0.4.8", "0.4.9") == [(5, "ne-nin-complement")]
    assert _scan(tmp_path, code, "0.5.11", "0.5.12") == [(4, "ne-nin-complement"), (5, "ne-nin-complement")]


def test_the_command_exits_1_with_findings_and_0_without(tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import chromadb\nclient = chromadb.Client()\nclient.persist()\n")
    proc = run_cli("scan", str(tmp_path), "--from", "0.3.29", "--to", "1.5.9")
    assert proc.returncode == 1, proc.stderr
    assert f"{app}:3:1: persist-removed" in proc.stdout and "fix: Delete the call" in proc.stdout
    assert "measured change: 0.4.0" in proc.stdout
    proc = run_cli("scan", str(app), "--from", "0.4.0", "--to", "1.5.9", "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == []
    out = tmp_path / "report.json"
    proc = run_cli("scan", str(app), "--from", "0.3.29", "--to", "0.4.0", "--format", "json", "--output", str(out))
    assert proc.returncode == 1 and proc.stdout == ""
    [finding] = json.loads(out.read_text())["findings"]
    assert finding["contract_id"] == "persist-removed" and finding["changes"] == ["0.4.0"]
    assert finding["quote"] and finding["section"] and finding["fix"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["nonexistent-dir", "--from", "0.4.24", "--to", "1.5.9"], "no such file or directory"),
        (["{tmp}", "--from", "1.5.9", "--to", "0.4.24"], "must be older than"),
        (["{tmp}", "--from", "0.4.24", "--to", "9.9.9"], "9.9.9"),
        (["{tmp}", "--from", "0.4.24", "--to", "1.5.9", "--format", "xml"], "--format must be one of"),
    ],
)
def test_scan_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    proc = run_cli("scan", *[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_file_that_does_not_parse_is_named_not_skipped_silently(tmp_path):
    (tmp_path / "broken.py").write_text("def (:\n")
    result = scan([str(tmp_path)], "0.4.24", "1.5.9")
    assert result.files == 1 and "broken.py" in result.unreadable[0]
