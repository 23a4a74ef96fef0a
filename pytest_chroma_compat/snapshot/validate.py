"""Validate one real store for one upgrade: the engine behind ``chroma-compat validate``.

The order of work is the safety argument: hash the source, copy it, and from
then on touch only copies. The inventory reads copy A with read-only SQLite;
the release that wrote the store reads copy A; the target release opens copy B
(which it may migrate in place); the source is hashed again at the very end,
whatever happened in between. Every way of failing becomes data on the
:class:`~.result.Validation` (``error`` for "could not validate", failed checks
for "not safe"), so reports are written even for a store that breaks a release.

Phases (``timings``): ``copy``, ``workers``, ``target open``, ``compare`` (every collection's records
read and compared on both sides, the record stream: ``compare.compare_collection`` without its query
and filter checks), ``queries`` (the query and filter checks), ``data checks`` (``data_checks.py``
and the user's filters), ``write check``, ``contracts``, ``rollback``, ``total``. Until issue 27 the
four in the middle were one ``compare`` phase; nothing moved between them, they are timed apart.

Where time goes besides the checks (issue 27): the rollback's fresh workers are started while the
store is compared (``_prestart_rollback``), the contracts are looked up once for the data checks and
the report, in the background (``measure.Lookup``), and the two workers stop at once at the end, the
source's (copy A, read by nothing afterwards) reaped in the background and waited for only before
the work directory is removed (``_join``).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from packaging.version import Version

from pytest_chroma_compat.common.errors import ChromaError, CompatError, HarnessFault, WorkerError
from pytest_chroma_compat.common.scopes import (
    DEFAULT_SCOPE,
    Scope,
    Selection,
    database_label,
    in_scope,
    inventory_collections,
    scope_label,
    store_scopes,
)
from pytest_chroma_compat.engine import cache_dirs, leftovers, releases
from pytest_chroma_compat.engine.client import Client, Collection, Release
from pytest_chroma_compat.roundtrip.invariants import values_close
from pytest_chroma_compat.roundtrip.paths import copy_store, export_import
from pytest_chroma_compat.snapshot import (
    compare,
    data_checks,
    data_options,
    inventory,
    pointers,
    store_settings,
    store_state,
    writers,
)
from pytest_chroma_compat.snapshot.result import Check, Validation
from pytest_chroma_compat.snapshot.sources import SourceError, fingerprint, materialize
from pytest_chroma_compat.snapshot.write_check import dimension_for, write_check

PATHS = ("in-place", "export-import")
#: candidates tried, newest first, before a store every one refuses is called damaged (4: the whole
#: 0.4.0-0.4.3 range, whose newest three refuse a 0.4.0 store when hashes did not narrow it)
MAX_READERS = 4
#: a call on a large store (opening it migrates it) may legitimately take minutes
TIMEOUT = 1800.0
#: a store of at most this many records (the inventory's count) is compared in well under the time a
#: release takes to start: the rollback's workers are prestarted as soon as the source is open; a larger
#: store's once its first collection's records are compared, so their imports do not slow that stream
PRESTART_EARLY = 5_000
Progress = Callable[[str, int, int], None]


def work_root() -> Path:
    return cache_dirs.scratch_dir() / "validate"


def validate(
    source: str,
    to: str,
    *,
    from_: str | None = None,
    path: str = "in-place",
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    workdir: Path | None = None,
    batch_size: int = compare.BATCH_SIZE,
    contracts: bool = True,
    timeout: float = TIMEOUT,
    progress: Progress | None = None,
    keep: bool = False,
    seed: int = 0,
    collections: Sequence[str] | None = None,
    s3_timeout: float | None = None,
    max_extract_bytes: int | None = None,
    max_members: int | None = None,
    require_rollback: bool = False,
    allow_pre_existing: bool = False,
    refuse_downgrade: bool = False,
    data_budget: int = data_checks.DEFAULT_BUDGET,
    filters: Sequence[Any] | None = None,
    pointer_template: str | None = None,
) -> Validation:
    """Validate ``source`` for an upgrade to ``to``; never raises for a bad store or source.

    ``collections`` limits the comparison to these collections (a name, matched in
    every database, or ``tenant/database:name``), as teams that migrate one
    collection at a time validate one at a time. ``allow_pre_existing``: a defect
    the store already had before the upgrade is shown but does not fail (exit 0).
    ``data_budget``: stored values asked per metadata key by the data checks (``data_checks.py``; 0: only
    those of contracts the upgrade crosses); ``filters``: the user's own (``user_filters.py``).
    """
    result = Validation(source={"location": source}, allow_pre_existing=allow_pre_existing)
    # what the report's "Reproduce" line needs to ask the same S3 endpoint (never its credentials)
    from pytest_chroma_compat.common.redact import split_credentials

    result.source.update(
        {
            k: v
            for k, v in (
                ("endpoint_url", split_credentials(endpoint_url)[0] if endpoint_url else None),
                ("profile", profile),
                ("region", region),
            )
            if v
        }
    )
    started = time.monotonic()
    try:
        check_options(to=to, from_=from_, path=path, timeout=timeout, batch_size=batch_size)
        data = data_options.Options(data_budget, filters, measure_contracts=contracts, seed=seed)
        followed = pointers.follow(
            source,
            endpoint_url=endpoint_url,
            profile=profile,
            region=region,
            s3_timeout=s3_timeout,
            template=pointer_template,
        )
        if followed.pointer is not None:  # latest-pointer.txt: validate what it names, and say so
            source = followed.location
            result.source.update({"location": source, "pointer": followed.pointer, "pointer_names": followed.content})
        result.target_release = releases.resolve(to)
        if from_ not in (None, "auto"):
            result.source_release = releases.resolve(from_)
            result.source_release_evidence = "given with --from"
        result.path = path
        # a dead owner's copies are removed by `env prune` (engine/leftovers.py); kept ones only by an explicit prune
        kind = "validate-kept" if keep else "validate"
        work = Path(tempfile.mkdtemp(prefix=leftovers.prefix(kind), dir=_ensure(workdir or work_root())))
        in_use = leftovers.hold(work)  # no sweep removes it while we run, from any pid namespace
    except CompatError as exc:
        result.error = str(exc)
        return result
    source_kw = {
        "endpoint_url": endpoint_url,
        "profile": profile,
        "region": region,
        "s3_timeout": s3_timeout,
        "max_extract_bytes": max_extract_bytes,
        "max_members": max_members,
        "notify": (lambda text: progress(text, 0, 0)) if progress else None,
    }  # S3 retries, as they happen
    reaps: list = []  # workers stopping in the background: waited for before ``work`` is removed
    try:
        _run(
            result,
            source,
            work,
            source_kw,
            reaps,
            batch_size=batch_size,
            contracts=contracts,
            timeout=timeout,
            progress=progress,
            seed=seed,
            selection=Selection(collections) if collections else None,
            data=data,
        )
        result.checks.extend(data.finish() if result.error is None else [])
        _rule_after_open(result)
        if require_rollback:
            _require_rollback(result)
        if refuse_downgrade:
            _refuse_downgrade(result)
    except HarnessFault as exc:  # a timeout, a broken environment, the machine: never a verdict
        _stopped(result, str(exc))
    except OSError as exc:
        if exc.filename and not str(exc.filename).startswith(str(work)):  # reading the source: it moved under us
            _stopped(
                result,
                f"cannot read {exc.filename}: {exc.strerror or exc}; the source changed while it was "
                "copied, or is not readable: validate a quiescent snapshot",
            )
        else:  # the work directory refused a write (disk full, read-only, quota)
            _stopped(
                result,
                f"the work directory refused a write: {exc.strerror or exc} ({exc.filename or work}); "
                "free space or pass another --workdir",
            )
    except KeyboardInterrupt:
        result.error = "interrupted"
        raise
    finally:
        try:
            _rehash(result, source, source_kw)
        finally:  # the private copies go whatever the last hash did
            _join(reaps)
            result.timings["total"] = time.monotonic() - started
            if not keep:
                shutil.rmtree(work, ignore_errors=True)
            else:
                result.source["work_dir"] = str(work)
            in_use.close()
    return result


def _join(reaps: list) -> None:
    """Wait for every worker stopping in the background (``Worker.close`` waits for a stop under way)."""
    for worker in reaps:
        try:
            worker.close()
        except Exception:  # noqa: BLE001 - it is gone either way; its own close logged what it could
            pass
    reaps.clear()


def _close_together(old: Release, new: Release, reaps: list) -> None:
    """Stop both workers at once (each takes 0.3-0.5 s of interpreter teardown).

    The source's (copy A: nothing reads it again) is reaped in the background and waited for before
    the work directory goes (``_join``); the target's is waited for here: the rollback reopens its copy,
    which no process of the target may still hold."""
    worker = old.current_worker()
    if worker is not None:
        reaps.append(worker)
    old.close(wait=False)
    new.close()


def _rollback_versions(result: Validation) -> list[str]:
    """The releases that reopen copy B after the target wrote to it (``_reopen_by_source``), in order."""
    wr = result.inventory.get("writer_range") or {}
    versions = [result.source_release]
    # a 0.3 range is every 0.3 release (no schema history narrows it): its oldest end says nothing about this
    # store, so only the release that read it, the newest 0.3 release that opens it, reopens a 0.3 store
    if (
        result.source_release_evidence.startswith("written by")
        and wr.get("readers")
        and result.inventory.get("format") == "sqlite"
    ):
        # the range's other end first: each reopen may write to the copy, and the oldest is the likelier to refuse
        versions = [v for v in wr["readers"][-1:] if v != result.source_release] + versions
    return versions


def _prestart_rollback(result: Validation, spares: dict[str, Release], timeout: float) -> None:
    """Start the rollback's fresh workers now (each imports chromadb, about a second) so the reopen finds
    them ready. Each is still a fresh process that has touched no store, as the rollback requires."""
    if result.path != "in-place":
        return
    for version in _rollback_versions(result):
        if version in spares:
            continue
        try:
            spare = Release(version, timeout=timeout)
            spare.prestart()
        except CompatError:  # its environment: the reopen starts it itself and reports what fails
            continue
        spares[version] = spare


def _total_records(result: Validation) -> int:
    """The store's records as the inventory counted them (0 when it could not)."""
    counts = [c.get("count") for c in result.inventory.get("collections") or [] if isinstance(c, dict)]
    return sum(n for n in counts if isinstance(n, int))


