"""Blame where it belongs in the round trip (issue 13): a refusal by the old release is a finding about
that release, a failure that does not reproduce on fresh workers is flaky and decides nothing, a
difference the target shows on a store it wrote itself is its own defect, and the report counts
examples and shrink steps apart and says what each passing invariant established."""

import numpy as np
import pytest

from pytest_chroma_compat.roundtrip import known_shapes, pair
from pytest_chroma_compat.roundtrip.invariants import Outcome
from pytest_chroma_compat.roundtrip.matrix import report as render
from pytest_chroma_compat.roundtrip.model import Op
from pytest_chroma_compat.roundtrip.strategies import Probes, Program

from .conftest import NEW, OLD, run_cli

LEGACY = "0.3.29"


def _vectors(*rows):
    return np.asarray(rows, dtype=np.float32)


def test_an_old_release_refusal_is_a_note_not_a_failure():
    """Measured: 0.3.29 refuses ``upsert`` of a new id holding a control character ("Could not find 1
    items for update") after storing the record anyway, and a later ``upsert`` of the same id leaves a
    duplicate that 0.4.24 refuses on import; the example goes on without that op and passes."""
    ops = [
        Op("create", "docs", metadata={"hnsw:space": "l2"}),
        Op("add", "docs", ["a"], _vectors([1.0, 0.0]), ["one"]),
        Op("upsert", "docs", ["\x85new"], _vectors([0.0, 1.0]), ["two"]),
        Op("upsert", "docs", ["a", "\x85new"], _vectors([1.0, 1.0], [0.5, 0.5])),
    ]
    probes = Probes([], [{"collection": "docs", "vector": _vectors([0.0, 1.0])[0], "k": 2}])
    with pair.PairRunner(LEGACY, OLD) as r:
        rep = r.run_case(pair.Case(LEGACY, OLD, "export-import", Program(ops, False), probes))
    assert rep.ok, rep.first_failure()
    refusals = [n for n in rep.notes if n.startswith(f"chromadb {LEGACY} refused a generated upsert")]
    assert refusals and all("Could not find" in n for n in refusals), rep.notes
    held = {o.name for o in rep.outcomes if o.status == "pass"}
    assert {"ids", "count", "query", "writable"} <= held


def test_a_defect_the_target_shows_on_its_own_store_is_not_blamed_on_the_upgrade():
    """Measured: 0.4.24's full-text index misses ``$contains`` of the one character U+0800, on a store
    written by 0.3.29 and exported, and equally on a store 0.4.24 wrote itself."""
    ops = [Op("create", "a0a", metadata={"hnsw:space": "l2"}), Op("add", "a0a", ["0"], _vectors([1.0]), ["\u0800"])]
    probes = Probes([{"collection": "a0a", "where": None, "where_document": {"$contains": "\u0800"}}], [])
    with pair.PairRunner(LEGACY, OLD) as r:
        rep = r.run_case(pair.Case(LEGACY, OLD, "export-import", Program(ops, False), probes))
    assert rep.ok, rep.first_failure()
    defect = next(o for o in rep.outcomes if o.name == "filters")
    assert defect.status == "release-defect" and f"chromadb {OLD} answers the same on a store it wrote" in defect.detail


@pytest.fixture(scope="module")
def real_outcomes():
    """A real failure (0.4.24's orphaned full-text row breaks writes on 1.5.9) and a real pass."""
    failing = [
        Op("create", "abc"),
        Op("add", "abc", ["a"], np.zeros((1, 2), np.float32), ["x"]),
        Op("delete", "abc", ["a"]),
    ]
    passing = failing[:2]
    with pair.PairRunner(OLD, NEW) as r:
        bad = r.run_case(pair.Case(OLD, NEW, "in-place", Program(failing), Probes([], [])))
        good = r.run_case(pair.Case(OLD, NEW, "in-place", Program(passing), Probes([], [])))
    assert not bad.ok and good.ok, (bad.first_failure(), good.first_failure())
    return bad, good


def _copy(rep):
    out = pair.PathReport(rep.old, rep.new, rep.path, notes=list(rep.notes))
    out.outcomes = [Outcome(o.name, o.status, o.detail, o.evidence) for o in rep.outcomes]
    return out


