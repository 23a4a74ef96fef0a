"""The scan's predictions, run: code the scan flags for an upgrade behaves differently under the two
releases when run through their workers (real releases, real worker processes), and code it flags
for one contract is exactly the code that changed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.usercode.scan.reader import scan

from .conftest import MID, NEW, OLD

SNIPPET = """
import chromadb
from chromadb.config import Settings


def _client(path):
    return chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))


def batch_size(path):
    client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
    try:
        return type(client.max_batch_size).__name__
    except AttributeError:
        return "AttributeError"


def overwrite_metadata(path):
    client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
    client.create_collection("meta", metadata={"v": 1}, embedding_function=None)
    client.get_or_create_collection("meta", metadata={"v": 2}, embedding_function=None)
    return client.get_collection("meta", embedding_function=None).metadata["v"]


def _filled(path, name):
    client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
    col = client.create_collection(name, embedding_function=None)
    col.add(ids=["a", "b", "c"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
            metadatas=[{"color": "red"}, {"color": "blue"}, {"size": 1}])
    return col


def has_vectors(path):
    results = _filled(path, "emb").get(include=["embeddings"])
    try:
        if results["embeddings"]:
            return "truthy"
        return "falsy"
    except ValueError:
        return "ValueError"


def not_red(path):
    col = _filled(path, "colors")
    return sorted(col.get(where={"color": {"$ne": "red"}})["ids"])


def everything(path):
    col = _filled(path, "all")
    try:
        return len(col.get(where={})["ids"])
    except Exception as exc:
        return type(exc).__name__


def contains_red(path):
    col = _filled(path, "contains")
    try:
        return col.get(where={"color": {"$contains": "re"}})["ids"]
    except Exception as exc:
        return type(exc).__name__


def names(path):
    client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
    client.get_or_create_collection("listed", embedding_function=None)
    try:
        return [c.name for c in client.list_collections()]
    except (AttributeError, NotImplementedError) as exc:  # 0.6 raises NotImplementedError from .name
        return type(exc).__name__
"""

# function -> (contract the scan must report for the pair, the pair, answer under old, answer under new)
CASES = {
    "batch_size": ("max-batch-size-method", (OLD, NEW), "int", "AttributeError"),
    "overwrite_metadata": ("get-or-create-ignores-metadata", (OLD, NEW), 2, 1),
    "has_vectors": ("embeddings-numpy", (OLD, NEW), "truthy", "ValueError"),
    "not_red": ("ne-nin-complement", (OLD, NEW), ["b"], ["b", "c"]),
    "everything": ("empty-filters-rejected", (OLD, NEW), 3, "ValueError"),
    "contains_red": ("where-contains-metadata", (OLD, NEW), "ValueError", []),
    "names": ("list-collections-names", (OLD, MID), ["listed"], "NotImplementedError"),
}


def _function_of(source: str, line: int) -> str:
    """The function a line belongs to (the nearest `def` above it)."""
    for text in reversed(source.splitlines()[:line]):
        if text.startswith("def "):
            return text[4:].split("(")[0]
    return ""


@pytest.fixture
def snippet(tmp_path: Path) -> Path:
    path = tmp_path / "upgrade_snippet.py"
    path.write_text(textwrap.dedent(SNIPPET))
    return path


def test_scan_flags_exactly_the_functions_whose_behaviour_changes(snippet, tmp_path):
    source = snippet.read_text()
    for pair in {(OLD, NEW), (OLD, MID)}:
        found = {(_function_of(source, f.line), f.contract_id) for f in scan([str(snippet)], *pair).findings}
        wanted = {(fn, cid) for fn, (cid, p, _, _) in CASES.items() if p == pair}
        assert wanted <= found, (pair, wanted - found)
        assert {cid for _, cid in found} <= {c for c, *_ in CASES.values()}, found

    answers: dict[tuple[str, str], object] = {}
    for version in (OLD, MID, NEW):
        with Release(version) as release:
            for fn, (_, pair, _, _) in CASES.items():
                if version in pair:
                    store = tmp_path / f"store-{version}-{fn}"
                    answers[fn, version] = release.run(
                        f"upgrade_snippet:{fn}", str(store), sys_path=[str(snippet.parent)]
                    )
    for fn, (cid, (old, new), before, after) in CASES.items():
        assert answers[fn, old] != answers[fn, new], f"{cid}: the scan predicted a change in {fn}"
        assert (answers[fn, old], answers[fn, new]) == (before, after), (fn, answers[fn, old], answers[fn, new])


def test_what_the_scan_does_not_flag_runs_the_same_under_both_releases(snippet, tmp_path):
    """For 0.4.24 -> 1.5.9 the list_collections() code is not reported (0.6 broke it, 1.0 restored
    it: measured): it answers the same under both releases."""
    source = snippet.read_text()
    found = {_function_of(source, f.line) for f in scan([str(snippet)], OLD, NEW).findings}
    assert "names" not in found
    answers = []
    for version in (OLD, NEW):
        with Release(version) as release:
            answers.append(
                release.run("upgrade_snippet:names", str(tmp_path / f"s-{version}"), sys_path=[str(snippet.parent)])
            )
    assert answers[0] == answers[1] == ["listed"]