def _stopped(result: Validation, why: str) -> None:
    """A harness fault stopped the run: "could not validate", unless a release had already failed on
    this data, whose evidence then stands (exit 1) with the fault shown beside it."""
    if result.failed:
        result.checks.append(Check("run", "error", f"the validation stopped early: {why}"))
    else:
        result.error = why


def _settings(result: Validation) -> dict[str, str] | None:
    """The settings the store was created with that every open must repeat (``store_settings.py``)."""
    return store_settings.to_open(result.inventory.get("store_settings")) or None


def _with_settings(result: Validation) -> str:
    """What an open was tried with, for a message about an open that failed."""
    wanted = _settings(result)
    if wanted:
        return f" with {store_settings.describe(wanted)} (the setting it was created with)"
    unsure = [
        f"{k}: {s['evidence']}"
        for k, s in (result.inventory.get("store_settings") or {}).items()
        if isinstance(s, dict) and s.get("value") is None and "no one setting" in str(s.get("evidence"))
    ]
    return f" with the default settings ({'; '.join(unsure)})" if unsure else ""


def _settings_check(result: Validation) -> None:
    """Name the settings the store was created with, and the releases that cannot take them."""
    wanted = _settings(result)
    if not wanted:
        return
    found = result.inventory.get("store_settings") or {}
    why = "; ".join(f"{k}: {found[k].get('evidence')}" for k in sorted(wanted) if isinstance(found.get(k), dict))
    refused = [
        f"chromadb {v} has no such setting"
        for v in (result.source_release, result.target_release)
        if v and store_settings.cannot_take(v, wanted)
    ]
    result.checks.append(
        Check(
            "store-settings",
            "info",
            f"the store was created with {store_settings.describe(wanted)}"
            f" ({why}); every release opens it with that setting" + (f"; {', '.join(refused)}" if refused else ""),
            None,
            {"settings": wanted},
        )
    )


