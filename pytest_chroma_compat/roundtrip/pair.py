"""Written old, read new: one pair of releases, Hypothesis-generated stores, every path.

One old and one new worker serve every example of a pair (a fresh directory
per example), so the cost of an example is the chromadb work, not process
starts and imports. A failing example is shrunk by Hypothesis, then saved as
a case file (JSON + .npy) that ``chroma-compat replay`` reruns exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_chroma_compat.common.errors import ChromaError, CompatError, HarnessFault, WorkerError
from pytest_chroma_compat.engine import cache_dirs, capabilities
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.roundtrip import known_shapes, paths, profiles, rollback, timings
from pytest_chroma_compat.roundtrip.invariants import (
    CHECKS,
    Outcome,
    View,
    check_query,
    check_writable,
    evaluate,
    observe,
    shared_low_recall,
)
from pytest_chroma_compat.roundtrip.model import (
    CollectionModel,
    Op,
    Record,
    StoreModel,
    load_arrays,
    ops_from_json,
    ops_to_json,
    save_arrays,
)
from pytest_chroma_compat.roundtrip.strategies import Probes, Program, programs
from pytest_chroma_compat.roundtrip.strategies import probes as probes_strategy

if TYPE_CHECKING:
    from pytest_chroma_compat.common.progress import Progress

# the detail an unflushed-wal failure gets when a cleanly closed writer fails the same way
CLEAN_WRITER = "also with a cleanly closed writer (in-place): not a log-replay defect"
# status of such an outcome once the in-place report carries the failure
MOVED = "in-place"
# builds of the target's own index a low recall is compared with (see PairRunner._shared_low_recall)
OWN_INDEX_BUILDS = 3


@dataclass
class Case:
    old: str
    new: str
    path: str
    program: Program
    probes: Probes


@dataclass
class PathReport:
    old: str
    new: str
    path: str
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    examples: int = 0
    shrink_steps: int = 0
    seconds: float = 0.0
    case_file: str | None = None
    falsifying: str | None = None
    largest: dict = field(default_factory=lambda: {"embedding_abs": 0.0, "embedding_ulps": 0, "metadata_float_ulps": 0})
    # "possible", "possible (...)", "not possible: <first error line>", or None (not checked): see roundtrip/rollback.py
    rollback: str | None = None
    # fingerprints (12 hex digits) of the examples Hypothesis drew, in order: equal lists, equal runs
    drawn: list[str] = field(default_factory=list)
    # an unflushed-wal failure rerun with a cleanly closed writer, when it failed the same way
    clean_writer: PathReport | None = None
    # the known shape (roundtrip/known_shapes.py) whose case this report's failure is, if any
    shape: str | None = None
    # the policy the run was given (validate's --allow-pre-existing): see ``blocked``
    allow_pre_existing: bool = False

    def absorb(self, other: PathReport) -> None:
        """Keep the largest rounding seen across examples: the report must state it."""
        for o in other.outcomes:
            big = o.evidence.get("largest") if o.name == "embeddings" else None
            if big:
                self.largest["embedding_abs"] = max(self.largest["embedding_abs"], big["max_abs"])
                self.largest["embedding_ulps"] = max(self.largest["embedding_ulps"], big["max_ulps"])
            if o.name == "metadata" and o.evidence.get("max_float_ulps"):
                self.largest["metadata_float_ulps"] = max(
                    self.largest["metadata_float_ulps"], o.evidence["max_float_ulps"]
                )
        defects = [f"{o.name}: {o.detail}" for o in other.outcomes if o.status == "release-defect"]
        for note in other.notes + defects:
            if note not in self.notes:
                self.notes.append(note)
        self.keep_pre_existing(other.pre_existing)

    def keep_pre_existing(self, outcomes: list[Outcome]) -> None:
        """Carry defects the old release already shows on its own store (one per invariant): they are
        reported whatever example found them, and the policy (``--allow-pre-existing``) judges them."""
        have = {o.name for o in self.pre_existing}
        for o in outcomes:
            if o.name not in have:
                self.outcomes.append(Outcome(o.name, o.status, o.detail, o.evidence))
                have.add(o.name)

    def rounding_note(self) -> str:
        big = self.largest
        note = f"largest embedding difference {big['embedding_abs']:.3g} ({big['embedding_ulps']} ULP of float32)"
        if big["metadata_float_ulps"]:
            note += f"; float metadata re-rounded by up to {big['metadata_float_ulps']} ULP of float64"
        return note

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    @property
    def ok(self) -> bool:
        """No failure the upgrade caused (pre-existing defects are judged by policy: see ``blocked``)."""
        return not self.failed

    @property
    def pre_existing(self) -> list[Outcome]:
        """Failures the old release shows on its own store, same data: ``pre-existing in <old>``."""
        return [o for o in self.outcomes if o.status == "pre-existing"]

    def blocked(self, allow_pre_existing: bool | None = None) -> bool:
        """Not safe under the policy: a failure of the upgrade, or (unless allowed, as validate's
        ``--allow-pre-existing``; None: the policy the run was given) a defect already there before it,
        which is still there after it."""
        allow = self.allow_pre_existing if allow_pre_existing is None else allow_pre_existing
        return not self.ok or (bool(self.pre_existing) and not allow)

    @property
    def outcome(self) -> str:
        """``unsafe`` only for a failure that reproduced; ``flaky`` when it did not come back."""
        if self.failed:
            return "unsafe"
        if any(o.status == "flaky" for o in self.outcomes):
            return "flaky"
        if self.pre_existing:
            return "pre-existing"
        return MOVED if any(o.status == MOVED for o in self.outcomes) else "safe"

    def settle(self, again: PathReport) -> None:
        """Judge this failure by a rerun on fresh workers: one that does not come back depends on
        timing or on state earlier examples left in a worker, so it is a note, never the verdict.
        One that comes back is reported with the rerun's outcomes: a fresh worker is what
        ``chroma-compat replay`` and a rerun with the same seed start from, so all three agree."""
        if not again.ok:
            # the evidence reported is the fresh run's: exactly what `chroma-compat replay` computes
            first = [o.name for o in self.failed]
            self.outcomes = again.outcomes
            self.notes.extend(n for n in again.notes if n not in self.notes)
            self.notes.append(
                f"reproduced on fresh workers (failing: {', '.join(o.name for o in again.failed)}); "
                f"the evidence shown is that run's"
            )
            if first != [o.name for o in again.failed]:
                self.notes.append(f"the first run failed on {', '.join(first)} instead")
            return
        self.notes.append(
            "did NOT reproduce on fresh workers: it depends on timing or on state left by earlier "
            "examples; reported as flaky, not counted against the upgrade"
        )
        for o in self.outcomes:
            if o.failed:
                o.status = "flaky"

    def first_failure(self) -> str:
        f = self.failed
        return f"{f[0].name}: {f[0].detail}" if f else ""

    @property
    def one_way(self) -> bool:
        """The old release could not reopen the store after the new one wrote to it."""
        return bool(self.rollback and self.rollback.startswith("not possible"))

    def to_dict(self) -> dict:
        return {
            "old": self.old,
            "new": self.new,
            "path": self.path,
            "ok": self.ok,
            "outcome": self.outcome,
            "pre_existing": [o.name for o in self.pre_existing],
            "examples": self.examples,
            "shrink_steps": self.shrink_steps,
            "seconds": round(self.seconds, 1),
            "notes": self.notes,
            "case_file": self.case_file,
            "largest_difference": self.largest,
            "rollback": self.rollback,
            "falsifying_example": self.falsifying,
            "drawn": self.drawn,
            "clean_writer_case_file": self.clean_writer.case_file if self.clean_writer else None,
            "known_shape": self.shape,
            "invariants": [
                {"name": o.name, "status": o.status, "detail": o.detail, "evidence": _jsonable(o.evidence)}
                for o in self.outcomes
            ],
        }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else repr(o)))


class UnsafeUpgrade(AssertionError):
    """Raised inside the Hypothesis test so the example shrinks."""

    def __init__(self, report: PathReport) -> None:
        super().__init__(f"{report.old} -> {report.new} via {report.path}: {report.first_failure()}")
        self.report = report


class PairRunner:
    """Both releases of a pair, alive across examples."""

    def __init__(self, old: str, new: str, *, batch_size: int = 500) -> None:
        self.old = Release(old)
        self.new = Release(new)
        self.batch_size = batch_size
        self.old_caps = capabilities.measure(self.old)
        self.new_caps = capabilities.measure(self.new)
        self.work = Path(
            tempfile.mkdtemp(
                prefix=f"pair-{os.getpid()}-{self.old.version}-{self.new.version}-", dir=cache_dirs.fast_scratch_dir()
            )
        )
        self._n = 0
        # path -> rollback label, measured once per path (see roundtrip/rollback.py and settle_rollbacks)
        self.rollbacks: dict[str, str] = {}
        # path -> the store its first example upgraded, kept until settle_rollbacks reopens it
        self._kept: dict[str, _Kept] = {}
        self.rollback_seconds: dict[str, float] = {}  # path -> what settle_rollbacks spent on it

    def close(self) -> None:
        self.old.close(wait=False)  # nothing reads their stores again: reaped in the background, both at once
        self.new.close(wait=False)
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> PairRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def legacy(self) -> bool:
        return self.old.env.family == "duckdb-parquet" and self.new.env.family != "duckdb-parquet"

    def applicable_paths(self) -> list[str]:
        out = ["in-place", "export-import"]
        if self.old.env.family != "duckdb-parquet" and all(
            self.old_caps.collection_setting(k) for k in paths.UNFLUSHED_SETTINGS
        ):
            out.append("unflushed-wal")
        return out

    # -- hypothesis strategies for this pair --------------------------------------------------------
    def program_strategy(self, path: str, **limits: Any):
        extra = paths.UNFLUSHED_SETTINGS if path == "unflushed-wal" else None
        return programs(self.old_caps, extra_collection_metadata=extra, **limits)

    def probe_strategy(self, model: StoreModel):
        return probes_strategy(model, self.old_caps.intersect(self.new_caps))

    # -- one example --------------------------------------------------------------------------------
    def run_case(self, case: Case, *, rollback: bool = True) -> PathReport:
        """One example. With ``rollback``, the first example of a path whose store the new release
        opened and wrote to keeps that store: :meth:`settle_rollbacks` measures, at the end of the pair,
        whether the old release can open it again (``report.rollback`` is set once it has)."""
        self._n += 1
        ex = self.work / f"example-{self._n}"
        ex.mkdir()
        report = PathReport(self.old.version, self.new.version, case.path)
        model = case.program.model
        first = rollback and case.path not in self.rollbacks and case.path not in self._kept
        try:
            self._run(case, model, ex, report, "keep" if first else None)
        finally:
            kept = self._kept.get(case.path)
            _remove_example(ex, keep=kept.store if kept is not None else None)
        report.rollback = self.rollbacks.get(case.path)
        return report

    def _run(self, case: Case, model: StoreModel, ex: Path, report: PathReport, rollback_now: str | None) -> None:
        """``rollback_now``: None, ``"keep"`` (keep the upgraded store for :meth:`settle_rollbacks`) or
        ``"now"`` (measure the rollback right after this example, as every example did before it moved)."""
        written = ex / "written"
        refused: list[tuple[Op, ChromaError]] = []
        try:
            applied = paths.write(
                self.old, written, case.program.ops, abandon=case.path == "unflushed-wal", refused=refused
            )
        except (ChromaError, WorkerError) as exc:
            report.outcomes.append(Outcome("write", "error", f"chromadb {self.old.version} rejected the data: {exc}"))
            return
        if refused:
            # the oracle describes what the old release stored, not what it was asked to store
            model = StoreModel.from_ops(applied, case.program.merge_updates)
            report.notes.extend(_refusal_note(self.old.version, op, exc) for op, exc in refused)
        fmt = paths.detect_format(written)
        target = ex / "migrated"
        route = case.path  # in place means in place: a 0.3 store is opened as it is, never rerouted
        legacy = case.path == "in-place" and fmt == "duckdb+parquet" and self.legacy
        try:
            if route == "export-import":
                paths.export_import(self.old, written, self.new, target, self.batch_size)
            else:
                paths.copy_store(written, target)
        except (ChromaError, WorkerError) as exc:
            report.outcomes.append(Outcome("migrate", "error", f"{route} failed: {exc}"))
            return
        try:
            client = self.new.persistent(target)
        except (ChromaError, WorkerError) as exc:
            report.outcomes.append(
                Outcome("open", "error", f"chromadb {self.new.version} could not open the store: {exc}")
            )
            return
        seen: list = []

        def old_view() -> Any:
            """The old release reading its own store (a copy), for attribution; once."""
            if not seen:
                try:
                    with self.old.persistent(paths.copy_store(written, ex / "before")) as old_client:
                        seen.append(observe(old_client, case.probes, self.batch_size))
                except (ChromaError, WorkerError):
                    seen.append(None)
            return seen[0]

        with client:
            new_view = observe(client, case.probes, self.batch_size)
            outcomes = evaluate(model, old_view, new_view, case.probes)
            kept = _kept_otherwise(outcomes, seen[0] if seen else None)
            if kept:
                # the old release did not keep what it accepted: judge the upgrade by what it did keep
                model = _model_of(seen[0], model)
                report.notes.append(
                    f"chromadb {self.old.version} did not keep the data it accepted ({kept} already "
                    f"differ when it reads its own store); judged against what it kept"
                )
                outcomes = evaluate(model, old_view, new_view, case.probes)
            if not new_view.error:
                outcomes.append(check_writable(client, model, case.probes))
        if legacy:
            _legacy_advice(outcomes, report, fmt, self.new.version)
        writes = next((o for o in outcomes if o.name == "writable" and o.failed), None)
        if writes is not None:
            self._attribute_writes(writes, model, case, written, ex / "before-writes")
        if rollback_now == "now" and not new_view.error:
            self.rollbacks[case.path] = self._rollback(route, target)
        elif rollback_now == "keep" and not new_view.error:
            if route == "export-import":
                self.rollbacks[case.path] = rollback.UNTOUCHED
            else:
                self._kept[case.path] = _Kept(target, case, self.new.current_worker())
        if any(o.status == "fail" and o.name in CHECKS for o in outcomes):
            self._attribute(outcomes, case, applied, model, ex / "baseline", new_view)
        report.outcomes.extend(outcomes)

    def settle_rollbacks(self) -> dict[str, str]:
        """Measure the rollback of every path whose first example kept its store; path -> label.

        WHERE THE CHECK IS (moved here from right after each path's first example, issue 27): at the
        end of the pair (:func:`check_pair`; :func:`check_path` and :func:`replay` when run alone).
        The same store (the first example's, upgraded and written to by the new release), the same
        reads (roundtrip/rollback.py), in a fresh worker of the old release, after the new release's
        worker has exited; the same labels, under the same path. Why: stopping the new release and
        starting a fresh old one after the first example cost 1.5-3 s per path; the new release
        stops at the end of the pair anyway.

        The new release's worker that upgraded a kept store is stopped cleanly (and waited for) here,
        or before anything kills it (see :meth:`_keep_clean`). When it died otherwise before that (a
        crash or a timeout in a later example), the store is not what a clean stop leaves: the first
        example is run again with the rollback measured right after it, as before the move. A kept
        store that is gone is reported as not checked, never skipped."""
        if not self._kept:
            return self.rollbacks
        kept, self._kept = self._kept, {}
        backs = {path: Release(self.old.version) for path in kept}
        for back in backs.values():
            back.prestart()  # fresh old-release workers import chromadb while the new one stops
        started = time.monotonic()
        self.new.close()  # as a user stops the new release before pinning the old one back (waited for)
        for path, k in kept.items():
            if k.writer is not None:
                k.writer.close()  # stopped in the background earlier (confirm): wait for its exit
            if k.writer is not None and k.writer.dead != "closed":
                backs[path].close(wait=False)
                self.rollbacks[path] = self._rollback_again(k, k.writer.dead)
            elif not k.store.is_dir():
                backs[path].close(wait=False)
                self.rollbacks[path] = (
                    f"not checked: the store chromadb {self.new.version} upgraded in the first {path} example "
                    f"is gone ({k.store})"
                )
            else:
                self.rollbacks[path] = rollback.reopen(
                    self.old.version, k.store, release=backs[path], wait=False
                ).label()
            shutil.rmtree(k.store.parent, ignore_errors=True)
            self.rollback_seconds[path] = time.monotonic() - started
            started = time.monotonic()
        return self.rollbacks

    def _rollback_again(self, kept: _Kept, how: str | None) -> str:
        """The first example of a path again, with the rollback measured right after it (see settle_rollbacks)."""
        self._n += 1
        ex = self.work / f"example-{self._n}"
        ex.mkdir()
        report = PathReport(self.old.version, self.new.version, kept.case.path)
        try:
            self._run(kept.case, kept.case.program.model, ex, report, "now")
        finally:
            _remove_example(ex)
        return self.rollbacks.get(kept.case.path) or (
            f"not checked (the worker of chromadb {self.new.version} that upgraded the first "
            f"{kept.case.path} example's store stopped uncleanly ({how}), and running that example again "
            f"gave no store it could read)"
        )

    def _keep_clean(self) -> None:
        """Stop, cleanly, a new-release worker that upgraded a kept store, before something kills it."""
        current = self.new.current_worker()
        if current is not None and any(k.writer is current for k in self._kept.values()):
            self.new.close()

    def _rollback(self, route: str, target: Path) -> str:
        """After the new release opened and wrote to the store (the write check), can the old one open it?
        Its worker stops first, as a user stops the new release before pinning the old one back."""
        if route == "export-import":
            return rollback.UNTOUCHED
        back = Release(self.old.version)
        back.prestart()  # a fresh old-release worker imports chromadb while the new one stops
        self.new.close()
        self.new.prestart()  # the next example's new worker starts while the old one reopens
        return rollback.reopen(self.old.version, target, release=back, wait=False).label()

    def _attribute(
        self, outcomes: list[Outcome], case: Case, applied: list[Op], model: StoreModel, where: Path, new_view: View
    ) -> None:
        """A read difference counts against the upgrade only if the target answers correctly on the
        same data written by itself through the same path; if it answers the same wrong way there,
        the defect is the release's own, and the upgrade neither causes nor cures it."""
        view = self._own_view(case, applied, where)
        if view is None:
            return
        for o in outcomes:
            if o.status != "fail" or o.name not in CHECKS:
                continue
            args = (model, view, case.probes) if o.name in ("filters", "query") else (model, view)
            own_ok, _, own_evidence = CHECKS[o.name](*args)
            if own_ok:
                continue
            if repr(own_evidence) == repr(o.evidence):
                o.status = "release-defect"
                o.detail += (
                    f"; chromadb {self.new.version} answers the same on a store it wrote itself: "
                    f"a defect of that release, not of the upgrade"
                )
            elif o.name == "query" and (
                recalls := self._shared_low_recall(model, new_view, view, case, applied, where)
            ):
                # an approximate index finds other neighbours on every build: recall is compared, not ids
                o.status = "release-defect"
                o.detail += (
                    f"; chromadb {self.new.version} answers no better on a store it wrote itself (mean "
                    f"recall {recalls[1]:.2f} there, {recalls[0]:.2f} here): a defect of that release, "
                    f"not of the upgrade"
                )

    def _attribute_writes(self, writes: Outcome, model: StoreModel, case: Case, written: Path, where: Path) -> None:
        """A write that fails after the upgrade counts against it only if the old release writes to its own
        store (a copy, same data) without that failure; failing first the same way, it is ``pre-existing in
        <old>``: a defect of that release the upgrade neither causes nor cures (validate's write check does
        the same on the user's store). Policy (``--allow-pre-existing``) decides whether it fails the run."""
        try:
            with self.old.persistent(paths.copy_store(written, where)) as own:
                before = check_writable(own, model, case.probes)
        except (ChromaError, WorkerError):
            return
        if before.failed and _first_write_failure(before.evidence) == _first_write_failure(writes.evidence):
            writes.status = "pre-existing"
            writes.detail = (
                f"pre-existing in {self.old.version}: {writes.detail}; chromadb {self.old.version} "
                f"fails the same way on its own store before the upgrade, so it is there after it too"
            )
            writes.evidence = {**writes.evidence, "before the upgrade": _jsonable(before.evidence)}

    def _own_view(self, case: Case, applied: list[Op], where: Path) -> View | None:
        """The target's answers on the same data written by itself, or None when it cannot give them (it
        refuses some of the data, or errors): then there is no baseline and the difference stands."""
        refused: list[tuple[Op, ChromaError]] = []
        if case.path == "unflushed-wal":
            self._keep_clean()  # the abandoning write kills the new release's worker
        try:
            paths.write(self.new, where, applied, abandon=case.path == "unflushed-wal", refused=refused)
            if refused:
                return None
            with self.new.persistent(where) as own:
                view = observe(own, case.probes, self.batch_size)
        except (ChromaError, WorkerError):
            return None
        return None if view.error else view

    def _shared_low_recall(
        self, model: StoreModel, new_view: View, view: View, case: Case, applied: list[Op], where: Path
    ) -> tuple[float, float] | None:
        """Low recall compared with the target's own index, over up to ``OWN_INDEX_BUILDS`` builds of it.

        Why several: one build's mean recall is one draw (measured: 1.5.9 with ``hnsw:M`` 2 gave 0.14-0.29
        on its own store, the migrated one 0.18-0.26), so a single comparison blamed the upgrade in about one
        run in ten. The rebuilds run only while the target's own store also answers badly and the migrated
        store answers worse than that build: the release's worst build in a few is its own spread."""
        for build in range(OWN_INDEX_BUILDS):
            if build:
                view = self._own_view(case, applied, where.with_name(f"{where.name}-{build}"))
                if view is None:
                    return None
            recalls = shared_low_recall(model, new_view, view, case.probes)
            if recalls is not None:
                return recalls
            if check_query(model, view, case.probes)[0]:
                return None  # a build of its own that answers well: the difference is the upgrade's
        return None

    def confirm(self, case: Case, *, rollback: bool = True) -> PathReport:
        """Rerun a failing case on fresh workers (see :meth:`PathReport.settle`)."""
        self.old.close(wait=False)  # the rerun writes a fresh directory: they need to be gone, not waited for
        self.new.close(wait=False)
        self.old.prestart()  # both fresh workers start at once
        self.new.prestart()
        return self.run_case(case, rollback=rollback)


@dataclass
class _Kept:
    """A path's first upgraded store, kept for the rollback (see PairRunner.settle_rollbacks)."""

    store: Path
    case: Case
    writer: Any  # the new release's Worker that upgraded it (engine.client.Worker), or None


def _remove_example(ex: Path, keep: Path | None = None) -> None:
    """Remove an example's directory, except ``keep`` (a store kept for the rollback) when it is inside."""
    if keep is None or keep.parent != ex:
        shutil.rmtree(ex, ignore_errors=True)
        return
    for child in ex.iterdir():
        if child != keep:
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


STORED = ("collections", "count", "ids", "documents", "metadata", "embeddings")


def _kept_otherwise(outcomes: list[Outcome], old: Any) -> str:
    """The stored-data invariants the old release already breaks on its own store, if any."""
    if old is None or old.error:
        return ""
    return ", ".join(o.name for o in outcomes if o.status == "pre-existing" and o.name in STORED)


def _model_of(view: Any, model: StoreModel) -> StoreModel:
    """An oracle holding what a release shows of its own store (records, not answers to questions)."""
    out = StoreModel(model.merge_updates)
    for name, seen in view.collections.items():
        dim = model.collections[name].dim if name in model.collections else None
        col = out.collections[name] = CollectionModel(name, seen["metadata"], dim=dim)
        for rid, (emb, doc, meta) in seen["records"].items():
            col.records[rid] = Record(emb, doc, meta)
            col.dim = col.dim or (None if emb is None else len(emb))
    return out


def _first_write_failure(evidence: dict) -> tuple | None:
    """(collection, call, raised or differs) of the first failing call in ``check_writable``'s evidence."""
    for name, probe in (evidence or {}).items():
        if not isinstance(probe, dict):
            continue
        for call in probe.get("calls") or ():
            result = str(call.get("result", "ok"))
            if result != "ok" and not result.startswith("not tried"):
                return name, call.get("call"), result.startswith("raised")
        if probe.get("error"):
            return name, "count before writing", True
    return None


def _legacy_advice(outcomes: list[Outcome], report: PathReport, fmt: str, version: str) -> None:
    """Say what in place does to a 0.3 store, in the failing check itself: the target sees none of it."""
    advice = "in place loses every collection; upgrade it with --path export-import (what chroma-migrate does)"
    report.notes.append(
        f"legacy {fmt} store (chromadb 0.3): chromadb {version} opens it in place without an "
        f"error and reads none of it; {advice}"
    )
    for o in outcomes:
        if o.name == "collections" and o.failed:
            missing = o.evidence.get("missing") or []
            o.detail = (
                f"chromadb {version} opens the 0.3 {fmt} store in place and sees none of its "
                f"{len(missing)} collection(s) ({', '.join(map(repr, missing[:3]))}); {advice}"
            )


def _refusal_note(version: str, op: Op, exc: ChromaError) -> str:
    """One line per kind of refusal, so notes absorbed across examples do not repeat."""
    return (
        f"chromadb {version} refused a generated {op.kind}: {str(exc).splitlines()[0][:200]}; the example "
        f"continued without that op's records (data the old release never stored cannot be lost by the upgrade)"
    )


# -- driving Hypothesis ---------------------------------------------------------------------------


class _HarnessStop(BaseException):
    """Carries a :class:`HarnessFault` out of Hypothesis, which re-raises a BaseException at once
    instead of shrinking it: a timeout or a broken environment says nothing about the data."""

    def __init__(self, fault: HarnessFault) -> None:
        super().__init__(str(fault))
        self.fault = fault


def check_path(
    runner: PairRunner,
    path: str,
    *,
    examples: int | None = None,
    seed: int | None = None,
    profile: str | None = None,
    failures_dir: Path | None = None,
    progress: Progress | None = None,
    max_shrinks: int | None = None,
    allow_pre_existing: bool = False,
) -> PathReport:
    """Run the known shapes, then Hypothesis examples, for one path; the report of the (shrunk) failure,
    or a pass. Hypothesis keeps its files in the cache meanwhile and draws the same from a seed in any
    process (see :func:`profiles.isolated`). ``max_shrinks`` caps the shrinking in runs (default: the
    profile's), never in seconds, so a seeded run with a smaller budget is still reproducible. The
    rollback is measured at its end (:meth:`PairRunner.settle_rollbacks`)."""
    report = _path_report(runner, path, examples, seed, profile, failures_dir, progress, max_shrinks)
    report.allow_pre_existing = allow_pre_existing  # what runs does not depend on it; the verdict does
    _settle_rollbacks(runner, [report])
    return report


def _path_report(
    runner: PairRunner,
    path: str,
    examples: int | None = None,
    seed: int | None = None,
    profile: str | None = None,
    failures_dir: Path | None = None,
    progress: Progress | None = None,
    max_shrinks: int | None = None,
) -> PathReport:
    with profiles.isolated():
        return _check_path(runner, path, examples, seed, profile, failures_dir, progress or _silent, max_shrinks)


def _settle_rollbacks(runner: PairRunner, reports: list[PathReport]) -> None:
    """Measure the rollbacks the paths kept a store for (once, for all of them) and label each report;
    the time each one took is added to its path's seconds (what the matrix plan balances shards by)."""
    labels = runner.settle_rollbacks()
    for report in reports:
        report.seconds += runner.rollback_seconds.pop(report.path, 0.0)
        report.rollback = labels.get(report.path) or (
            rollback.UNTOUCHED
            if report.path == "export-import"
            else f"not checked (chromadb {runner.new.version} never opened and wrote to the store in place)"
        )


def _silent(label: str, done: int, total: int) -> None:
    return None


def _check_path(
    runner: PairRunner,
    path: str,
    examples: int | None,
    seed: int | None,
    profile: str | None,
    failures_dir: Path | None,
    progress: Progress,
    max_shrinks: int | None = None,
) -> PathReport:
    from hypothesis import given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    last: dict[str, Any] = {}
    failed: dict[str, PathReport] = {}
    total = PathReport(runner.old.version, runner.new.version, path)
    started = time.monotonic()
    count = [0]  # generated examples, up to and including the first failure
    shrinks = [0]  # runs after it: Hypothesis shrinking the failure
    seeded = seed is not None
    seconds, runs = profiles.shrink_seconds(profile, seeded), profiles.shrink_runs(profile, max_shrinks)
    planned = profiles.max_examples(profile, examples)
    label = f"{runner.old.version} -> {runner.new.version} {path}"

    @settings(profiles.settings(profile, examples, seeded=seeded))
    @given(st.data())
    def example(data: Any) -> None:
        program = data.draw(runner.program_strategy(path), label="program")
        probes = data.draw(runner.probe_strategy(program.model), label="probes")
        case = Case(runner.old.version, runner.new.version, path, program, probes)
        key = program.fingerprint() + probes.fingerprint()
        if key in failed:
            report = failed[key]
        elif "since" in last and (
            shrinks[0] >= runs or (seconds is not None and time.monotonic() - last["since"] > seconds)
        ):
            # shrink budget spent: nothing new is run, so Hypothesis settles on
            # the smallest failure found so far
            return
        else:
            if "since" in last:
                shrinks[0] += 1
                progress(f"{label} shrinking", shrinks[0], 0)
            else:
                count[0] += 1
                total.drawn.append(key[:12])
            try:
                report = runner.run_case(case)
            except HarnessFault as exc:  # not a failing example: stop now, never shrink a timeout
                raise _HarnessStop(exc) from None
            total.absorb(report)
            if "since" not in last:
                progress(label, count[0], planned)
        if not report.ok:
            failed[key] = report
            last.setdefault("since", time.monotonic())
            last["case"], last["report"] = case, report
            raise UnsafeUpgrade(report)

    known = _known_shapes(runner, path, failures_dir, started, progress, label, total)
    if known is not None:  # a known breakage: the verdict does not wait on what Hypothesis draws
        known.keep_pre_existing(total.pre_existing)
        return known
    ran = known_shapes.applicable(runner.old_caps.metadata_types)
    total.notes.append(f"{len(ran)} known shape(s) ran first: {', '.join(s.name for s in ran)}")

    # one example database entry per pair and path, not one for every pair
    example.hypothesis.inner_test._hypothesis_internal_add_digest = (
        f"{runner.old.version}->{runner.new.version}:{path}".encode()
    )
    if seeded:
        example = hypothesis_seed(seed)(example)
    try:
        example()
    except _HarnessStop as stop:
        raise stop.fault from None
    except UnsafeUpgrade as exc:
        report = last.get("report", exc.report)
        report.falsifying = repr(last["case"].program) if "case" in last else None
        if "case" in last:
            report.case_file = str(save_case(last["case"], failures_dir))
            report.settle(runner.confirm(last["case"]))
            _clean_writer(runner, last["case"], report, failures_dir)
        report.examples, report.shrink_steps, report.drawn = count[0], shrinks[0], total.drawn
        report.seconds = time.monotonic() - started
        report.keep_pre_existing(total.pre_existing)
        return report
    total.examples, total.seconds = count[0], time.monotonic() - started
    held = (
        "every invariant held"
        if not total.pre_existing
        else (
            f"the upgrade caused no failure; pre-existing in {runner.old.version}: "
            f"{', '.join(o.name for o in total.pre_existing)}"
        )
    )
    total.outcomes.append(Outcome("all", "pass", f"{count[0]} example(s), {held}; {total.rounding_note()}"))
    return total


def _known_shapes(
    runner: PairRunner,
    path: str,
    failures_dir: Path | None,
    started: float,
    progress: Progress,
    label: str,
    total: PathReport,
) -> PathReport | None:
    """Run ``known_shapes`` for this path; the report of the first that fails (and reproduces), else None.
    A shape the old release already fails on its own store adds its pre-existing outcomes to ``total``."""
    extra = paths.UNFLUSHED_SETTINGS if path == "unflushed-wal" else {}
    cases = known_shapes.cases(extra, runner.old_caps.merges_metadata_updates, runner.old_caps.metadata_types)
    for i, (shape, program, probes) in enumerate(cases):
        progress(f"{label} known shapes", i, len(cases))
        case = Case(runner.old.version, runner.new.version, path, program, probes)
        report = runner.run_case(case)
        if report.ok:
            for o in report.pre_existing:
                o.detail = f"known shape {shape.name!r}: {o.detail}"
                if not report.case_file:
                    report.case_file = str(save_case(case, failures_dir))
                    total.case_file = total.case_file or report.case_file  # a matrix carries it with the cell
                    total.notes.append(
                        f"known shape {shape.name!r} ({shape.reproduces}) shows a defect pre-existing "
                        f"in {runner.old.version}; reproduce: chroma-compat replay {report.case_file}"
                    )
            total.keep_pre_existing(report.pre_existing)
            continue
        report.falsifying = repr(program)
        report.shape = shape.name
        report.notes.append(f"known shape {shape.name!r} ({shape.reproduces})")
        report.case_file = str(save_case(case, failures_dir))
        report.settle(runner.confirm(case))
        report.examples, report.seconds = 1, time.monotonic() - started
        if not report.ok:
            _clean_writer(runner, case, report, failures_dir)
            return report
    progress(f"{label} known shapes", len(cases), len(cases))
    return None


def _clean_writer(runner: PairRunner, case: Case, report: PathReport, failures_dir: Path | None) -> None:
    """Rerun a failing unflushed-wal case with the writer closed cleanly (the in-place path).

    Why: the unflushed-wal path exists to find log-replay defects. A failure that a cleanly
    closed writer produces too is the upgrade's in-place failure, found by an example whose
    writer happened to be killed; presenting it as a log-replay defect sends the reader to the
    wrong code. The invariants that fail both ways say so in their detail; :func:`check_pair`
    moves them to the in-place report.
    """
    if case.path != "unflushed-wal" or report.ok:
        return
    clean_case = Case(case.old, case.new, "in-place", case.program, case.probes)
    clean = runner.confirm(clean_case, rollback=False)
    shared = {o.name for o in report.failed} & {o.name for o in clean.failed}
    if not shared:
        return
    clean.case_file = str(save_case(clean_case, failures_dir))
    clean.falsifying = report.falsifying
    clean.examples = 1
    for o in report.failed:
        if o.name in shared:
            o.detail += f"; {CLEAN_WRITER}"
    report.clean_writer = clean
    report.notes.append(
        f"{', '.join(sorted(shared))} fail(s) the same way when the writer is closed cleanly: "
        f"not a log-replay defect; reproduce: chroma-compat replay {clean.case_file}"
    )


def _carry_clean_writer(reports: list[PathReport]) -> None:
    """Report under in-place what an unflushed-wal example found that a cleanly closed writer shows too.

    With in-place run, the unflushed-wal outcomes are relabelled (not counted for that path) and the
    in-place report carries the failure, evidence and case file; without it, unflushed-wal keeps it
    failing, saying it is not a log-replay defect. The pair's verdict is NOT SAFE either way."""
    in_place = next((r for r in reports if r.path == "in-place" and r.outcomes), None)
    for rep in reports:
        clean = rep.clean_writer
        if rep.path != "unflushed-wal" or clean is None:
            continue
        if in_place is None:
            rep.notes.append(
                "in-place was not checked in this run, so this path keeps the failure; it is not a log-replay defect"
            )
            continue
        moved = [o for o in rep.failed if o.detail.endswith(CLEAN_WRITER)]
        for o in moved:
            o.status = MOVED
        names = ", ".join(o.name for o in moved)
        rep.notes.append(f"{names} reported under in-place: the same failure with a cleanly closed writer")
        if in_place.ok:
            found = "found by an unflushed-wal example, reproduced with a cleanly closed writer"
            held = [o for o in in_place.outcomes if o.name == "all" and o.status == "pass"]
            if held:
                in_place.notes.append(f"its own {held[0].detail}")
            kept = in_place.pre_existing
            in_place.outcomes = [Outcome(o.name, o.status, o.detail, o.evidence) for o in clean.outcomes]
            in_place.keep_pre_existing(kept)
            for o in in_place.failed:
                o.detail += f"; {found}"
            in_place.notes.append(found)
            in_place.case_file, in_place.falsifying = clean.case_file, clean.falsifying
        else:
            in_place.notes.append(
                f"an unflushed-wal example fails the same way ({names}) with a cleanly closed "
                f"writer; reproduce: chroma-compat replay {clean.case_file}"
            )


def check_pair(
    old: str, new: str, path_names: list[str] | None = None, *, progress: Progress | None = None, **kwargs: Any
) -> list[PathReport]:
    allow = kwargs.pop("allow_pre_existing", False)
    with PairRunner(old, new) as runner:
        wanted = path_names or runner.applicable_paths()
        reports = []
        for name in wanted:
            if name not in runner.applicable_paths():
                reports.append(
                    PathReport(
                        runner.old.version,
                        runner.new.version,
                        name,
                        notes=[f"not applicable to chromadb {runner.old.version}"],
                    )
                )
                continue
            reports.append(_path_report(runner, name, progress=progress, **kwargs))
            reports[-1].allow_pre_existing = allow  # what runs does not depend on it; the verdict does
        # every path's rollback at the end of the pair, once the new release's worker has exited (see
        # PairRunner.settle_rollbacks): what a user does, and one stop of the new release instead of one per path
        _settle_rollbacks(runner, [r for r in reports if r.path in runner.applicable_paths()])
        _carry_clean_writer(reports)
    # what the next matrix plan balances its shards by (a path that does not apply costs nothing)
    timings.record((r.old, r.new, r.path, r.seconds) for r in reports)
    return reports


# -- case files -------------------------------------------------------------------------------------


def save_case(case: Case, failures_dir: Path | None = None) -> Path:
    directory = Path(failures_dir) if failures_dir else cache_dirs.home() / "failures"
    directory.mkdir(parents=True, exist_ok=True)
    arrays: list[np.ndarray] = []
    ops = ops_to_json(case.program.ops, arrays)
    queries = []
    for q in case.probes.queries:
        queries.append({"collection": q["collection"], "k": q["k"], "vector": len(arrays)})
        arrays.append(q["vector"])
    body = {
        "old": case.old,
        "new": case.new,
        "path": case.path,
        "ops": ops,
        "merge_updates": case.program.merge_updates,
        "filters": case.probes.filters,
        "queries": queries,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:10]
    stem = f"case-{case.old}-to-{case.new}-{case.path}-{digest}"
    body["arrays"] = save_arrays(directory / f"{stem}.npy", arrays)
    body["npy"] = f"{stem}.npy"
    out = directory / f"{stem}.json"
    out.write_text(json.dumps(body, indent=1, default=str))
    return out


#: a case file (and its .npy) from an issue is read whole: anything larger is not one we wrote
MAX_CASE_BYTES = 256 * 2**20


def load_case(path: Path) -> Case:
    path = Path(path)
    from pytest_chroma_compat.common import (
        plain_names,
    )  # a case file from an issue names its .npy: beside it, never elsewhere

    plain_names.size_at_most(path, MAX_CASE_BYTES, "case file")  # not a FIFO, a device, nor unbounded
    try:
        body = json.loads(path.read_text())
        npy = plain_names.inside(path.parent, body["npy"], "its npy", path)
        plain_names.size_at_most(npy, MAX_CASE_BYTES, "case's arrays file")
        arrays = load_arrays(npy, body["arrays"])
        ops = ops_from_json(body["ops"], arrays)
        queries = [{"collection": q["collection"], "k": q["k"], "vector": arrays[q["vector"]]} for q in body["queries"]]
        program = Program(ops, body.get("merge_updates", True))
        return Case(body["old"], body["new"], body["path"], program, Probes(body["filters"], queries))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CompatError(f"{path} is not a readable case file: {exc}") from None


def replay(path: Path) -> PathReport:
    case = load_case(path)
    with PairRunner(case.old, case.new) as runner:
        report = runner.run_case(case)
        report.rollback = runner.settle_rollbacks().get(case.path)
    report.examples = 1
    report.case_file = str(path)
    return report
