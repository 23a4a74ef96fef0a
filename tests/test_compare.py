"""The two-release comparison behind ``validate``: page hashes made by the releases, records looked at
only where hashes differ, and every difference reported with its evidence."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.engine.worker import fingerprint, wire
from pytest_chroma_compat.roundtrip.model import distances
from pytest_chroma_compat.snapshot import compare

from .conftest import MID, NEW, OLD

FIELDS = ["embeddings", "documents", "metadatas"]


def _write(client, n: int = 30, dim: int = 6, space: str = "l2"):
    rng = np.random.default_rng(3)
    col = client.create_collection("docs", metadata={"hnsw:space": space})
    col.add(
        ids=[f"doc-{i:03d}" for i in range(n)],
        embeddings=rng.standard_normal((n, dim)).astype(np.float32),
        documents=[f"note {i} on topic{i % 4}" for i in range(n)],
        metadatas=[{"i": i, "w": i / 7, "tag": "abc"[i % 3]} for i in range(n)],
    )
    return col


@pytest.mark.parametrize("version", [OLD, MID, NEW])
def test_a_release_hashes_a_page_as_the_host_does(tmp_path, chroma_releases, version):
    """The worker's summary of a page is what the host computes from the same records: hash, digest, neighbours."""
    with chroma_releases.get(version).persistent(tmp_path / "s") as client:
        col = _write(client)
        asked = [f"doc-{i:03d}" for i in (17, 3, 29, 0)] + ["no-such-id"]
        queries = np.random.default_rng(0).standard_normal((2, 6))
        got = col._call(
            "fingerprint", ids=asked, digest="t", records=True, queries=wire.pack_ndarray(queries), space="l2", k=3
        )
        digest = client.worker.call("take_digest", token="t")
        plain = col.get(ids=asked, include=FIELDS)
    assert got["ids"] == asked[:4], "records come back in the order asked; a missing id is left out"
    order = [plain["ids"].index(i) for i in asked[:4]]
    docs, metas = [plain["documents"][j] for j in order], [plain["metadatas"][j] for j in order]
    vectors = fingerprint.float32_rows(plain["embeddings"], len(plain["ids"]))[order]
    page = fingerprint.parts(asked[:4], docs, metas, vectors)
    assert got["hash"] == fingerprint.page_hash(page, 6)
    running = fingerprint.Digest()
    running.update(page)
    assert digest == running.hexdigest()
    assert got["records"]["ids"] == asked[:4] and got["records"]["metadatas"] == metas
    for j, q in enumerate(queries):
        exact = distances(vectors.astype(np.float64), q, "l2")
        want = [asked[i] for i in np.argsort(exact)[:3]]
        assert got["nearest"][j][0] == want
        np.testing.assert_allclose(got["nearest"][j][1], np.sort(exact)[:3], rtol=1e-9, atol=1e-12)


def test_digest_does_not_depend_on_the_page_size():
    rng = np.random.default_rng(1)
    ids, docs = [f"r{i}" for i in range(10)], [f"d{i}" for i in range(10)]
    metas, vecs = [{"k": i, "b": i % 2 == 0} for i in range(10)], rng.standard_normal((10, 3)).astype(np.float32)
    whole, paged = fingerprint.Digest(), fingerprint.Digest()
    whole.update(fingerprint.parts(ids, docs, metas, vecs))
    for lo in range(0, 10, 3):
        paged.update(fingerprint.parts(ids[lo : lo + 3], docs[lo : lo + 3], metas[lo : lo + 3], vecs[lo : lo + 3]))
    assert whole.hexdigest() == paged.hexdigest()
    metas[4] = {"k": 4.0, "b": True}  # an int that became a float is a different record
    changed = fingerprint.Digest()
    changed.update(fingerprint.parts(ids, docs, metas, vecs))
    assert changed.hexdigest() != whole.hexdigest()


