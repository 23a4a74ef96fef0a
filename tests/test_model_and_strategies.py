"""The oracle and the strategies, checked against themselves and against a real release's capabilities."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from pytest_chroma_compat.engine import capabilities
from pytest_chroma_compat.roundtrip import strategies
from pytest_chroma_compat.roundtrip.model import Op, StoreModel, match_document, match_where

from .conftest import NEW, OLD

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")


@given(strategies.collection_names())
def test_collection_names_follow_every_release_rule(name):
    assert NAME_RULE.match(name) and ".." not in name


def test_where_semantics_are_complements():
    meta = [{"k": 1}, {"k": 2}, {"j": 1}, None]
    eq = [match_where(m, {"k": {"$eq": 1}}) for m in meta]
    ne = [match_where(m, {"k": {"$ne": 1}}) for m in meta]
    assert eq == [True, False, False, False] and ne == [not x for x in eq]
    assert [match_where(m, {"k": {"$in": [1, 2]}}) for m in meta] == [True, True, False, False]
    assert match_where({"k": True}, {"k": {"$eq": 1}}) is False  # a bool is not an int
    assert match_where({"k": 1}, {"$or": [{"k": 2}, {"k": {"$gte": 1}}]})
    assert match_document(None, {"$not_contains": "x"}) and not match_document(None, {"$contains": "x"})


def test_model_merges_or_replaces_metadata_as_measured():
    ops = [
        Op("create", "col"),
        Op("add", "col", ["a"], np.ones((1, 2), np.float32), metadatas=[{"x": 1, "y": 2}]),
        Op("update", "col", ["a"], metadatas=[{"x": 3}]),
    ]
    assert StoreModel.from_ops(ops, merge_updates=True).collections["col"].records["a"].metadata == {"x": 3, "y": 2}
    assert StoreModel.from_ops(ops, merge_updates=False).collections["col"].records["a"].metadata == {"x": 3}


@pytest.fixture(scope="module")
def measured(chroma_releases):
    return {v: capabilities.measure(chroma_releases.get(v)) for v in (OLD, NEW)}


def test_capabilities_are_measured_per_release(measured):
    old, new = measured[OLD], measured[NEW]
    assert {"str", "int", "float", "bool"} <= old.metadata_types
    assert "list_str" in new.metadata_types - old.metadata_types  # lists arrived in 1.x
    assert old.merges_metadata_updates and new.merges_metadata_updates


def test_programs_only_contain_operations_a_release_must_accept(measured):
    caps = measured[NEW]

    @settings(max_examples=60, suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategies.programs(caps))
    def check(program):
        model = StoreModel(program.merge_updates)
        for op in program.ops:
            if op.kind in ("add", "update", "upsert", "delete"):
                assert op.collection in model.collections
                existing = model.collections[op.collection].records
                assert len(set(op.ids)) == len(op.ids)
                if op.kind == "add":
                    assert not set(op.ids) & set(existing)
                if op.kind in ("update", "delete"):
                    assert set(op.ids) <= set(existing)
                if op.kind == "update" and op.documents is not None:
                    assert op.embeddings is not None
                for meta in op.metadatas or []:
                    assert meta and all(not k.startswith("$") for k in meta)
                if op.embeddings is not None and model.collections[op.collection].space == "cosine":
                    assert (np.linalg.norm(op.embeddings, axis=1) > 0).all()
            model.apply(op)

    check()


def test_programs_use_list_metadata_only_where_the_writer_keeps_it(measured):
    @settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategies.programs(measured[OLD]))
    def check(program):
        for op in program.ops:
            for meta in op.metadatas or []:
                assert not any(isinstance(v, list) for v in meta.values())

    check()
