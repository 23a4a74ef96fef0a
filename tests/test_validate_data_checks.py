"""Data checks: each contract about stored data (table.toml ``data_check``), asked of the store's own values.

The headline case is the README's finding 2: a 0.6.3 store holding ordinary
``random.random()`` floats, opened in place by 1.5.9, where ``$eq`` with a stored
value misses some of its own records (measured ~12%), and ``$gte`` some too. The
fixed filters of the ``filters`` check never ask that; the data check must, on
every float key, and fail naming the key, the operator and a value. The same
store validated for its own release is safe. Stores are written by real releases.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat.contracts import measure
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.engine.worker import filter_oracle
from pytest_chroma_compat.snapshot import data_checks
from pytest_chroma_compat.snapshot.validate import validate

from .conftest import MID, NEW, run_cli

RECORDS = 300


def _float_store(release: Release, path: Path) -> Path:
    """A few hundred ordinary float values, as an application writes them (and a string key)."""
    rnd = random.Random(7)
    with release.persistent(path) as client:
        col = client.create_collection("items")
        col.add(
            ids=[f"r{i:03d}" for i in range(RECORDS)],
            embeddings=np.random.default_rng(7).normal(size=(RECORDS, 4)).astype(np.float32),
            metadatas=[{"score": rnd.random(), "shop": rnd.choice(["acme", "bobs", "cafe"])} for _ in range(RECORDS)],
        )
    return path


@pytest.fixture(scope="module")
def float_store(tmp_path_factory) -> Path:
    with Release(MID) as release:
        return _float_store(release, tmp_path_factory.mktemp("floats") / "store")


def _run(store: Path, to: str, tmp_path: Path, **kw):
    result = validate(str(store), to, workdir=tmp_path / "work", contracts=False, **kw)
    assert not any((tmp_path / "work").glob("validate-*")), "private copies were left behind"
    return result


def _check(result, name: str, collection: str = "items"):
    return next(c for c in result.checks if c.name == name and c.collection == collection)


# -- on stores written by real releases ---------------------------------------------------------------------


def test_float_store_upgraded_in_place_fails_naming_key_operator_and_value(float_store, tmp_path):
    result = _run(float_store, NEW, tmp_path)
    assert result.exit_code == 1, result.summary
    check = _check(result, "data:float-metadata-exact")
    assert check.status == "fail", check.detail
    assert "key 'score'" in check.detail and "operator $" in check.detail and "value 0." in check.detail
    example = check.evidence["examples"][0]
    ((op, value),) = example["where"]["score"].items()
    assert op in ("$eq", "$gte", "$lte") and isinstance(value, float)
    assert example["source"] != example["target"]  # 0.6.3 answers it as the data says, 1.5.9 does not
    # the values tried per key are in the report, with the budget
    tried = check.evidence["values tried per key"]["score"]
    assert tried["values"] == data_checks.DEFAULT_BUDGET and tried["sampled"] is True
    assert f"values tried per key: score {data_checks.DEFAULT_BUDGET}" in check.detail
    # strings: 0.6.3 refuses $contains in where, 1.5.9 answers: shown, but a data check alone does not fail on it
    assert _check(result, "data:where-contains-metadata").status == "info"
    assert result.failed[0].name == "data:float-metadata-exact"


def test_same_float_store_for_its_own_release_is_safe(float_store, tmp_path):
    result = _run(float_store, MID, tmp_path)
    assert result.exit_code == 0, result.summary
    check = _check(result, "data:float-metadata-exact")
    assert check.status == "pass" and "score 64" in check.detail


@pytest.mark.slow
def test_cli_float_store_exit_1_and_0(float_store, tmp_path):
    bad = run_cli("validate", str(float_store), "--to", NEW, "--no-contracts", "--quiet", "--workdir", str(tmp_path))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "data:float-metadata-exact" in bad.stdout and "key 'score'" in bad.stdout
    good = run_cli(
        "validate",
        str(float_store),
        "--to",
        MID,
        "--no-contracts",
        "--quiet",
        "--workdir",
        str(tmp_path),
        "--data-budget",
        "8",
    )
    assert good.returncode == 0, good.stdout + good.stderr
    refused = run_cli("validate", str(float_store), "--to", MID, "--data-budget", "-1")
    assert refused.returncode == 2 and "--data-budget" in refused.stderr


# -- the link lives in the contract table -------------------------------------------------------------------


def test_data_checks_come_from_the_contract_table():
    checks = {dc.contract_id: dc for dc in data_checks.table_checks()}
    assert set(checks) >= {"float-metadata-exact", "where-contains-metadata", "metadata-value-types"}
    assert checks["float-metadata-exact"].operators == ("$eq", "$gte", "$lte")
    for dc in checks.values():  # every row names types the sampler knows and operators the oracle judges
        assert set(dc.types) <= set(data_checks.TYPES)
        assert measure.contract(dc.contract_id).data_check.get("operators", []) == list(dc.operators)
    assert checks["get-order-internal-ids"].kind == "order"  # ids and ordering: no values, order_check.py


def test_a_new_row_adds_a_check_without_code(monkeypatch):
    table = measure.load_table()
    extra = measure.Contract(
        "ne-on-ints", "t", "", "", "", "", "c", data_check={"types": ["int"], "operators": ["$ne"]}
    )
    monkeypatch.setattr(measure, "load_table", lambda: table + (extra,))
    checks = data_checks.table_checks()
    assert checks[-1].contract_id == "ne-on-ints"
    plan = data_checks.plan(
        [checks[-1]], {"ne-on-ints": {"n": {"values": [1, 2, 3], "sampled": False}}}, budget={"ne-on-ints": 8}, count=3
    )
    assert [a.clause() for a in plan.asked] == [{"where": {"n": {"$ne": v}}} for v in (1, 2, 3)]


# -- the parts, without a release ---------------------------------------------------------------------------


def test_sampler_keeps_every_distinct_value_up_to_the_budget_then_a_bounded_sample():
    s = filter_oracle.ValueSampler((float,), budget=5, seed=0)
    s.update([{"x": 0.5}, {"x": 0.5}, {"x": 1}, {"x": True}, {"x": 0.25}])
    assert s.result() == {"x": {"values": [0.25, 0.5], "sampled": False}}  # ints and bools are not floats
    s.update([{"x": i / 7} for i in range(1000)])
    got = s.result()["x"]
    assert len(got["values"]) == 5 and got["sampled"] is True
    many = filter_oracle.ValueSampler((str,), budget=2, max_keys=3)
    many.update([{f"k{i}": "v" for i in range(10)}])
    assert len(many.result()) == 3


def test_wide_operators_get_fewer_values_on_a_large_store():
    dc = data_checks.DataCheck("float-metadata-exact", "t", ("float",), ("$eq", "$gte"))
    sampled = {dc.contract_id: {"x": {"values": [i / 10 for i in range(64)], "sampled": False}}}
    small = data_checks.plan([dc], sampled, budget={dc.contract_id: 64}, count=200)
    large = data_checks.plan([dc], sampled, budget={dc.contract_id: 64}, count=10_000_000)
    assert sum(a.op == "$gte" for a in small.asked) == 64
    assert sum(a.op == "$gte" for a in large.asked) == data_checks.WIDE_MIN
    assert sum(a.op == "$eq" for a in large.asked) == 64
    assert large.tried[dc.contract_id]["x"]["wide values"] == data_checks.WIDE_MIN


def test_budget_zero_keeps_only_what_the_upgrade_crosses():
    checks = data_checks.table_checks()
    chosen, budget = data_checks.budgets(checks, 0, {"float-metadata-exact"})
    assert [c.contract_id for c in chosen] == ["float-metadata-exact"]
    assert budget == {"float-metadata-exact": data_checks.MANDATORY_BUDGET}
    chosen, _ = data_checks.budgets(checks, 0, None)  # crossing not measured (--no-contracts): all of them
    assert len(chosen) == len(checks)


def _digest(ids: list[str]) -> dict:
    return {"count": len(ids), "digest": f"{filter_oracle.id_sum(ids):016x}", "sample": sorted(ids)[:10]}


def test_outcomes_judge_each_release_against_the_data():
    e = {**_digest(["a"]), "uncertain": 0, "uncertain_digest": "0" * 16}
    right, wrong, empty = _digest(["a"]), _digest(["a", "b"]), _digest([])
    assert data_checks.outcome(right, empty, e) == "wrong"
    assert data_checks.outcome(wrong, wrong, e) == "pre-existing"
    assert data_checks.outcome(wrong, right, e) == "fixed"
    assert data_checks.outcome(None, right, e) == "right"
    assert data_checks.outcome("error: ValueError", empty, e) == "now silently matches nothing"
    assert data_checks.outcome(right, "error: ValueError", e) == "now raises"
    assert data_checks.outcome("error: x", "error: y", e) == "refused by both"
    # records whose matching releases differ on: the answer with or without them is right
    e2 = {**_digest(["a"]), "uncertain": 1, "uncertain_digest": f"{filter_oracle.id_sum(['b']):016x}"}
    # (two releases that put them on different sides changed what the filter returns)
    assert data_checks.outcome(wrong, wrong, e2) == "right"
    assert data_checks.outcome(right, wrong, e2) == "changed"


def test_the_oracle_reads_filters_as_the_data_means_them():
    m = filter_oracle.where_matches
    assert m({"score": {"$eq": 0.1}}, {"score": 0.1}) is True
    assert m({"score": {"$gte": 0.1}}, {"score": 0.1}) is True
    assert m({"score": {"$eq": 1.5}}, {"score": 1}) is None  # 1.x truncates the float asked for
    assert m({"shop": {"$contains": "cm"}}, {"shop": "acme"}) is None  # refused by 0.x-1.4, nothing on 1.5
    assert m({"tags": {"$contains": "x"}}, {"tags": ["x", "y"]}) is True  # a list: membership
    assert m({"shop": {"$not_contains": "cm"}}, {}) is None  # a record lacking the key: changed at 0.5.12
    assert (
        m({"$and": [{"shop": {"$contains": "a"}}, {"score": {"$gte": 0.5}}]}, {"shop": "acme", "score": 0.2}) is False
    )  # False wins over unknown
    assert m({"$or": [{"shop": "acme"}, {"score": {"$gte": 0.5}}]}, {"shop": "acme"}) is True
    assert m({"flag": True}, {"flag": 1}) is False
    assert filter_oracle.document_matches({"$contains": "ab"}, None) is False


def test_eq_lookups_give_what_evaluating_each_filter_gives():
    """The indexed ``$eq`` of ``DataExpected`` against the per-record evaluator, on awkward values."""
    rng = random.Random(3)
    pool = [0, 1, 2, -1, 0.0, 1.0, 1.5, -0.5, 2.7, True, False, "1", "1.0", "a", "", [1, 2], 10**20, 0.1 + 0.2]
    filters = [{"where": {"k": {"$eq": v}}, "where_document": None} for v in pool if not isinstance(v, list)]
    filters += [{"where": {"k": v}, "where_document": None} for v in (1, "a", 2.7)]  # implicit $eq
    # one condition on one key: evaluated per record, a record lacking the key answered without asking
    filters += [
        {"where": {"k": {op: v}}, "where_document": None}
        for op, v in (
            ("$gte", 1),
            ("$lt", 1.5),
            ("$ne", 1),
            ("$nin", [1, "a"]),
            ("$in", [2.7, True]),
            ("$contains", 1),
            ("$contains", "a"),
            ("$not_contains", "a"),
        )
    ]
    filters += [{"where": {"$or": [{"k": 1}, {"other": 1}]}, "where_document": None}]  # the general path
    ids = [f"r{i:03d}" for i in range(300)]
    metas = [({"k": rng.choice(pool)} if rng.random() > 0.1 else {"other": 1}) for _ in ids]
    fast = filter_oracle.DataExpected(filters)
    fast.update(ids[:150], None, metas[:150])
    fast.update(ids[150:], None, metas[150:])
    for f, got in zip(filters, fast.result()):
        matched = [i for i, m in zip(ids, metas) if filter_oracle.record_matches(f["where"], None, None, m) is True]
        unsure = [i for i, m in zip(ids, metas) if filter_oracle.record_matches(f["where"], None, None, m) is None]
        assert (got["count"], got["uncertain"]) == (len(matched), len(unsure)), f
        assert got["digest"] == f"{filter_oracle.id_sum(matched):016x}", f
        assert got["uncertain_digest"] == f"{filter_oracle.id_sum(unsure):016x}", f
        assert got["sample"] == sorted(matched)[: filter_oracle.SAMPLE]


# awkward stored values and asked values: types that compare equal, edges within re-rounding distance, lists
AWKWARD = [0, 1, 2, -1, 1.0, 1.5, 0.3, 2.0000001, 1e6, 1e6 + 0.5, 10**18, True, False, "1", "a", "1.0", "", None]
AWKWARD += [[1, 2], ["a"], [], float("nan"), 7.25, "x y", {"nested": 1}]
OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$not_contains", "$regex"]


def test_each_condition_taken_apart_once_answers_as_evaluating_it():
    """``DataExpected`` evaluates one condition per key per record with the condition taken apart once
    (``_present_condition``): the same answer as ``_condition`` for every operator, value and stored value."""
    for op in OPS:
        for want in [*AWKWARD, [1, "a"], [True, 2.0]]:
            compiled = filter_oracle._present_condition(op, want)
            for have in AWKWARD:
                expected, got = _answer(filter_oracle._condition, op, want, True, have), _answer(compiled, have)
                assert got == expected, (op, want, have, got, expected)


def _answer(fn, *args):
    """What ``fn`` answers, or the type of what it raises (an int asked with NaN raises, as it always did)."""
    try:
        return fn(*args)
    except (ValueError, OverflowError) as exc:
        return type(exc)


def test_data_expected_on_many_pages_is_the_record_by_record_answer():
    """Every path of ``DataExpected`` (looked up, one condition, documents, general) against ``record_matches``
    record by record: counts, digests (each id hashed once per page), the smallest ids."""
    rng = random.Random(7)
    keys, texts = ["k", "s", "l"], ["ab", "x y", "zz", ""]
    filters = []
    for _ in range(120):
        kind, key, op, want = rng.random(), rng.choice(keys), rng.choice(OPS[:10]), rng.choice(AWKWARD[:20])
        if op in ("$in", "$nin"):
            want = [rng.choice(AWKWARD[:20]), rng.choice(AWKWARD[:20])]
        if kind < 0.6:
            filters.append({"where": {key: {op: want}}, "where_document": None})
        elif kind < 0.7:
            filters.append({"where": {key: want}, "where_document": None})
        elif kind < 0.9:
            filters.append(
                {"where": None, "where_document": {rng.choice(["$contains", "$not_contains"]): rng.choice(texts)}}
            )
        else:
            filters.append(
                {"where": {"$and": [{key: {op: want}}, {"k": {"$gt": 1}}]}, "where_document": {"$contains": "ab"}}
            )
    oracle = filter_oracle.DataExpected(filters)
    ids, docs, metas = [], [], []
    for page in range(4):
        p_ids = [f"id{page}-{i:04d}" for i in range(150)]
        p_docs = [rng.choice([None, "abc", "x yz", "zz top", 5]) for _ in p_ids]
        p_metas = [
            rng.choice([None, {}, {k: rng.choice(AWKWARD[:20]) for k in rng.sample(keys, rng.randrange(4))}])
            for _ in p_ids
        ]
        oracle.update(p_ids, p_docs, p_metas)
        ids, docs, metas = ids + p_ids, docs + p_docs, metas + p_metas
    for f, got in zip(filters, oracle.result()):
        hits = [filter_oracle.record_matches(f["where"], f["where_document"], d, m) for d, m in zip(docs, metas)]
        matched = [i for i, h in zip(ids, hits) if h is True]
        unsure = [i for i, h in zip(ids, hits) if h is None]
        assert (got["count"], got["uncertain"]) == (len(matched), len(unsure)), f
        assert got["digest"] == f"{filter_oracle.id_sum(matched):016x}", f
        assert got["uncertain_digest"] == f"{filter_oracle.id_sum(unsure):016x}", f
        assert got["sample"] == sorted(matched)[: filter_oracle.SAMPLE], f


def test_picked_filters_taken_apart_once_answer_as_matches():
    """The compare stream's filters (``pick``) are evaluated on every page with their clause taken apart once
    (``_matcher``): the same answers as ``matches``; word starts are found as the character scan found them."""
    rng = random.Random(5)
    for _ in range(40):
        metas = [
            {k: rng.choice(AWKWARD[:18]) for k in rng.sample(["a", "b", "c"], rng.randrange(4))} for _ in range(80)
        ]
        docs = [
            rng.choice(["alpha beta gamma", "delta  epsilon zeta eta theta iota kappa", " lead", "x", None])
            for _ in range(80)
        ]
        for clause in filter_oracle.pick(metas, [d for d in docs if isinstance(d, str)]):
            match = filter_oracle._matcher(clause)
            assert [match(d, m) for d, m in zip(docs, metas)] == [
                filter_oracle.matches(clause, d, m) for d, m in zip(docs, metas)
            ]
    for doc in [
        "",
        " ",
        "a",
        "  ab cd  ef",
        "one two three four five six seven eight nine ten",
        "tab\tsep word\nline z",
    ]:
        starts = [i for i in range(len(doc)) if doc[i] != " " and (i == 0 or doc[i - 1] == " ")][
            : filter_oracle.SLICE_STARTS
        ]
        texts = [doc[i : i + n].strip() for n in filter_oracle.SLICE_LENGTHS for i in starts]
        want = list(dict.fromkeys(t for t in texts if len(t) >= 6 and all(c in filter_oracle.SAFE_TEXT for c in t)))
        assert filter_oracle._slices(doc) == want, doc
