"""The query check judges each release against the data: a vector index damaged in the store is found.

The store is written by 0.6.3 and its HNSW index damaged on disk
(``fixtures/damaged_index.py``: half the records' graph links cut); 1.5.9 reads
the same index files in place and loses the same records, so the two releases
agree and only the data shows the defect. Each test hashes the source itself
before and after: validate never touches it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fixtures import damaged_index
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.roundtrip.model import distances
from pytest_chroma_compat.snapshot import tree_hash
from pytest_chroma_compat.snapshot.query_check import (
    LID_MAX,
    Queries,
    Side,
    allowed_lost,
    index_parameters,
    intrinsic_dimension,
    judgeable,
    verdict,
)
from pytest_chroma_compat.snapshot.validate import validate

from .conftest import MID, NEW, run_cli


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("query-stores")
    with Release(MID) as release:
        healthy = damaged_index.two_collections(release, root / "healthy")
    damaged = Path(shutil.copytree(healthy, root / "damaged"))
    for name in ("notes", "noise"):
        assert damaged_index.header(damaged_index.vector_segment(damaged, name))["count"] == 1000  # on disk
        damaged_index.unreachable(damaged, name, 0.5)
    return {"healthy": healthy, "damaged": damaged}


def _query(checks: list, collection: str):
    return next(c for c in checks if c["name"] == "query" and c["collection"] == collection)


def test_index_damaged_in_the_store_is_not_safe(stores, tmp_path):
    """Both releases lose the same records: NOT safe, "pre-existing", with the numbers that show it."""
    before = tree_hash(stores["damaged"])
    proc = run_cli(
        "validate",
        str(stores["damaged"]),
        "--to",
        NEW,
        "--json",
        "-",
        "--no-contracts",
        "--workdir",
        str(tmp_path / "work"),
    )
    assert tree_hash(stores["damaged"]) == before
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    failed = [(c["name"], c["collection"]) for c in report["checks"] if c["status"] in ("fail", "pre-existing")]
    assert failed == [("query", "notes")], failed
    notes = _query(report["checks"], "notes")
    ev = notes["evidence"]
    assert notes["status"] == "pre-existing" and ev["judged against the data"] is True, notes["detail"]
    # the same index files: 1.5.9 loses what 0.6.3 loses (0.6.3 may also raise for a vector that cannot
    # reach 10 records, where 1.5.9 answers with fewer: never more lost on the target)
    assert ev["source lost"] >= ev["target lost"] > ev["lost allowed"] == allowed_lost(50)
    assert ev["intrinsic dimension"] < LID_MAX and ev["target queries raised"] == 0
    assert ev["target self-hit"] < 0.8 and ev["target recall"] < 0.8
    for words in ("recall 0.", "find themselves", "never returned", "both releases (0.6.3, 1.5.9)"):
        assert words in notes["detail"], notes["detail"]
    assert "query in 'notes'" in report["summary"]
    # random 384-d vectors: a healthy index loses records there too, so losing them is not called a defect
    noise = _query(report["checks"], "noise")
    assert noise["status"] == "pass" and noise["evidence"]["judged against the data"] is False
    assert noise["evidence"]["target lost"] > noise["evidence"]["lost allowed"]
    assert noise["evidence"]["intrinsic dimension"] > LID_MAX and "intrinsic dimension" in noise["detail"]


@pytest.mark.slow
def test_allow_pre_existing_lets_the_damaged_index_through(stores, tmp_path):
    result = validate(str(stores["damaged"]), NEW, workdir=tmp_path / "work", contracts=False, allow_pre_existing=True)
    assert result.exit_code == 0, result.summary
    assert [(c.name, c.collection, c.status) for c in result.allowed] == [("query", "notes", "pre-existing")]
    assert "pre-existing defect(s) in the store allowed" in result.summary


def test_healthy_index_passes_judged_against_the_data(stores, tmp_path):
    before = tree_hash(stores["healthy"])
    result = validate(str(stores["healthy"]), NEW, workdir=tmp_path / "work", contracts=False)
    assert tree_hash(stores["healthy"]) == before
    assert result.exit_code == 0, result.summary
    notes = next(c for c in result.checks if c.name == "query" and c.collection == "notes")
    assert notes.status == "pass" and "judged against the data" in notes.detail
    ev = notes.evidence
    assert ev["judged against the data"] is True and ev["queries"] == 50
    assert ev["source lost"] == ev["target lost"] == 0 and ev["target self-hit"] == 1.0
    assert ev["target recall"] >= 0.9


# -- the rule itself, on graded answers -------------------------------------------------------------------


def _side(recall: float = 1.0, lost: int = 0, error: str | None = None, wrong: int = 0, raised: int = 0) -> Side:
    """Graded answers as ``grade`` leaves them (a side that raised for every query recalls nothing)."""
    raised_error = "error: RuntimeError: Cannot return the results in a contigious 2D array" if raised else None
    return Side(
        recall=0.0 if error else recall,
        error=error,
        missed=list(range(lost)),
        lost=list(range(lost)),
        wrong=[{"id": str(i)} for i in range(wrong)],
        raised=list(range(raised)),
        raised_error=raised_error,
    )


@pytest.mark.parametrize(
    "source,target,judged,status",
    [
        (_side(), _side(), True, "pass"),
        (_side(0.5, lost=20), _side(0.5, lost=20), True, "pre-existing"),  # damaged in the store
        (_side(0.5, lost=20), _side(0.5, lost=20), False, "pass"),  # data where a healthy index loses as many
        (_side(), _side(0.5, lost=20), True, "fail"),  # the target alone loses records
        (_side(0.6, lost=6), _side(0.3, lost=30), True, "fail"),  # both lose, the target far more
        (_side(0.5, lost=20), _side(), True, "pass"),  # the target answers right (e.g. a rebuilt index)
        (_side(0.95), _side(0.7), False, "fail"),  # recall dropped
        (_side(error="error: boom"), _side(error="error: boom"), True, "pre-existing"),
        (_side(), _side(error="error: boom"), True, "fail"),
        (_side(wrong=2), _side(wrong=2), False, "pre-existing"),
        (_side(), _side(wrong=1), False, "fail"),
        (_side(0.3, lost=30, raised=10), _side(0.5, lost=25), True, "pre-existing"),  # 0.6.3 raises, 1.5.9 answers less
        (_side(0.3, lost=30, raised=10), _side(0.5, lost=25), False, "pass"),
        (_side(), _side(0.8, lost=10, raised=10), False, "fail"),  # the target raises where the source answered
        (_side(error="error: boom"), _side(0.5, raised=2, lost=2), True, "pre-existing"),
    ],
)
def test_verdict(source, target, judged, status):
    assert verdict(source, target, judged, allowed_lost(50), 50, 250)[0] == status


def _queries(vectors: np.ndarray, space: str = "l2", q: int = 50) -> Queries:
    """Sample queries with their exact neighbours, as the source's worker computes them."""
    queries = Queries([f"r{i}" for i in range(q)], vectors[:q].astype(np.float64), space)
    for j in range(q):
        d = distances(vectors.astype(np.float64), queries.vectors[j], space)
        order = np.argsort(d, kind="stable")[:20]
        queries.best_d[j], queries.best_ids[j] = d[order], [f"r{i}" for i in order]
    return queries


def test_intrinsic_dimension_tells_embedding_like_data_from_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(2000, 384))
    low = rng.normal(size=(2000, 6)) @ rng.normal(size=(6, 384))
    assert intrinsic_dimension(_queries(noise)) > LID_MAX > 2 * intrinsic_dimension(_queries(low))
    assert intrinsic_dimension(_queries(noise, "ip")) is None
    defaults = index_parameters(None)
    assert judgeable(_queries(low), defaults)[1] is None
    assert "intrinsic dimension" in judgeable(_queries(noise), defaults)[1]
    weak = index_parameters({"hnsw:M": 4})
    assert weak == {"M": 4, "construction_ef": 100} and "M 4 < 16" in judgeable(_queries(low), weak)[1]
    assert index_parameters({}, {"hnsw": {"max_neighbors": 8, "ef_construction": 200}}) == {
        "M": 8,
        "construction_ef": 200,
    }
    # 0.5-0.6 write the defaults into the configuration JSON and build with the metadata's: the weakest counts
    assert index_parameters({"hnsw:M": 4}, {"hnsw_configuration": {"M": 16, "ef_construction": 100}})["M"] == 4
    assert [allowed_lost(n) for n in (5, 50, 200)] == [1, 4, 8]