def test_every_difference_is_found_with_evidence(tmp_path, chroma_releases):
    """Source and target stores of one release that differ in five known ways, compared in 7-record pages."""
    release = chroma_releases.get(NEW)
    with release.persistent(tmp_path / "a") as client:
        _write(client)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with release.persistent(tmp_path / "b") as client:
        col = client.get_collection("docs")
        rec = col.get(ids=["doc-004", "doc-011", "doc-020", "doc-025"], include=FIELDS)
        vec = dict(zip(rec["ids"], np.asarray(rec["embeddings"], dtype=np.float32)))
        # every update carries its vector: a document alone would send 1.5.9 to its default embedding model
        one_ulp = np.nextafter(vec["doc-011"], np.float32(np.inf))
        col.update(ids=["doc-011"], embeddings=one_ulp[None, :])  # within tolerance: passes, and is counted
        col.update(ids=["doc-004"], embeddings=vec["doc-004"][None, :] + 1)
        col.update(ids=["doc-020"], embeddings=vec["doc-020"][None, :], documents=["rewritten"])
        col.update(
            ids=["doc-025"], embeddings=vec["doc-025"][None, :], metadatas=[{"i": 25.0, "w": 25 / 7, "tag": "b"}]
        )
        col.delete(ids=["doc-013"])
    with release.persistent(tmp_path / "a") as a, release.persistent(tmp_path / "b") as b:
        summary, checks = compare.compare_collection("docs", a, b, batch_size=7)
    by = {c.name: c for c in checks}
    assert {n for n, c in by.items() if c.failed} == {"count", "ids", "documents", "metadata", "embeddings", "query"}
    assert by["ids"].evidence["examples"] == ["doc-013"]
    assert [e["id"] for e in by["documents"].evidence["examples"]] == ["doc-020"]
    assert by["metadata"].evidence["examples"][0]["target"]["i"] == 25.0
    assert [e["id"] for e in by["embeddings"].evidence["examples"]] == ["doc-004"]
    assert summary.max_embedding_ulps > 1 and summary.records_compared == 29
    assert summary.source_digest != summary.target_digest
    pages = by["count"].evidence["pages compared record by record (their hashes differed)"]
    assert 0 < pages < 5, "pages whose hashes agree are not looked at record by record"


def test_identical_stores_compare_by_hash_alone(tmp_path, chroma_releases):
    release = chroma_releases.get(NEW)
    with release.persistent(tmp_path / "a") as client:
        _write(client, n=40, space="cosine")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with release.persistent(tmp_path / "a") as a, release.persistent(tmp_path / "b") as b:
        summary, checks = compare.compare_collection("docs", a, b, space="cosine", batch_size=9)
    assert not [c for c in checks if c.failed], [c.detail for c in checks if c.failed]
    assert summary.source_digest == summary.target_digest and summary.records_compared == 40
    assert checks[0].evidence["pages compared record by record (their hashes differed)"] == 0


def test_filters_are_selective_and_within_their_budget():
    metas = [{"flag": i % 2 == 0, "group": i % 10, "score": i / 100, "kind": "ab"[i % 2]} for i in range(100)]
    metas[37]["kind"] = "z"
    docs = [f"entry {i:04d} about common words" for i in range(100)]
    picked = compare.pick_filters(metas, docs)
    clauses = [f.clause() for f in picked]
    assert {"where": {"kind": {"$eq": "z"}}} in clauses  # the rarest value of a key
    assert {"where_document": {"$contains": "0000"}} in clauses  # the rarest word
    # near the top, halfway between two stored values (1.x re-rounds some floats: never on the edge)
    assert any(0.95 < c.get("where", {}).get("score", {}).get("$gt", 0) < 0.96 for c in clauses)
    assert {"where": {"flag": {"$eq": True}}} not in clauses  # half the records: over the budget
    assert sum(f.share for f in picked) <= compare.FILTER_SHARE
    assert len(picked) <= compare.MAX_FILTERS


