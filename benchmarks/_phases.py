"""Where the time of a check or a validate goes: functions of the package wrapped at run time, timed, counted.

Nothing in the package is edited and nothing it does changes: each named
function is replaced, for the length of one measurement, by a wrapper that
times it and calls the original (in its own module and wherever it was
imported by name), and put back afterwards (:meth:`Recorder.uninstall`).

Names are looked up when a measurement starts, never assumed: a function that
was renamed or removed is reported as "not measured (name gone)" beside the
figures, never a crash. A phase that exists but never ran is reported with
count 0.

Time is charged on the main thread, where the verdict waits: "seconds" is a
phase's inclusive time (phases nested in it included), "exclusive" its own
(time inside a nested phase or a worker call is charged there). Work on other
threads (workers prestarted or stopped in the background) overlaps the main
thread: it is reported apart, as "background" seconds and counts, never added
to a share. Every worker call (``Worker.call``/``Worker.stream``) is a phase
``worker:<op>``, counted per op and per example (``PairRunner.run_case``).
"""

from __future__ import annotations

import collections
import functools
import importlib
import inspect
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

PACKAGE = "pytest_chroma_compat"
GONE = "not measured (name gone)"

#: the worker's own methods, wrapped by the recorder itself (see Recorder._install_worker)
WORKER = "engine.client:Worker"
#: the pair runner's one example (per-example counts; see Recorder._install_examples)
RUN_CASE = "roundtrip.pair:PairRunner.run_case"


@dataclass(frozen=True)
class Target:
    """A phase: its label on the page and the function that is it, as ``module:qualname`` under the package."""

    label: str
    name: str


#: phases common to every measurement: processes (the worker's own methods are added by the recorder)
PROCESS = [
    Target("waiting for a prestarted worker to be ready", "engine.client:Release._take_spare"),
]

PAIR = PROCESS + [
    Target("store writes (old release)", "roundtrip.paths:write"),
    Target("store copy (in place)", "roundtrip.paths:copy_store"),
    Target("export-import", "roundtrip.paths:export_import"),
    Target("reads (observe)", "roundtrip.invariants:observe"),
    Target("invariants (evaluate)", "roundtrip.invariants:evaluate"),
    Target("write check", "roundtrip.invariants:check_writable"),
    Target("write probe (per collection)", "roundtrip.write_probe:probe"),
    Target("rollback, end of pair", "roundtrip.pair:PairRunner.settle_rollbacks"),
    Target("rollback, right after an example", "roundtrip.pair:PairRunner._rollback"),
    Target("rollback reopen", "roundtrip.rollback:reopen"),
    Target("known shapes", "roundtrip.pair:_known_shapes"),
    Target("confirm on fresh workers", "roundtrip.pair:PairRunner.confirm"),
    Target("clean-writer rerun", "roundtrip.pair:_clean_writer"),
    Target("attribution (own view, recall)", "roundtrip.pair:PairRunner._attribute"),
    Target("attribute writes (old release's write check)", "roundtrip.pair:PairRunner._attribute_writes"),
    Target("Hypothesis and bookkeeping (_check_path)", "roundtrip.pair:_check_path"),
]

VALIDATE = PROCESS + [
    Target("safe copy (materialize)", "snapshot.sources:materialize"),
    Target("inventory", "snapshot.inventory:take"),
    Target("workers start (both at once)", "snapshot.validate:_start_together"),
    Target("open source", "snapshot.validate:_open_source"),
    Target("compare phase (per scope)", "snapshot.validate:_compare"),
    Target("compare_collection (read + checks)", "snapshot.compare:compare_collection"),
    Target("data checks", "snapshot.data_options:Options.run"),
    Target("write check", "snapshot.write_check:write_check"),
    Target("contracts lookup", "snapshot.validate:_contracts"),
    Target("closing both workers", "snapshot.validate:_close_together"),
    Target("rollback (reopen by the source)", "snapshot.validate:_reopen_by_source"),
    Target("rollback reopen", "roundtrip.rollback:reopen"),
    Target("source re-hash", "snapshot.validate:_rehash"),
    Target("waiting for background stops", "snapshot.validate:_join"),
]

