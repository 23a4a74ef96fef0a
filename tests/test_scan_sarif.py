"""chroma-compat scan --format sarif validates against the SARIF 2.1.0 schema (tests/data, see its
README for the source) and carries what code scanning shows: rule ids = contract ids, the log
entry and the fix as help, a located result per finding."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from pytest_chroma_compat.usercode.scan.reader import scan
from pytest_chroma_compat.usercode.scan.sarif import sarif

from .conftest import run_cli

DATA = Path(__file__).parent / "data"
CORPUS = Path(__file__).parent / "scan_corpus"


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)  # the schema's own draft (04)


def test_sarif_of_the_corpus_validates_and_names_contracts_as_rules(monkeypatch):
    monkeypatch.chdir(CORPUS.parent.parent)
    doc = sarif(scan([str(CORPUS)], "0.3.29", "1.5.9"))
    errors = sorted(_validator().iter_errors(doc), key=str)
    assert not errors, errors[0]
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert len(run["results"]) >= 10
    for result in run["results"]:
        rule = rules[result["ruleId"]]
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]] is rule
        loc = result["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"].startswith("tests/scan_corpus/") and loc["region"]["startLine"] >= 1
        assert "Fix:" in rule["help"]["text"] and "Migration log:" in rule["help"]["text"]
    assert "`.persist()` removed" in rules["persist-removed"]["help"]["text"]


def test_sarif_with_no_findings_still_validates(tmp_path):
    (tmp_path / "ok.py").write_text("print('no chromadb here')\n")
    doc = sarif(scan([str(tmp_path)], "0.4.24", "1.5.9"))
    assert not list(_validator().iter_errors(doc))
    assert doc["runs"][0]["results"] == []


def test_a_sarif_document_missing_its_version_is_rejected_by_the_schema():
    """The validation can fail: the schema really is enforced."""
    doc = sarif(scan([str(CORPUS / "rate_limit.py")], "0.5.0", "1.5.9"))
    del doc["version"]
    assert list(_validator().iter_errors(doc))


def test_the_command_writes_sarif_to_output(tmp_path):
    out = tmp_path / "scan.sarif"
    proc = run_cli(
        "scan",
        str(CORPUS / "rag_app.py"),
        "--from",
        "0.4.24",
        "--to",
        "1.5.9",
        "--format",
        "sarif",
        "--output",
        str(out),
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(out.read_text())
    assert not list(_validator().iter_errors(doc))
    assert {r["ruleId"] for r in doc["runs"][0]["results"]} == {"embeddings-numpy"}