def _ensure(path: Path) -> Path:
    return cache_dirs.writable_dir(Path(path), "the work directory", "pass a writable --workdir")


def check_options(*, to: str, from_: str | None, path: str, timeout: float, batch_size: int) -> None:
    """Refuse a bad option before any copy is made or any release starts (one line, exit 2).

    Why up front: a zero or negative timeout used to kill the first call and call
    the store damaged; an empty version, a minute into a download.
    """
    if path not in PATHS:
        raise CompatError(f"unknown path {path!r}; choose one of {', '.join(PATHS)}")
    if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise CompatError(f"--timeout must be a positive number of seconds, not {timeout!r}")
    if batch_size < 1:
        raise CompatError("--batch-size must be at least 1")
    if not (to or "").strip():
        raise CompatError("--to needs a release (e.g. 1.5.9, 1.5 or latest)")
    if from_ is not None and not from_.strip():
        raise CompatError("--from needs a release (e.g. 0.4.24) or auto")


def _rehash(result: Validation, source: str, source_kw: dict) -> None:
    """The "after" hash is taken last, so it covers everything the validation did."""
    before = result.source.get("hash_before")
    if before is None:
        return
    try:
        after = fingerprint(source, **source_kw)
    except Exception as exc:  # noqa: BLE001 - an endpoint gone, a file vanishing: unknown, not "changed"
        why = str(exc) if isinstance(exc, CompatError) else f"{type(exc).__name__}: {exc}"
        result.source.update({"hash_after": f"unavailable: {why}", "unchanged": None})
        detail = f"the source could not be hashed again after validation, so it cannot be shown unchanged: {why}"
        result.checks.insert(0, Check("source-unchanged", "error", detail, None, {"before": before}))
        return
    result.source["hash_after"] = after
    result.source["unchanged"] = after == before
    result.checks.insert(
        0,
        Check(
            "source-unchanged",
            "pass" if after == before else "error",
            "the source hashes the same before and after validation"
            if after == before
            else "the source changed during validation (something else is writing to it?); the copy may be torn: "
            "validate a quiescent snapshot",
            None,
            {"before": before, "after": after},
        ),
    )


def _run(
    result: Validation,
    source: str,
    work: Path,
    source_kw: dict,
    reaps: list,
    *,
    batch_size: int,
    contracts: bool,
    timeout: float,
    progress: Progress | None,
    seed: int,
    selection: Selection | None,
    data: data_options.Options | None = None,
) -> None:
    t0 = time.monotonic()
    try:  # a copy taken under a live writer is torn: say so in one line instead of calling it damaged
        store_state.refuse_live_writer(source)
    except store_state.LiveWriter as exc:
        result.error = str(exc)
        return
    try:
        download = (lambda done, total: progress(f"download {source}", done, total)) if progress else None
        copy = materialize(source, work, progress=download, **source_kw)
    except SourceError as exc:
        result.error = str(exc)
        return
    result.source.update(
        {"kind": copy.kind, "hash_before": copy.source_hash_before, "objects": len(copy.objects) or None}
    )
    if not copy.source_unchanged:
        result.source.update({"hash_after": copy.source_hash_after, "unchanged": False})
    result.timings["copy"] = time.monotonic() - t0
    source_copy, target_copy = copy.path, work / "target-store"
    try:
        result.inventory = inventory.take(source_copy)  # first: it rolls a hot journal back, for both copies
        copy_store(source_copy, target_copy)
    except inventory.StoreUnreadable as exc:
        result.error = str(exc)
        return
    except OSError as exc:
        result.error = f"cannot copy the store inside the work directory: {exc}"
        return
    result.source["bytes"] = result.inventory.get("bytes")
    if not _pick_source(result):
        return
    _rollback_check(result)
    _integrity_check(result)
    _settings_check(result)
    scopes, unplaced = store_scopes(result.inventory)
    if unplaced:
        result.checks.append(
            Check(
                "scope",
                "error",
                f"{len(unplaced)} collection(s) belong to no database the store "
                f"lists, and no client can open them: {', '.join(unplaced[:5])}",
                None,
                {"not validated": unplaced},
            )
        )
    sqlite = result.inventory.get("format") == "sqlite"
    if selection is not None and sqlite:  # the inventory knows every collection: refuse a bad name now
        scopes = _select(result, selection, scopes, inventory_collections(result.inventory, scopes))
        if scopes is None:
            return
    if result.path == "export-import":
        target_copy = work / "imported-store"
    spares: dict[str, Release] = {}  # the rollback's releases, prestarted (``_prestart_rollback``)
    try:
        if _run_workers(
            result,
            source_copy,
            target_copy,
            scopes,
            sqlite,
            selection,
            spares,
            reaps,
            batch_size=batch_size,
            contracts=contracts,
            timeout=timeout,
            progress=progress,
            seed=seed,
            data=data,
        ):
            _reopen_by_source(result, target_copy, timeout, spares, reaps)
    finally:
        for spare in spares.values():  # not needed after all: never touched a store
            spare.close(wait=False)