#: modules that import the targets by name (imported before wrapping, when they exist)
IMPORTERS = ("roundtrip.pair", "roundtrip.cli", "cli.verb_args", "snapshot.validate", "snapshot.compare")

#: the page's rows drawn from the worker itself, in this order, before the wrapped phases
PROCESS_START, PROCESS_STOP, OPENS = "process starts", "process stops", "store opens (worker `open` calls)"


def _resolve(name: str) -> tuple[Any, str, Any]:
    """(owner, attribute, the function) for ``module:qualname``; raises LookupError when any part is gone."""
    module_name, _, qualname = name.partition(":")
    try:
        owner: Any = importlib.import_module(f"{PACKAGE}.{module_name}")
    except ImportError as exc:
        raise LookupError(f"module {PACKAGE}.{module_name}: {exc}") from None
    parts = qualname.split(".")
    for part in parts[:-1]:
        if not hasattr(owner, part):
            raise LookupError(f"{name}: no {part!r}")
        owner = getattr(owner, part)
    attr = parts[-1]
    fn = inspect.getattr_static(owner, attr, None)
    if fn is None:
        raise LookupError(f"{name}: no {attr!r}")
    if not inspect.isfunction(fn):
        raise LookupError(f"{name}: not a plain function ({type(fn).__name__})")
    return owner, attr, fn


