"""Precision and recall of the scan on tests/scan_corpus (snippets modelled on public projects'
chromadb code; see its README): every `# expect:` line found, nothing else reported."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_chroma_compat.usercode.scan.reader import scan

CORPUS = Path(__file__).parent / "scan_corpus"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECT = re.compile(r"#\s*expect:\s*([\w.-]+)")
EXPECT_NOT = re.compile(r"#\s*expect-not:\s*([\w.-]+)")


def _pair(path: Path) -> tuple[str, str]:
    m = re.match(r"# scan: (\S+) -> (\S+)", path.read_text().splitlines()[0])
    assert m, f"{path.name}: first line must be '# scan: FROM -> TO'"
    return m.group(1), m.group(2)


def corpus_score() -> dict:
    expected, rejected, found = set(), set(), set()
    for path in sorted(CORPUS.glob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            expected |= {(path.name, n, cid) for cid in EXPECT.findall(line)}
            rejected |= {(path.name, n, cid) for cid in EXPECT_NOT.findall(line)}
        found |= {(path.name, f.line, f.contract_id) for f in scan([str(path)], *_pair(path)).findings}
    tp = found & expected
    return {
        "expected": expected,
        "rejected": rejected,
        "found": found,
        "tp": len(tp),
        "precision": len(tp) / len(found) if found else 1.0,
        "recall": len(tp) / len(expected),
    }


def test_scan_corpus_precision_and_recall():
    score = corpus_score()
    print(
        f"\nscan corpus: {len(score['expected'])} planted uses, {len(score['rejected'])} planted non-findings, "
        f"precision {score['precision']:.2f}, recall {score['recall']:.2f}"
    )
    assert len(score["expected"]) >= 30 and len(score["rejected"]) >= 20
    assert not score["found"] & score["rejected"], "a planted non-finding was reported"
    assert score["found"] - score["expected"] == set(), "findings on lines with no `expect`"
    assert score["expected"] - score["found"] == set(), "planted uses the scan missed"
    assert score["precision"] == 1.0 and score["recall"] == 1.0


def test_the_corpus_covers_every_contract_with_scan_rules():
    from pytest_chroma_compat.usercode.scan.rules import load

    covered = {cid for _, _, cid in corpus_score()["expected"]}
    assert {r.contract_id for r in load()} - covered == set()


def test_scanning_the_example_apps():
    """receipt_app's persist() is guarded by hasattr (written for both sides): not reported;
    ledger_app reads .name of list_collections() items, which 0.6 breaks."""
    assert scan([str(EXAMPLES / "receipt_app")], "0.3.29", "1.5.9").findings == ()
    [f] = scan([str(EXAMPLES / "ledger_app")], "0.5.23", "0.6.3").findings
    assert (Path(f.path).name, f.line, f.contract_id) == ("store.py", 88, "list-collections-names")
    assert scan([str(EXAMPLES / "ledger_app")], "0.4.24", "1.5.9").findings == ()