def _run_workers(
    result: Validation,
    source_copy: Path,
    target_copy: Path,
    scopes: list,
    sqlite: bool,
    selection: Selection | None,
    spares: dict[str, Release],
    reaps: list,
    *,
    batch_size: int,
    contracts: bool,
    timeout: float,
    progress: Progress | None,
    seed: int,
    data: data_options.Options | None,
) -> bool:
    """Everything the source's and the target's workers do, from their start to their stop; False when
    the run stopped early (nothing for the rollback to reopen)."""
    with ExitStack() as stack:
        old = Release(result.source_release, timeout=timeout)
        new = Release(result.target_release, timeout=timeout)
        sides = [old, new]  # the reading release may change (``_open_source``): the one that read is stopped
        stack.callback(lambda: _close_together(sides[0], sides[1], reaps))
        t0 = time.monotonic()
        _start_together(old, new)
        result.timings["workers"] = time.monotonic() - t0
        if result.path == "export-import":
            t1 = time.monotonic()
            try:
                export_import(
                    old,
                    source_copy,
                    new,
                    target_copy,
                    batch_size=batch_size,
                    scopes=scopes,
                    keep=selection.matches if selection else None,
                    settings=_settings(result),
                )
            except (ChromaError, WorkerError) as exc:
                if old.raised(exc):  # the release that wrote the store cannot export it: damage, not the upgrade
                    result.checks.append(
                        Check(
                            "open",
                            "error",
                            f"chromadb {old.version}, which reads this store "
                            f"as the source, cannot export it: {compare._err(exc)}; "
                            "the store is "
                            "damaged, or pass --from with the release that wrote "
                            "it",
                            None,
                            {"side": "source", "error": compare._err(exc)},
                        )
                    )
                else:
                    result.checks.append(
                        Check(
                            "open",
                            "fail",
                            f"export from chromadb {old.version} into {new.version} failed: {compare._err(exc)}",
                            None,
                            {"side": "target", "error": compare._err(exc)},
                        )
                    )
                return
            result.timings["export-import"] = time.monotonic() - t1
        opened = _open_source(result, stack, old, source_copy, timeout)
        if opened is None:
            return
        old, src, default_names = opened
        sides[0] = old
        if _total_records(result) <= PRESTART_EARLY:
            _prestart_rollback(result, spares, timeout)
        if selection is not None and not sqlite:  # a 0.3 store: its one database, as the release lists it
            scopes = _select(result, selection, scopes, [(DEFAULT_SCOPE, n) for n in default_names])
            if scopes is None:
                return
        t2 = time.monotonic()
        try:
            dst = new.persistent(target_copy, _settings(result))
            names = dst.list_collection_names()
        except (ChromaError, WorkerError) as exc:
            result.checks.append(
                Check(
                    "open",
                    "fail",
                    f"chromadb {new.version} cannot open the store{_with_settings(result)}: {compare._err(exc)}",
                    None,
                    {"error": compare._err(exc), "settings": _settings(result)},
                )
            )
            return
        result.timings["target open"] = time.monotonic() - t2
        others = sum(scope != DEFAULT_SCOPE for scope in scopes)
        more = f", and {others} other database(s) to compare" if others else ""
        result.checks.append(
            Check(
                "open",
                "pass",
                f"chromadb {new.version} opened the store ({len(names)} collection(s) in the default database{more})",
            )
        )
        lookup = None
        if old.version != new.version and (contracts or (data is not None and data.measure)):
            from pytest_chroma_compat.contracts import measure

            lookup = measure.Lookup(old.version, new.version)  # in the background, once (see ``measure.Lookup``)
            if data is not None:
                data.lookup = lookup
        for phase in ("compare", "queries", "data checks", "write check"):
            result.timings[phase] = 0.0
        for scope in scopes:
            pair = (
                (src, dst) if scope == DEFAULT_SCOPE else _open_scope(result, old, new, source_copy, target_copy, scope)
            )
            if pair is not None:
                _compare(
                    result,
                    *pair,
                    scope=scope,
                    batch_size=batch_size,
                    progress=progress,
                    seed=seed,
                    selection=selection,
                    data=data,
                    after_stream=lambda: _prestart_rollback(result, spares, timeout),
                )
        if contracts:
            _contracts(result, old, new, lookup)
    return True