def test_pages_that_differ_mid_stream_are_compared_in_page_order(tmp_path, chroma_releases, monkeypatch):
    """The stream asks windows of pages without their records; a page that differs there is read again once
    the stream ends (``MAX_DEFERRED`` of them, then records travel with every page). Its differences still
    come first in page order, and the exact neighbours are those of every source record, computed on either
    side (``SOURCE_QUERIES``) or, for a page that differed, here from the source's records."""
    monkeypatch.setattr(compare, "MAX_DEFERRED", 2)
    monkeypatch.setattr(compare, "WINDOW", 3)
    release = chroma_releases.get(NEW)
    with release.persistent(tmp_path / "a") as client:
        _write(client, n=60)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    changed = [f"doc-{i:03d}" for i in (1, 10, 22, 31, 40, 47, 58)]  # pages 0, 3, 7, 10, 13, 15, 19 of 3 records
    with release.persistent(tmp_path / "b") as client:
        col = client.get_collection("docs")
        rec = col.get(ids=changed, include=FIELDS)
        metas = [{**m, "i": -1} for m in rec["metadatas"]]
        col.update(ids=list(rec["ids"]), embeddings=np.asarray(rec["embeddings"], dtype=np.float32), metadatas=metas)
    # two workers, as validate has: each side streams in a thread of its own
    with release.persistent(tmp_path / "a") as a, Release(NEW) as other, other.persistent(tmp_path / "b") as b:
        seen = {}
        real = compare.query_check
        monkeypatch.setattr(
            compare, "query_check", lambda *args, **kw: seen.setdefault("q", args[3]) and real(*args, **kw)
        )
        summary, checks = compare.compare_collection("docs", a, b, batch_size=3)
        whole = a.get_collection("docs").get(include=FIELDS)
    by = {c.name: c for c in checks}
    assert by["metadata"].status == "fail" and by["metadata"].evidence["records affected"] == len(changed)
    assert [e["id"] for e in by["metadata"].evidence["examples"]] == changed[: compare.EXAMPLES]
    assert by["count"].evidence["pages compared record by record (their hashes differed)"] == len(changed)
    queries = seen["q"]
    vectors = fingerprint.float32_rows(whole["embeddings"], len(whole["ids"])).astype(np.float64)
    for j, q in enumerate(queries.vectors):
        exact = distances(vectors, q, "l2")
        order = np.argsort(exact, kind="stable")[: len(queries.best_ids[j])]
        assert queries.best_ids[j] == [whole["ids"][i] for i in order]
        np.testing.assert_allclose(queries.best_d[j], exact[order], rtol=1e-9, atol=1e-12)


def test_neighbours_merged_in_any_page_order_are_the_same():
    """Ties go to the earlier page, then the earlier row, whatever order pages are folded in."""
    from pytest_chroma_compat.snapshot.query_check import Queries

    rng = np.random.default_rng(2)
    vectors = np.repeat(rng.standard_normal((20, 4)).astype(np.float32), 3, axis=0)  # every vector three times
    ids = [f"r{i:02d}" for i in range(len(vectors))]
    pages = [(p, ids[lo : lo + 7], vectors[lo : lo + 7]) for p, lo in enumerate(range(0, len(ids), 7))]
    q = vectors[[0, 9, 30]].astype(np.float64)
    merged = []
    for order in (pages, pages[::-1], [pages[i] for i in rng.permutation(len(pages))]):
        queries = Queries(ids[:3], q, "l2")
        for p, page_ids, page_vectors in order:
            queries.merge(fingerprint.nearest(page_ids, page_vectors, q, "l2", 5), p, page_ids)
        merged.append((queries.best_ids, [d.tolist() for d in queries.best_d]))
    assert merged[0] == merged[1] == merged[2]
    assert merged[0][0][0][:3] == ["r00", "r01", "r02"], "equal distances: the earlier record first"
