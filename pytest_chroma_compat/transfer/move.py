"""Moving every collection from one side to the other: planned first, copied in batches, resumable.

The order of work is what keeps a user's data safe:
1. Both sides are opened and every collection to copy is listed before one
   record is written. A target that already holds one of them is refused
   (migrate never merges into a collection it did not create), unless the
   journal says this very command created it and stopped part-way.
2. A directory source is copied privately first (``snapshot/sources.py``, the
   copy ``validate`` reads): opening a store can migrate it, and the source
   is never written. A directory with a live writer is refused.
3. Records go through the releases' public APIs, ``export`` pages on one side
   and ``upsert`` batches on the other, the journal saved after each batch.
4. With ``verify``, both sides are read back and compared (``verify.py``).

Collection settings cross eras by a table (``SETTINGS_RULES``): 1.x keeps the
index settings in a configuration, 0.4-0.6 in ``hnsw:*`` metadata.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from packaging.specifiers import SpecifierSet

from pytest_chroma_compat.common.errors import ChromaError
from pytest_chroma_compat.common.progress import Progress
from pytest_chroma_compat.common.scopes import DEFAULT_SCOPE, Scope, Selection, scope_label, store_scopes
from pytest_chroma_compat.engine import cache_dirs, leftovers
from pytest_chroma_compat.engine.client import Client, Collection, Release
from pytest_chroma_compat.roundtrip.paths import detect_format, groups_by_fields
from pytest_chroma_compat.transfer import endpoints, lock, verify
from pytest_chroma_compat.transfer.endpoints import Side, TransferError
from pytest_chroma_compat.transfer.journal import Journal, location

RELEASE_SIDE = str(Path(__file__).resolve().parent.parent / "engine" / "release_side")
OPS = "chroma_compat_transfer_ops"
BATCH = 1000
MAX_READERS = 3
#: below this much free space, a target release's refusal is the full disk, whatever its own words say (a
#: batch of 1,000 records with 384-dimensional vectors takes ~2 MiB in the WAL alone)
FULL_DISK_BYTES = 16 * 1024 * 1024

#: How a collection's settings are carried (source family, target family): first match wins.
#: "configuration": 1.x's configuration as read (its embedding function left out: never carried);
#: "metadata": the collection metadata as read, ``hnsw:*`` keys included; "config-to-metadata": 1.x's
#: HNSW configuration written as the ``hnsw:*`` metadata an older release reads.
SETTINGS_RULES: tuple[dict, ...] = (
    {"source": ">=1.0.0", "target": ">=1.0.0", "carry": "configuration"},
    {"source": ">=1.0.0", "target": "<1.0.0", "carry": "config-to-metadata"},
    {"source": "<1.0.0", "target": "", "carry": "metadata"},
)
#: 1.x configuration key -> the 0.x metadata key that means the same
HNSW_METADATA = {
    "space": "hnsw:space",
    "ef_construction": "hnsw:construction_ef",
    "ef_search": "hnsw:search_ef",
    "max_neighbors": "hnsw:M",
    "num_threads": "hnsw:num_threads",
    "resize_factor": "hnsw:resize_factor",
    "batch_size": "hnsw:batch_size",
    "sync_threshold": "hnsw:sync_threshold",
}
CONFIG_SECTIONS = ("hnsw", "spann")


@dataclass
class Planned:
    scope: Scope
    name: str
    total: int
    resume_from: int = 0
    done: bool = False

    @property
    def label(self) -> str:
        return scope_label(self.scope, self.name)


@dataclass
class Outcome:
    source: Side
    target: Side
    copied: dict[str, int] = field(default_factory=dict)
    verified: list[verify.Verified] = field(default_factory=list)
    resumed: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def differences(self) -> list[verify.Verified]:
        return [v for v in self.verified if not v.ok]

    def as_dict(self) -> dict[str, Any]:
        side = lambda s: {"spec": s.spec, "kind": s.kind, "version": s.version, "evidence": s.evidence}  # noqa: E731
        return {
            "source": side(self.source),
            "target": side(self.target),
            "copied": self.copied,
            "resumed": self.resumed,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
            "verified": [v.as_dict() for v in self.verified] if self.verified else None,
            "ok": not self.differences,
        }


def carry_rule(source: str, target: str) -> str:
    for row in SETTINGS_RULES:
        if source in SpecifierSet(row["source"]) and target in SpecifierSet(row["target"]):
            return row["carry"]
    raise AssertionError("SETTINGS_RULES covers every pair")


def settings_for(rule: str, info: dict) -> dict[str, Any]:
    """``create`` arguments for the target from the source's ``describe``."""
    metadata = dict(info.get("metadata") or {})
    config = info.get("configuration") or {}
    if rule == "configuration" and not any(k.startswith("hnsw:") for k in metadata):
        carried = {
            s: {k: v for k, v in config[s].items() if v is not None}
            for s in CONFIG_SECTIONS
            if isinstance(config.get(s), dict)
        }
        return {"metadata": metadata or None, "configuration": carried or None}
    if rule == "config-to-metadata" and isinstance(config.get("hnsw"), dict):
        for key, value in config["hnsw"].items():
            if key in HNSW_METADATA and value is not None:
                metadata.setdefault(HNSW_METADATA[key], value)
    return {"metadata": metadata or None}