def _reopen_by_source(
    result: Validation,
    target_copy: Path,
    timeout: float,
    spares: dict[str, Release] | None = None,
    reaps: list | None = None,
) -> None:
    """The one-way door: once the target has written to its copy, can the reading release open it again?

    Why: upgrade plans rely on reverting (pin the old release back) when
    something goes wrong, and a store the target has migrated or written may no
    longer open with the old release (1.0.21 panics on a 1.5.9-written store).
    It runs on copy B, after the target's workers are gone (its open and its
    write check are what wrote there), in a fresh worker of the reading
    release: a count, a page and a query per collection of the default
    database. With an auto-detected writer range the oldest candidate reopens
    it too: 1.2.2 reopens a copy 1.5.9 wrote to, 1.0.21 does not, so the
    reading release alone could promise a rollback the user's release cannot
    make. Recorded in ``result.rollback``; the check is ``info``, or
    ``fail`` with ``--require-rollback`` (see :func:`_require_rollback`).

    ``spares``: those releases prestarted (fresh processes that touched no store). Each reopen's worker
    is stopped before the next reopens the copy; the last one's stop is waited for in ``reaps``.
    """
    if result.path != "in-place":
        result.rollback = {
            "checked": False,
            "possible": True,
            "release": result.source_release,
            "error": None,
            "detail": "export-import leaves the source store as it was: rolling back is using it",
        }
        return
    if not any(c.name == "open" and c.status == "pass" for c in result.checks):
        return  # the target never opened its copy: nothing was upgraded to roll back from
    t0 = time.monotonic()
    versions = _rollback_versions(result)
    spares = spares if spares is not None else {}
    outcomes = [
        _reopen(
            version,
            target_copy,
            timeout,
            _settings(result),
            spares.pop(version, None),
            reaps if i == len(versions) - 1 else None,
        )
        for i, version in enumerate(versions)
    ]
    refused = [(v, err) for v, (err, _) in zip(versions, outcomes) if err is not None]
    reopened = [v for v, (err, _) in zip(versions, outcomes) if err is None]
    why = (
        ""
        if len(versions) == 1
        else (
            f" (chromadb {versions[0]}: the oldest release that could have written the "
            f"store; {result.source_release}: the release that read it)"
        )
    )
    if refused:
        version, error = refused[0]
        also = f"; chromadb {', '.join(reopened)} did reopen it" if reopened else ""
        result.rollback = {
            "checked": True,
            "possible": False,
            "release": version,
            "error": error,
            "releases": versions,
            "reopened_by": reopened,
            "detail": f"rollback after upgrading: not possible (chromadb {version} cannot open the "
            f"store once {result.target_release} has written to it: {error}{also}){why}",
        }
        result.checks.append(
            Check(
                "rollback-after-upgrade",
                "info",
                result.rollback["detail"],
                None,
                {"release": version, "error": error, "reopened by": reopened},
            )
        )
    else:
        read = outcomes[-1][1]
        result.rollback = {
            "checked": True,
            "possible": True,
            "release": result.source_release,
            "error": None,
            "releases": versions,
            "reopened_by": reopened,
            "detail": f"rollback after upgrading: possible (chromadb {', '.join(versions)} reopened the "
            f"store after {result.target_release} wrote to it: {len(read)} collection(s) "
            f"counted, paged and queried){why}",
        }
        result.checks.append(
            Check(
                "rollback-after-upgrade",
                "pass",
                result.rollback["detail"],
                None,
                {"releases": versions, "collections": read},
            )
        )
    result.rollback["why_releases"] = why.strip(" ()") or None
    result.timings["rollback"] = time.monotonic() - t0


def _reopen(
    version: str,
    store: Path,
    timeout: float,
    settings: dict | None = None,
    release: Release | None = None,
    reaps: list | None = None,
) -> tuple[str | None, list[str]]:
    """(what ``version`` raised, or None; "name: count" per collection it read) on ``store``.

    ``release``: ``version`` prestarted; ``reaps``: its worker stops in the background, waited for there
    (nothing reopens ``store`` after it)."""
    from pytest_chroma_compat.roundtrip.rollback import reopen

    worker = None
    if release is not None and reaps is not None:
        try:
            worker = release.worker  # the prestarted process, held so its stop can be waited for
        except CompatError:
            worker = None  # the reopen starts it again and reports why it cannot
    back = reopen(version, store, timeout, settings=settings, release=release, wait=worker is None)
    if worker is not None:
        reaps.append(worker)
    return back.error, back.read


def _require_rollback(result: Validation) -> None:
    """``--require-rollback``: a store the reading release cannot reopen after the upgrade is "not safe"."""
    for check in result.checks:
        if check.name == "rollback-after-upgrade" and check.status == "info":
            check.status = "fail"


def _select(
    result: Validation, selection: Selection, scopes: list[Scope], found: list[tuple[Scope, str]]
) -> list[Scope] | None:
    """The databases that hold a selected collection (of ``found``); None, with ``error`` set,
    when the selection names a collection the store does not hold."""
    labels = [scope_label(sc, n) for sc, n in found]
    unknown = selection.unknown(found)
    if unknown:
        result.error = (
            f"no collection {unknown[0]!r} in this store; it has: "
            f"{', '.join(labels[:10]) or 'none'}{' ...' if len(labels) > 10 else ''}"
        )
        return None
    picked = [selection.matches(sc, n) for sc, n in found]
    chosen = [label for label, yes in zip(labels, picked) if yes]
    left = [label for label, yes in zip(labels, picked) if not yes]
    detail = f"{len(chosen)} of {len(labels)} collection(s) validated (--collection)"
    result.checks.append(
        Check(
            "selection",
            "info",
            detail + (f"; not validated: {', '.join(left[:10])}" if left else ""),
            None,
            {"validated": chosen, "not validated": left},
        )
    )
    return [sc for sc in scopes if any(yes and s == sc for (s, _), yes in zip(found, picked))]


def _start_together(*rels: Release) -> None:
    """Start every release's worker at once: each spends a second or more importing chromadb.

    Failures are left for the first real use of each release, where they are
    reported as before (a release that cannot start is retried there once).
    """
    with ThreadPoolExecutor(len(rels), thread_name_prefix="start") as pool:
        for started in [pool.submit(lambda r=r: r.worker) for r in rels]:
            started.exception()