class Recorder:
    """Phases timed on the main thread (inclusive and exclusive), background work apart, worker calls per op."""

    def __init__(self) -> None:
        self._restore: list[tuple[Any, str, Any, bool]] = []  # (owner, attr, original, was it the owner's own)
        self.missing: list[dict] = []
        self.labels: list[str] = []
        self._examples_on = False
        self.reset()

    # -- the clock -------------------------------------------------------------------------------
    def reset(self) -> None:
        self.stack: list[str] = []
        self.excl: collections.Counter = collections.Counter()
        self.incl: collections.Counter = collections.Counter()
        self.count: collections.Counter = collections.Counter()
        self.bg: collections.Counter = collections.Counter()
        self.bg_count: collections.Counter = collections.Counter()
        self.ops: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
        self.examples: list[dict] = []
        self.shrink_pending = False
        self._current: dict | None = None
        self._mark: float | None = None
        self.started = time.perf_counter()

    def _switch(self) -> float:
        now = time.perf_counter()
        if self._mark is not None and self.stack:
            self.excl[self.stack[-1]] += now - self._mark
        self._mark = now
        return now

    def timed(self, label: str, fn: Callable, /, *a: Any, **k: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.bg[label] += time.perf_counter() - t0
                self.bg_count[label] += 1
        t0 = self._switch()
        self.stack.append(label)
        self.count[label] += 1
        try:
            return fn(*a, **k)
        finally:
            now = self._switch()
            self.stack.pop()
            self.incl[label] += now - t0

    def timed_gen(self, label: str, gen: Any, /) -> Any:
        """A generator's time (consumer's work between its items included, as a caller sees it)."""
        if threading.current_thread() is not threading.main_thread():
            t0 = time.perf_counter()
            try:
                return (yield from gen)
            finally:
                self.bg[label] += time.perf_counter() - t0
                self.bg_count[label] += 1
        t0 = self._switch()
        self.stack.append(label)
        self.count[label] += 1
        try:
            return (yield from gen)
        finally:
            now = self._switch()
            if self.stack and self.stack[-1] == label:
                self.stack.pop()
            elif label in self.stack:
                self.stack.remove(label)
            self.incl[label] += now - t0

    # -- wrapping ------------------------------------------------------------------------------------
    def _put(self, owner: Any, attr: str, new: Any) -> None:
        own = attr in vars(owner)
        self._restore.append((owner, attr, vars(owner).get(attr), own))
        setattr(owner, attr, new)

    def _wrap(self, target: Target) -> None:
        try:
            owner, attr, fn = _resolve(target.name)
        except LookupError as exc:
            self.missing.append({"phase": target.label, "name": target.name, "why": GONE, "detail": str(exc)})
            return
        label = target.label
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def wrapped(*a: Any, **k: Any) -> Any:
                return (yield from self.timed_gen(label, fn(*a, **k)))

        else:

            @functools.wraps(fn)
            def wrapped(*a: Any, **k: Any) -> Any:
                return self.timed(label, fn, *a, **k)

        self._put(owner, attr, wrapped)
        if not inspect.isclass(owner):  # a module function: also where it was imported by name
            for mod in list(sys.modules.values()):
                if mod is owner or not getattr(mod, "__name__", "").startswith(PACKAGE):
                    continue
                for name, value in list(vars(mod).items()):
                    if value is fn:
                        self._put(mod, name, wrapped)
        self.labels.append(label)

    def _install_worker(self) -> None:
        try:
            owner, _, _ = _resolve(WORKER + ".__init__")
            calls = [_resolve(WORKER + "." + m)[2] for m in ("call", "stream", "close")]
        except LookupError as exc:
            self.missing.append({"phase": "worker calls, process starts and stops", "name": WORKER, "why": GONE,
                                 "detail": str(exc)})  # fmt: skip
            return
        init, call, stream, close = owner.__init__, *calls
        rec = self

        @functools.wraps(init)
        def w_init(worker: Any, *a: Any, **k: Any) -> Any:
            if rec._current is not None:
                rec._current["starts"] += 1
            return rec.timed(PROCESS_START, init, worker, *a, **k)

        def account(op: str, t0: float) -> None:
            o = rec.ops[op]
            o[0] += 1
            o[1] += time.perf_counter() - t0
            if rec._current is not None and threading.current_thread() is threading.main_thread():
                rec._current["calls"] += 1

        @functools.wraps(call)
        def w_call(worker: Any, op: str, *a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return rec.timed(f"worker:{op}", call, worker, op, *a, **k)
            finally:
                account(op, t0)

        @functools.wraps(stream)
        def w_stream(worker: Any, op: str, *a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return (yield from rec.timed_gen(f"worker:{op}", stream(worker, op, *a, **k)))
            finally:
                account(op, t0)

        @functools.wraps(close)
        def w_close(worker: Any, *a: Any, **k: Any) -> Any:
            return rec.timed(PROCESS_STOP, close, worker, *a, **k)

        for attr, new in (("__init__", w_init), ("call", w_call), ("stream", w_stream), ("close", w_close)):
            self._put(owner, attr, new)

    def _install_examples(self) -> None:
        try:
            owner, attr, run_case = _resolve(RUN_CASE)
        except LookupError as exc:
            self.missing.append({"phase": "worker calls per example", "name": RUN_CASE, "why": GONE,
                                 "detail": str(exc)})  # fmt: skip
            return
        rec = self

        @functools.wraps(run_case)
        def w_run_case(runner: Any, case: Any, *a: Any, **k: Any) -> Any:
            if "known shapes" in rec.stack:
                mode = "known shape"
            elif "confirm on fresh workers" in rec.stack or "clean-writer rerun" in rec.stack:
                mode = "confirm"
            elif rec.shrink_pending:
                mode = "shrinking"
            else:
                mode = "generated"
            rec.shrink_pending = False
            ex = {"mode": mode, "path": getattr(case, "path", "?"), "calls": 0, "starts": 0}
            outer, rec._current = rec._current, ex
            t0 = time.perf_counter()
            try:
                return rec.timed(f"example: {mode}", run_case, runner, case, *a, **k)
            finally:
                ex["seconds"] = time.perf_counter() - t0
                rec._current = outer
                if outer is not None:  # a nested example's calls are its parent's too
                    outer["calls"] += ex["calls"]
                    outer["starts"] += ex["starts"]
                rec.examples.append(ex)

        self._put(owner, attr, w_run_case)
        self._examples_on = True

    def install(self, targets: list[Target]) -> Recorder:
        # every module first, so a function imported by name elsewhere is found there too (see _wrap)
        for module in dict.fromkeys([t.name.partition(":")[0] for t in targets] + list(IMPORTERS)):
            try:
                importlib.import_module(f"{PACKAGE}.{module}")
            except ImportError:
                pass  # its targets are reported as gone by _wrap
        self._install_worker()
        for target in targets:
            self._wrap(target)
        if any(t.name.startswith("roundtrip.pair:") for t in targets):  # a round trip: its examples
            self._install_examples()
            self._wrap_invariants()
        return self

    def _wrap_invariants(self) -> None:
        """Each named invariant, in the table the round trip reads them from (``CHECKS``)."""
        try:
            inv = importlib.import_module(f"{PACKAGE}.roundtrip.invariants")
            checks = inv.CHECKS
        except (ImportError, AttributeError) as exc:
            self.missing.append({"phase": "each invariant", "name": "roundtrip.invariants:CHECKS", "why": GONE,
                                 "detail": str(exc)})  # fmt: skip
            return
        for name, fn in list(checks.items()):
            label = f"invariant: {name}"

            def wrapped(*a: Any, _fn: Callable = fn, _label: str = label, **k: Any) -> Any:
                return self.timed(_label, _fn, *a, **k)

            self._restore.append((checks, name, fn, None))
            checks[name] = wrapped
            self.labels.append(label)

    def uninstall(self) -> None:
        for owner, attr, original, own in reversed(self._restore):
            if own is None:  # an entry of a dict (CHECKS)
                owner[attr] = original
            elif own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)
        self._restore.clear()

    def progress(self, label: str, done: int, total: int) -> None:
        """A progress callback for ``check_pair``: the run after a ``... shrinking`` report is a shrink."""
        if label.endswith("shrinking"):
            self.shrink_pending = True

    # -- the result ----------------------------------------------------------------------------------
    def summary(self, total: float | None = None) -> dict:
        """Seconds, share of ``total`` (default: since reset) and count of every phase, and per example."""
        self._switch()
        total = (time.perf_counter() - self.started) if total is None else total

        def row(label: str, seconds: float, excl: float | None, count: int, bg: str | None = None) -> dict:
            out = {
                "phase": label,
                "seconds": round(seconds, 3),
                "exclusive": None if excl is None else round(excl, 3),
                "share": round(seconds / total, 4) if total else None,
                "count": count,
            }
            key = bg or label
            if self.bg_count.get(key):
                out["background_seconds"] = round(self.bg[key], 3)
                out["background_count"] = self.bg_count[key]
            return out

        rows = [
            row(PROCESS_START, self.incl[PROCESS_START], self.excl[PROCESS_START], self.count[PROCESS_START]),
            row(PROCESS_STOP, self.incl[PROCESS_STOP], self.excl[PROCESS_STOP], self.count[PROCESS_STOP]),
            row(OPENS, self.incl["worker:open"], self.excl["worker:open"], self.count["worker:open"], "worker:open"),
        ]
        rows += [row(lb, self.incl[lb], self.excl[lb], self.count[lb]) for lb in dict.fromkeys(self.labels)]
        shrinks = [e for e in self.examples if e["mode"] == "shrinking"]
        if self._examples_on:
            rows.append(
                row("shrinking (examples run to shrink)", sum(e["seconds"] for e in shrinks), None, len(shrinks))
            )
        worker_excl = sum(v for k, v in self.excl.items() if k.startswith("worker:"))
        rows.append(row("inside worker calls (all ops, exclusive)", worker_excl, worker_excl,
                        sum(v for k, v in self.count.items() if k.startswith("worker:"))))  # fmt: skip
        examples = []
        groups: dict[tuple, list] = collections.defaultdict(list)
        for e in self.examples:
            groups[(e["path"], e["mode"])].append(e)
        for (path, mode), es in groups.items():
            examples.append(
                {
                    "path": path,
                    "mode": mode,
                    "examples": len(es),
                    "seconds": round(sum(e["seconds"] for e in es), 3),
                    "mean_seconds": round(sum(e["seconds"] for e in es) / len(es), 3),
                    "mean_worker_calls": round(sum(e["calls"] for e in es) / len(es), 1),
                    "process_starts": sum(e["starts"] for e in es),
                }
            )
        return {
            "total_seconds": round(total, 3),
            "phases": rows,
            "not_measured": list(self.missing),
            "worker_ops": {
                op: {"calls": n, "seconds": round(s, 3)}
                for op, (n, s) in sorted(self.ops.items(), key=lambda kv: -kv[1][1])
            },
            "per_example": examples,
        }


def measure(targets: list[Target], run: Callable[[Recorder], Any]) -> tuple[Any, Recorder]:
    """``run(recorder)`` with ``targets`` wrapped; everything put back afterwards, whatever happens."""
    rec = Recorder().install(targets)
    try:
        rec.reset()
        return run(rec), rec
    finally:
        rec.uninstall()