def test_a_failure_that_does_not_reproduce_is_flaky_and_decides_nothing(real_outcomes):
    bad, good = real_outcomes
    flaky = _copy(bad)
    flaky.settle(good)
    assert flaky.ok and flaky.outcome == "flaky" and flaky.to_dict()["outcome"] == "flaky"
    assert any("did NOT reproduce" in n for n in flaky.notes)
    assert "SAFE (a failure did not reproduce: flaky)" in render.path_text(flaky)
    assert render.pair_json([flaky])["safe"]
    kept = _copy(bad)
    kept.settle(_copy(bad))
    assert not kept.ok and kept.outcome == "unsafe" and "UNSAFE" in render.path_text(kept)


class _LeftoverStateRunner(pair.PairRunner):
    """A worker that has served earlier examples fails every example until it is restarted: what
    leftover state in a worker looks like. Stands in for the real examples to drive Hypothesis."""

    def __init__(self, real, failing, passing):
        self.old, self.new = real.old, real.new
        self.program_strategy, self.probe_strategy = real.program_strategy, real.probe_strategy
        self.old_caps = real.old_caps  # the known shapes run first through run_case too
        self.failing, self.passing, self.used = failing, passing, False
        self.rollbacks = {}  # measured inside the real run_case, which this stand-in replaces
        self._kept = {}  # nor does it keep a store for the rollback (PairRunner.settle_rollbacks)
        self.rollback_seconds = {}

    def run_case(self, case):
        if any(op.collection in known_shapes.COLLECTIONS for op in case.program.ops):
            return _copy(self.passing)  # the known shapes run first; this stand-in is about what Hypothesis draws
        dirty, self.used = self.used, True
        return _copy(self.failing if dirty else self.passing)

    def confirm(self, case):
        self.used = False
        return self.run_case(case)


def test_check_path_counts_examples_and_shrink_steps_apart_and_settles_by_confirmation(real_outcomes, tmp_path):
    bad, good = real_outcomes
    with pair.PairRunner(OLD, NEW) as real:
        rep = pair.check_path(
            _LeftoverStateRunner(real, bad, good), "in-place", examples=5, seed=0, failures_dir=tmp_path
        )
    assert rep.outcome == "flaky" and rep.ok, rep.notes
    assert rep.examples <= 5 and rep.shrink_steps > 0
    assert f"{rep.examples} example(s), {rep.shrink_steps} shrink step(s)" in render.path_text(rep)


def test_replay_says_what_each_passing_invariant_established(tmp_path):
    ops = [
        Op("create", "docs", metadata={"hnsw:space": "l2"}),
        Op("add", "docs", ["a", "b"], _vectors([1.0, 0.0], [0.0, 1.0]), ["one", "two"], [{"n": 1}, {"n": 2}]),
    ]
    case = pair.Case(OLD, OLD, "in-place", Program(ops), Probes([], []))
    proc = run_cli("replay", str(pair.save_case(case, tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("ok ")]
    assert {ln.split()[1] for ln in lines} >= {"count:", "ids:", "documents:", "metadata:"}
    assert all(ln.split(":", 1)[1].strip() for ln in lines), proc.stdout


def test_the_write_check_writes_in_the_dimension_the_query_check_fixed_on_1_0_0(tmp_path):
    """Measured: chromadb 1.0.0 fixes an empty collection's dimension at its first query, so after the
    query check's 1-d vector a 2-d write check failed: an UNSAFE of the harness's own making (the
    published matrix called 0.3.29 -> 1.0.0 unsafe when 0.3.29 had refused the example's only add).
    Without the probes the check still writes 2-d and fails: the test can tell the difference."""
    from pytest_chroma_compat import Release
    from pytest_chroma_compat.roundtrip.invariants import check_writable
    from pytest_chroma_compat.roundtrip.model import StoreModel

    model = StoreModel.from_ops([Op("create", "never-written", metadata={"hnsw:space": "l2"})])
    probes = Probes([], [{"collection": "never-written", "vector": _vectors([1.0])[0], "k": 1}])
    with Release("1.0.0") as release, release.persistent(tmp_path / "store") as client:
        col = client.create_collection("never-written", metadata={"hnsw:space": "l2"})
        col.query(query_embeddings=_vectors([1.0]), n_results=1)
        blind = check_writable(client, model)
        assert blind.status != "pass" and "dimension of 1, got 2" in blind.detail, blind.detail
        seen = check_writable(client, model, probes)
        assert seen.status == "pass", seen.detail