def _pick_source(result: Validation) -> bool:
    """The release that reads the store as the reference (``releases.source``), never stated as its writer.

    With --from, that release; otherwise the first of the writer range's
    ``readers`` (``writers.READER_RULE``); :func:`_open_source` moves down that
    list when a candidate refuses the store.
    """
    wr = result.inventory.get("writer_range") or {}
    if result.source_release is None:
        if not wr.get("source_release"):
            if wr.get("unknown"):
                result.direction = "rollback"
                result.checks.append(
                    Check(
                        "rollback",
                        "fail",
                        f"{wr['evidence']}; chromadb {result.target_release} does not know its schema",
                        None,
                        {"writer_range": wr},
                    )
                )
                return False
            result.error = (
                f"cannot tell which release wrote this store ({wr.get('evidence', 'no evidence')}); pass --from"
            )
            return False
        result.source_release = wr["source_release"]
        result.source_release_evidence = _reader_evidence(wr, result.source_release)
    elif wr.get("versions") and result.source_release not in wr["versions"]:
        result.checks.append(
            Check(
                "source-release",
                "info",
                f"--from {result.source_release}, but the store's schema "
                f"says chromadb {wr['first']}-{wr['last']} wrote it",
                None,
                {"writer_range": {k: wr[k] for k in ("first", "last", "evidence")}},
            )
        )
    result.direction = _direction(result, wr)
    return True


def _reader_evidence(wr: dict, reader: str, refused: list[str] | None = None) -> str:
    """ "written by one of chromadb 1.0.0-1.2.2 (evidence: ...); read with 1.2.2, the newest candidate ..."."""
    tried = f"; {'; '.join(refused)}" if refused else ""
    return (
        f"written by {writers.describe(wr)}; read with chromadb {reader}, {wr.get('reader_rule', '')}{tried}; "
        "pass --from X if you know which release wrote it"
    )


def _open_source(
    result: Validation, stack: ExitStack, old: Release, source_copy: Path, timeout: float
) -> tuple[Release, Client, list[str]] | None:
    """Open copy A with the reading release; an auto-detected reader that refuses the store gives way
    to the next candidate (at most ``MAX_READERS`` tried: a store every candidate refuses is damaged).

    Why: candidates share the store's migrations but not always what they accept
    (0.4.1-0.4.3 refuse a 0.4.0 store over one migration's hash), and calling the
    store damaged when an older candidate reads it hides the real answer.
    """
    wr = result.inventory.get("writer_range") or {}
    auto = result.source_release_evidence.startswith("written by")
    readers = [v for v in wr.get("readers") or [] if v != old.version] if auto else []
    refused: list[str] = []
    while True:
        try:
            src = old.persistent(source_copy, _settings(result))
            return old, src, src.list_collection_names()
        except HarnessFault:
            raise
        except (ChromaError, WorkerError, CompatError) as exc:
            why = compare._err(exc)
            refused.append(f"chromadb {old.version} refused it: {why if len(why) <= 200 else why[:200] + ' ...'}")
            if not readers or len(refused) >= MAX_READERS:
                who = (
                    "the release given with --from"
                    if not auto
                    else "the only candidate writer"
                    if len(refused) == 1
                    else f"{len(refused)} candidate writers"
                )
                result.error = (
                    f"{who} cannot read this store{_with_settings(result)} ({'; '.join(refused)}); "
                    "the store is damaged, or pass --from with the release that wrote it"
                )
                return None
        old = stack.enter_context(Release(readers.pop(0), timeout=timeout))
        result.source_release = old.version
        result.source_release_evidence = _reader_evidence(wr, old.version, refused)


def _direction(result: Validation, wr: dict) -> str:
    """Where the target stands relative to the store's writer.

    Auto-detected, the writer is a *range* of releases with the same schema (a
    1.0.21 store reads as "written by 1.0.0-1.2.2"), so a target inside it is
    "same schema", not a downgrade from the range's newest release. A --from
    given by the user is taken as exact.
    """
    t = Version(result.target_release)
    if result.source_release_evidence.startswith("written by") and wr.get("versions"):
        first, last = Version(wr["first"]), Version(wr["last"])
        return "upgrade" if t > last else "rollback" if t < first else "same schema"
    s = Version(result.source_release)
    return "upgrade" if s < t else "same" if s == t else "rollback"


#: the downgrade rule is a caveat beside the measured checks; ``--refuse-downgrade`` makes it decide
DOWNGRADE_RULE = "downgrade"
CAVEAT = "a caveat, not part of the verdict: the measured checks decide (--refuse-downgrade makes it so)"


def _writer_words(result: Validation) -> str:
    """The writer as the evidence has it: the range when auto-detected (never shortened to its reader)."""
    wr = result.inventory.get("writer_range") or {}
    if result.source_release_evidence.startswith("written by") and len(wr.get("versions") or []) > 1:
        return f"one of chromadb {wr['first']}-{wr['last']} (read with {result.source_release})"
    return f"chromadb {result.source_release}"