class Mover:
    """One ``migrate`` run; a context manager that closes every worker and removes the private copy."""

    def __init__(
        self,
        source: str,
        target: str,
        *,
        source_version: str | None = None,
        target_version: str | None = None,
        source_headers: dict | None = None,
        target_headers: dict | None = None,
        databases: list[Scope] | None = None,
        collections: list[str] | None = None,
        batch_size: int = BATCH,
        timeout: float | None = None,
        progress: Progress | None = None,
        say: Callable[[str], None] = lambda s: None,
    ) -> None:
        self.stack = ExitStack()
        self._releases: dict[tuple[str, str], Release] = {}
        self.progress, self.say, self.batch_size = progress, say, batch_size
        self.timeout = timeout
        self.selection = Selection(collections) if collections else None
        self.databases = databases
        try:  # a refusal here (a bad target, an unreadable source) must not leave the private copy behind
            # one run per target (transfer/lock.py): taken before the source is copied or a side is opened
            key = endpoints.identity(target)
            held = lock.hold(
                key, target if not endpoints.is_url(target) else "server {}:{}".format(*endpoints.parse_url(target))
            )
            self.stack.callback(lock.release, key, held)
            self.source = self._source(source, source_version, source_headers or {})
            self.target = self._target(target, target_version, target_headers or {})
        except BaseException:
            self.stack.close()
            raise

    def __enter__(self) -> Mover:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stack.close()

    # -- sides ---------------------------------------------------------------------------

    def _release(self, version: str, role: str) -> Release:
        """One worker per side and release (a source and a target of the same release stay apart)."""
        if (role, version) not in self._releases:
            kwargs = {"timeout": self.timeout} if self.timeout else {}
            self._releases[(role, version)] = self.stack.enter_context(Release(version, **kwargs))
        return self._releases[(role, version)]

    def _source(self, spec: str, version: str | None, headers: dict) -> Side:
        if endpoints.is_url(spec):
            side = self._server("source", spec, version, headers, "--source-version")
            side.scopes = self.databases or [DEFAULT_SCOPE]
            return side
        from pytest_chroma_compat.snapshot import inventory, sources, store_state

        try:
            store_state.refuse_live_writer(spec)
        except store_state.LiveWriter as exc:
            raise TransferError(str(exc)) from None
        work = Path(tempfile.mkdtemp(prefix=leftovers.prefix("migrate"), dir=cache_dirs.scratch_dir()))
        self.stack.callback(shutil.rmtree, work, True)
        copy = sources.materialize(spec, work)
        try:
            inv = inventory.take(copy.path)
        except inventory.StoreUnreadable as exc:
            raise TransferError(f"{spec}: {exc}") from None
        side = Side("source", spec, "directory", path=copy.path)
        wr = inv.get("writer_range") or {}
        if version:
            side.version, side.evidence = (
                endpoints.catalogued(version, "source", "--source-version"),
                "--source-version",
            )
        elif wr.get("source_release"):
            side.version = wr["source_release"]
            side.readers = [v for v in wr.get("readers") or [] if v != side.version][: MAX_READERS - 1]
            side.evidence = f"written by one of chromadb {wr.get('first')}-{wr.get('last')} ({wr.get('evidence')})"
        else:
            raise TransferError(
                f"{spec}: cannot tell which release wrote this store "
                f"({wr.get('evidence', 'no evidence')}); pass --source-version"
            )
        scopes, unplaced = store_scopes(inv)
        if unplaced:
            self.say(
                f"migrate: skipped {len(unplaced)} collection(s) in no database the store lists: "
                f"{', '.join(unplaced[:5])}"
            )
        side.scopes = [s for s in scopes if self.databases is None or s in self.databases]
        return side

    def _server(self, role: str, spec: str, version: str | None, headers: dict, flag: str) -> Side:
        header_flag = f"--{role}-header"
        host, port = endpoints.parse_url(spec, header_flag)
        reported = endpoints.server_version(host, port, headers, header_flag=header_flag)
        side = Side(role, spec, "server", host=host, port=port, headers=headers)
        side.version, side.evidence = endpoints.server_release(reported, version, role, flag)
        try:  # /version answers anyone: a listing is what token auth guards, asked before any work
            self._open(side, self._release(side.version, role), DEFAULT_SCOPE).list_collection_names()
        except ChromaError as exc:
            refusal = endpoints.auth_refusal(exc, side, header_flag)
            if refusal is None:
                raise
            raise refusal from None
        return side

    def _target(self, spec: str, version: str | None, headers: dict) -> Side:
        if endpoints.is_url(spec):
            return self._server("target", spec, version, headers, "--target-version")
        path = Path(spec).expanduser()
        if path.exists() and not path.is_dir():
            raise TransferError(f"{spec}: the target exists and is not a directory")
        if self.source.kind == "directory" and _inside(path, Path(self.source.spec).expanduser()):
            raise TransferError(f"{spec}: the target directory is the source or inside it")
        fmt = detect_format(path) if path.exists() else "empty"
        if fmt not in ("empty", "sqlite"):
            raise TransferError(
                f"{spec}: the target directory holds files that are not a Chroma store "
                f"({fmt}); give an empty or new directory"
            )
        resumed = None
        if fmt == "sqlite" and not version:
            version = resumed = self._interrupted_target_version(path)
            if version is None:
                raise TransferError(
                    f"{spec}: the target is an existing store; pass --target-version (the release that will open it)"
                )
        side = Side("target", spec, "directory", path=path)
        if resumed:
            side.version, side.evidence = resumed, "the release the interrupted run of this command wrote it with"
        elif version:
            side.version, side.evidence = (
                endpoints.catalogued(version, "target", "--target-version"),
                "--target-version",
            )
        else:
            side.version, side.evidence = self.source.version, "the source's release (no --target-version)"
        return side

    def _interrupted_target_version(self, path: Path) -> str | None:
        """The release an interrupted run of this very command wrote ``path`` with (its journal),
        so that the same command resumes it: the store it began is not "an existing store"."""
        target = str(path.resolve())
        found = Journal(location(self.source.identity, target), self.source.identity, target)
        version = found.data.get("target_version") if found.resumed else None
        if not isinstance(version, str) or not version:
            return None
        try:  # read from a file: only a release this harness installs may decide what it installs
            return endpoints.catalogued(version, "target", "--target-version")
        except TransferError:
            return None

    def _open(self, side: Side, release: Release, scope: Scope) -> Client:
        tenant, database = scope
        if side.kind == "server":
            return release.http(side.host, side.port, headers=side.headers or None, tenant=tenant, database=database)
        assert side.path is not None
        side.path.mkdir(parents=True, exist_ok=True)
        return release.persistent(side.path, tenant=tenant, database=database)

    def _open_source(self, scope: Scope) -> tuple[Release, Client]:
        """The detected reader first; one that refuses the store gives way to the next candidate."""
        tried: list[str] = []
        for version in [self.source.version, *self.source.readers]:
            release = self._release(version, "source")
            try:
                client = self._open(self.source, release, scope)
                client.list_collection_names()
            except ChromaError as exc:
                tried.append(f"chromadb {version}: {str(exc).splitlines()[0][:200]}")
                continue
            if version != self.source.version:
                self.source.evidence += f"; read with chromadb {version} ({'; '.join(tried)})"
                self.source.version = version
            return release, client
        raise TransferError(f"{self.source.spec}: no release could open the source ({'; '.join(tried)})")

    # -- the move ------------------------------------------------------------------------

    def run(self, *, check: bool = False) -> Outcome:
        started = time.monotonic()
        journal = Journal(
            location(self.source.identity, self.target.identity), self.source.identity, self.target.identity
        )
        out = Outcome(self.source, self.target, resumed=journal.resumed)
        rule = carry_rule(self.source.version, self.target.version)
        sources: list[tuple[Scope, Client, list[Planned]]] = []
        for scope in self.source.scopes:  # 1. plan everything, and refuse, before the target is touched
            _, src = self._open_source(scope)
            planned = []
            for name in src.list_collection_names():
                if self.selection is None or self.selection.matches(scope, name):
                    item = Planned(scope, name, src.get_collection(name).count())
                    entry = journal.entry(item.label)
                    if entry is not None:
                        item.resume_from, item.done = int(entry["copied"]), bool(entry["done"])
                    planned.append(item)
            sources.append((scope, src, planned))
        if self.selection is not None:
            unknown = self.selection.unknown([(p.scope, p.name) for *_, plan in sources for p in plan])
            if unknown:
                raise TransferError(f"no collection named {', '.join(unknown)} in the source")
        self._refuse_merges(journal, sources)
        # saved before the target is touched: a run killed from here on is this command's to resume
        journal.data["target_version"] = self.target.version
        journal.save()
        if journal.resumed:
            done = sum(p.done for *_, plan in sources for p in plan)
            total = sum(len(plan) for *_, plan in sources)
            self.say(
                f"migrate: resuming the run begun {time.ctime(journal.data['started'])}: {done} of {total} "
                "collection(s) done"
            )
        if self.target.kind == "directory" and detect_format(self.target.path) == "empty":  # type: ignore[arg-type]
            self._initialize(self.target.path)  # type: ignore[arg-type]
        target_release = self._release(self.target.version, "target")
        root = self._open(self.target, target_release, DEFAULT_SCOPE)
        pairs = []
        for scope, src, planned in sources:  # 2. copy
            if scope != DEFAULT_SCOPE:
                root.ensure_database(*scope)
            tgt = self._open(self.target, target_release, scope)
            for item in planned:
                out.copied[item.label] = self._copy(item, src, tgt, rule, journal)
            pairs.append((src, tgt, planned))
        if check:  # 3. read both sides back
            for src, tgt, planned in pairs:
                for item in planned:
                    out.verified.append(self._verify(item, src, tgt))
        journal.remove()
        out.seconds = time.monotonic() - started
        return out

    def _initialize(self, path: Path) -> None:
        """Create the new target store beside it, then rename it into place.

        Why: a release creates its schema in many steps (0.6.3: 15 migrations, not one transaction),
        and a store killed half-way through them opens later and fails on a missing column
        (measured: "no such column: embedding_metadata.bool_value" after a kill -9 while 0.6.3
        created it). Renamed only once complete, the target is either absent or a whole store. The
        staging folder has a fixed name, so the same command, run again, removes a killed one's.
        A separate worker creates it, so no open handle follows the rename."""
        staging = path.parent / f".{path.name}.migrate-init"
        if staging.is_dir() and not staging.is_symlink() and detect_format(staging) in ("sqlite", "empty"):
            shutil.rmtree(staging, ignore_errors=True)  # a killed run's half-made store (nothing else)
        elif staging.exists() or staging.is_symlink():
            raise TransferError(
                f"{staging} is in the way (migrate creates a new target store there first); "
                "move it, or choose another target"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with Release(self.target.version, **({"timeout": self.timeout} if self.timeout else {})) as release:
                release.persistent(staging).list_collection_names()
            mode = path.stat().st_mode & 0o7777 if path.is_dir() else None  # an empty folder the user made
            os.rename(staging, path)  # onto a missing or empty directory: atomic
            if mode is not None:
                os.chmod(path, mode)
        except OSError:  # another filesystem, a mount point: created in place, as before
            path.mkdir(parents=True, exist_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _refuse_merges(self, journal: Journal, sources: list[tuple[Scope, Client, list[Planned]]]) -> None:
        """A collection the target holds and this run did not create stops the run before any write.
        A new or empty target directory holds nothing, and is not created just to be looked at."""
        if self.target.kind == "directory" and detect_format(self.target.path) == "empty":  # type: ignore[arg-type]
            return
        release = self._release(self.target.version, "target")
        for scope, _, planned in sources:
            try:
                present = set(self._open(self.target, release, scope).list_collection_names())
            except ChromaError:  # a database the target does not have yet holds nothing
                continue
            for item in planned:
                if item.name in present and journal.entry(item.label) is None:
                    raise TransferError(
                        f"the target already holds collection {item.label}: migrate never "
                        "merges into a collection it did not create (delete it there, or pick "
                        "another target)"
                    )

    def _full_disk(self) -> str:
        """ "the target's disk is full: ..." when a directory target has (nearly) no room left, else ""."""
        if self.target.kind != "directory" or self.target.path is None:
            return ""
        from pytest_chroma_compat.snapshot.safecopy import free_space, human

        free = free_space(Path(self.target.path))
        if free >= FULL_DISK_BYTES:
            return ""
        return f"the target's disk is full: {human(free)} free in {self.target.path}"

    def _describe(self, client: Client, name: str) -> dict:
        return client.release.run(f"{OPS}:describe", client=client, sys_path=[RELEASE_SIDE], name=name)

    def _check_resume(self, item: Planned, tgt: Client, journal: Journal) -> None:
        """The journal's offset is trusted only as far as the target bears it out: records up to it were
        written before it was saved, so the target holds at least that many (more when a batch went in
        and the kill came before the save), and a done collection holds them all. Anything else (a
        crafted or corrupted journal, a target changed since) is copied again from the start, said
        aloud: ``upsert`` makes that safe, where trusting it would skip records silently."""
        try:
            held = tgt.get_collection(item.name).count()
        except ChromaError:
            held = 0
        if item.resume_from <= min(held, item.total) and (not item.done or held == item.total == item.resume_from):
            return
        self.say(
            f"migrate: the journal says {item.resume_from} of {item.total} records of {item.label} were copied"
            f"{' (done)' if item.done else ''}, but the target holds {held}: copying it again from the start"
        )
        item.resume_from, item.done = 0, False
        journal.data["collections"][item.label].update(copied=0, done=False)

    def _copy(self, item: Planned, src: Client, tgt: Client, rule: str, journal: Journal) -> int:
        if item.resume_from or item.done:
            self._check_resume(item, tgt, journal)
        if item.done:
            return item.total
        if item.resume_from == 0:
            # claimed in the journal before it is created: a kill between the two leaves a collection
            # the rerun knows it made (created only when the target does not hold it yet)
            fresh = journal.entry(item.label) is None
            journal.begin(item.label, item.total)
            journal.save()
            if fresh or item.name not in tgt.list_collection_names():
                info = self._describe(src, item.name)
                tgt.release.run(
                    f"{OPS}:create", client=tgt, sys_path=[RELEASE_SIDE], name=item.name, **settings_for(rule, info)
                )
        journal.begin(item.label, item.total)
        journal.save()
        source_col, target_col = src.get_collection(item.name), Collection(tgt, {"name": item.name, "id": ""})
        copied = item.resume_from
        label = f"copy {item.label}"
        if self.progress:
            self.progress(label, copied, item.total)
        for page in source_col.export(batch_size=self.batch_size, offset=copied):
            for group in groups_by_fields(page):
                try:
                    target_col.upsert(**group)
                except ChromaError as exc:  # the target release's refusal: not a harness bug, and resumable
                    full = self._full_disk()
                    if full:  # the release's own words ("Error purging logs") do not say why: we do
                        raise TransferError(
                            f"{full}; {item.label} stopped after {copied} records; free space and "
                            "rerun the same command (it resumes)"
                        ) from None
                    raise TransferError(
                        f"chromadb {self.target.version} refused records of {item.label} "
                        f"(after {copied} copied): {str(exc).splitlines()[0][:300]}"
                    ) from None
            copied += len(page["ids"])
            journal.advance(item.label, copied)
            if self.progress:
                self.progress(label, copied, item.total)
        journal.finish(item.label)
        return copied

    def _verify(self, item: Planned, src: Client, tgt: Client) -> verify.Verified:
        label = f"verify {item.label}"
        tick = (lambda done, total: self.progress(label, done, total)) if self.progress else None  # noqa: E731
        return verify.collection(
            item.label,
            src.get_collection(item.name),
            tgt.get_collection(item.name),
            self._describe(src, item.name),
            self._describe(tgt, item.name),
            tick,
            control=self._control,
        )

    def _control(self, records: dict, space: str) -> dict:
        """``records`` as the target release returns them after writing them itself into a fresh
        in-memory collection of the same space: what its own write path makes of them."""
        import numpy as np

        release = self._release(self.target.version, "control")
        ids = list(records["ids"])
        with release.ephemeral() as client:
            name = f"control-{uuid.uuid4().hex[:12]}"
            col = client.create_collection(name, metadata={"hnsw:space": space})
            batch = {
                "ids": ids,
                "embeddings": np.asarray(records["embeddings"], dtype=np.float64),
                "documents": records["documents"],
                "metadatas": records["metadatas"],
            }
            for group in groups_by_fields(batch):
                col.add(**group)
            got = col.get(ids=ids, include=["embeddings", "documents", "metadatas"])
            client.delete_collection(name)
        rows = [{rid: k for k, rid in enumerate(got["ids"])}[rid] for rid in ids]
        vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)
        pick = lambda values: None if values is None else [values[k] for k in rows]  # noqa: E731
        return {
            "ids": ids,
            "embeddings": vectors[rows],
            "documents": pick(got.get("documents")),
            "metadatas": pick(got.get("metadatas")),
        }


def _inside(path: Path, other: Path) -> bool:
    a, b = path.resolve(), other.resolve()
    return a == b or b in a.parents