def _rollback_check(result: Validation) -> None:
    """A store newer than the target: a caveat, the rule only; what the target does with it is measured.

    Why not a failure by itself: chromadb's own migration check lets a release
    open a store with migrations it does not know, and whether reads and writes
    then go wrong is what the open, compare and write checks measure on the
    user's data; a downgrade every measured check passes used to be NOT SAFE
    on this rule alone. ``--refuse-downgrade`` (:func:`_refuse_downgrade`)
    makes the rule decide. Nothing here says how the target fared: the open
    has not happened yet (:func:`_rule_after_open` adds what it did).
    """
    migrations = result.inventory.get("migrations")
    unknown = writers.unknown_to(result.target_release, migrations) if migrations is not None else None
    newer = result.direction == "rollback"
    if unknown:
        result.direction = "rollback"
        result.checks.append(
            Check(
                "rollback",
                "info",
                f"the store has {len(unknown)} schema migration(s) chromadb "
                f"{result.target_release} does not know ({', '.join(unknown[:3])}): it was written by a "
                "newer release, a downgrade; chromadb does not refuse a store on that ground, so reads "
                f"and writes may silently go wrong; {CAVEAT}",
                None,
                {"rule": DOWNGRADE_RULE, "unknown migrations": unknown},
            )
        )
    elif newer:
        result.checks.append(
            Check(
                "rollback",
                "info",
                f"the store was written by {_writer_words(result)}, newer than "
                f"the target {result.target_release}: a downgrade; {CAVEAT}",
                None,
                {"rule": DOWNGRADE_RULE},
            )
        )
    else:
        result.checks.append(
            Check("rollback", "pass", f"{result.direction}: {_writer_words(result)} -> {result.target_release}")
        )


def _rule_after_open(result: Validation) -> None:
    """Say beside the downgrade rule what the target's open did: the rule never claims an open it did not see."""
    rule = next((c for c in result.checks if c.name == "rollback" and c.evidence.get("rule") == DOWNGRADE_RULE), None)
    opened = next((c for c in result.checks if c.name == "open"), None)
    if rule is None or opened is None:
        return
    did = "opened it" if opened.status == "pass" else "failed to open it (see the open check)"
    rule.detail = rule.detail.replace(f"; {CAVEAT}", f"; chromadb {result.target_release} {did}; {CAVEAT}")


def _refuse_downgrade(result: Validation) -> None:
    """``--refuse-downgrade``: a store newer than the target is "not safe" whatever the measured checks say."""
    for check in result.checks:
        if check.name == "rollback" and check.status == "info" and check.evidence.get("rule") == DOWNGRADE_RULE:
            check.status = "fail"
            check.detail = check.detail.replace(CAVEAT, "not safe on the rule alone (--refuse-downgrade)")


def _open_scope(
    result: Validation, old: Release, new: Release, source_copy: Path, target_copy: Path, scope: Scope
) -> tuple[Client, Client] | None:
    """Clients of one non-default database on both sides; a target that cannot open it fails ``collections``."""
    tenant, database = scope
    label = database_label(scope)
    try:
        src = old.persistent(source_copy, _settings(result), tenant=tenant, database=database)
    except (ChromaError, WorkerError) as exc:
        result.checks.append(
            Check(
                "collections",
                "error",
                f"chromadb {old.version}, which reads this store as the "
                f"source, cannot open database {label}: {compare._err(exc)}; "
                "the store is "
                "damaged, or pass --from with the release that wrote it",
                label,
            )
        )
        return None
    try:
        dst = new.persistent(target_copy, _settings(result), tenant=tenant, database=database)
    except (ChromaError, WorkerError) as exc:
        result.checks.append(
            Check(
                "collections",
                "fail",
                f"chromadb {new.version} cannot open database {label}: {compare._err(exc)}",
                label,
                {"error": compare._err(exc)},
            )
        )
        return None
    return src, dst


def _integrity_check(result: Validation) -> None:
    problems = result.inventory.get("problems") or []
    if problems:
        result.checks.append(
            Check(
                "integrity",
                "pre-existing",
                f"{len(problems)} problem(s) in the store itself; first: {problems[0]}",
                None,
                {"problems": problems},
            )
        )
    hostile = result.inventory.get("hostile_pickles") or []
    if hostile:  # never a defect to live with (--allow-pre-existing): every 0.3-0.6 release runs it on open
        first = hostile[0]
        result.checks.append(
            Check(
                "code-in-store",
                "fail",
                f"{len(hostile)} pickle(s) in the store hold code, not "
                f"data; first: {first['file']} (references "
                f"{', '.join(first['references'])})",
                None,
                {"hostile_pickles": hostile},
            )
        )
    if problems:
        return
    if result.inventory.get("format") != "sqlite":
        result.checks.append(Check("integrity", "skip", "no schema to check in the 0.3 format"))
    else:
        notes = result.inventory.get("notes") or []
        result.checks.append(
            Check(
                "integrity",
                "pass",
                "; ".join(notes) if notes else "every non-empty collection has its vector index directory",
                None,
                {"notes": notes} if notes else {},
            )
        )


def _collections_check(
    result: Validation, src: Client, dst: Client, scope: Scope, selection: Selection | None
) -> list[str]:
    def wanted(name: str) -> bool:
        return selection is None or selection.matches(scope, name)

    src_meta = {n: src.get_collection(n).metadata for n in src.list_collection_names() if wanted(n)}
    dst_names = {n for n in dst.list_collection_names() if wanted(n)}
    missing = sorted(set(src_meta) - dst_names)
    unexpected = sorted(dst_names - set(src_meta))
    changed = {}
    for name in sorted(set(src_meta) & dst_names):
        got = dst.get_collection(name).metadata
        if not values_close(src_meta[name] or None, got or None, [0]):
            changed[name] = {"source": src_meta[name], "target": got}
    legacy = result.inventory.get("format") == "duckdb+parquet" and result.path == "in-place"
    where = database_label(scope)
    if missing or unexpected or changed:
        detail = (
            f"the target sees {len(dst_names)} of {len(src_meta)} collection(s)"
            if missing or unexpected
            else f"collection metadata changed in {len(changed)} collection(s)"
        )
        if legacy:
            detail += "; 0.3 stores (DuckDB/Parquet) are not migrated in place: validate --path export-import"
        result.checks.append(
            Check(
                "collections",
                "fail",
                detail,
                where,
                {"missing in target": missing, "unexpected in target": unexpected, "metadata changed": changed},
            )
        )
    else:
        result.checks.append(
            Check("collections", "pass", f"{len(src_meta)} collection(s) with the same metadata", where)
        )
    return sorted(src_meta)


def _compare(
    result: Validation,
    src: Client,
    dst: Client,
    *,
    scope: Scope,
    batch_size: int,
    progress: Progress | None,
    seed: int,
    selection: Selection | None,
    data: data_options.Options | None = None,
    after_stream: Callable[[], None] | None = None,
) -> None:
    """Every selected collection of one database: its records (``compare``), queries and filters
    (``queries``), the data checks and the user's filters (``data checks``), the write check; each
    phase's seconds are added to ``result.timings``. ``after_stream``: called once each collection's
    records are compared."""
    timings = result.timings
    t0 = time.monotonic()
    try:
        names = _collections_check(result, src, dst, scope, selection)
    except (ChromaError, WorkerError) as exc:
        result.checks.append(
            Check("collections", "error", f"listing collections failed: {compare._err(exc)}", database_label(scope))
        )
        return
    finally:
        timings["compare"] = timings.get("compare", 0.0) + time.monotonic() - t0
    spaces = {c["name"]: c.get("space") for c in result.inventory.get("collections", []) if in_scope(c, scope)}
    recorded = {c["name"]: c.get("dimension") for c in result.inventory.get("collections", []) if in_scope(c, scope)}
    # 1.x keeps the index parameters (M, construction_ef) in the configuration: the query check judges by them
    configs = {c["name"]: c.get("config") for c in result.inventory.get("collections", []) if in_scope(c, scope)}
    for name in names:
        label = scope_label(scope, name)
        t0 = time.monotonic()
        try:
            summary, checks = compare.compare_collection(
                name,
                src,
                dst,
                space=spaces.get(name) or inventory.distance_space(src.get_collection(name).metadata),
                batch_size=batch_size,
                seed=seed,
                label=label,
                config=configs.get(name),
                progress=(lambda n, done, total: progress(f"compare {n}", done, total)) if progress else None,
            )
        except compare.ReadFailed as exc:
            # the target failing is the upgrade's fault; the source failing on its own store means this
            # collection cannot be validated at all (damage, or the wrong --from): exit 2, not a verdict
            if exc.side == "target":
                result.checks.append(Check("count", "fail", str(exc), label, {"side": exc.side, "error": exc.cause}))
            else:
                result.checks.append(
                    Check(
                        "count",
                        "error",
                        f"{exc}; the store is damaged, or pass --from with the release that wrote it",
                        label,
                        {"side": exc.side, "error": exc.cause},
                    )
                )
            continue
        except (ChromaError, WorkerError) as exc:
            result.checks.append(
                Check(
                    "count",
                    "error",
                    f"reading the collection failed: {compare._err(exc)}",
                    label,
                    {"error": compare._err(exc)},
                )
            )
            continue
        finally:
            timings["compare"] = timings.get("compare", 0.0) + time.monotonic() - t0
        own = sum(c.seconds or 0.0 for c in checks if c.name in ("query", "filters"))  # their own seconds
        timings["compare"] -= own
        timings["queries"] = timings.get("queries", 0.0) + own
        if after_stream is not None:
            after_stream()
        result.collections.append(summary)
        result.checks.extend(checks)
        if summary.target_count is None:
            continue  # the target cannot open the collection: the count check says so, there is nothing to write to
        if data is not None:  # before the write check writes to both copies (data_checks.py)
            t0 = time.monotonic()
            result.checks.extend(data.run(label, name, src, dst, summary.source_count or 0, batch_size))
            timings["data checks"] = timings.get("data checks", 0.0) + time.monotonic() - t0
        # every collection, an empty one too; the source's private copy is the baseline (write_check.py)
        t0 = time.monotonic()
        result.checks.append(
            write_check(
                label,
                Collection(dst, {"name": name, "id": ""}),
                dimension_for(summary.dimension, recorded.get(name)),
                source=Collection(src, {"name": name, "id": ""}),
                source_version=src.release.version,
            )
        )
        timings["write check"] = timings.get("write check", 0.0) + time.monotonic() - t0


def _contracts(result: Validation, old: Release, new: Release, lookup: Any = None) -> None:
    """Behaviour changes the code (not the data) will meet: listed, never part of the verdict.
    ``lookup``: the pair's ``measure.Lookup``, under way since the source opened."""
    if old.version == new.version:
        return
    t0 = time.monotonic()
    try:
        from pytest_chroma_compat.contracts import measure

        if lookup is not None and (lookup.old, lookup.new) == (old.version, new.version):
            crossed = lookup.crossed()
        else:
            crossed = measure.crossed(old.version, new.version)
    except Exception as exc:  # noqa: BLE001 - the data verdict stands without this list
        result.checks.append(Check("contracts", "info", f"contracts were not measured: {compare._err(exc)}"))
        return
    result.contracts_crossed = [_contract_json(c) for c in crossed]
    ids = ", ".join(c["id"] for c in result.contracts_crossed)
    result.checks.append(
        Check(
            "contracts",
            "info",
            f"{len(crossed)} behaviour contract(s) change between these "
            f"releases{': ' + ids if ids else ''}; review code that relies on them",
        )
    )
    result.timings["contracts"] = time.monotonic() - t0


def _contract_json(c: Any) -> dict:
    from pytest_chroma_compat.contracts import measure

    return {
        "id": c.contract.id,
        "title": c.contract.title,
        "documented": c.contract.documented,
        "change": measure.describe_change(c.before, c.after),
        "before": measure.compact(c.before),
        "after": measure.compact(c.after),
        "consequence": c.contract.consequence,
    }
