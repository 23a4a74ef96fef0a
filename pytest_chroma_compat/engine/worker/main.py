"""The worker: runs inside one release's environment and serves the host over stdin/stdout.

Run as ``<env>/bin/python main.py --adapter NAME``. Stdlib only (plus what the
release itself brings), because nothing of ours is installed in the env.

Why it is built this way:
- chromadb and native code print to stdout; the protocol gets a private
  duplicate of fd 1 and fd 1 itself is pointed at stderr, so no stray print
  can corrupt a reply.
- Every failure inside a call, ``BaseException`` included (the 1.x Rust core
  raises ``pyo3_runtime.PanicException``), becomes a structured error reply and
  the loop keeps serving. Timeouts and crashes are the host's job: it kills
  the process group and reports the exit status and the tail of stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from typing import Any, Callable

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
# -- trust: store pickles are data, never code (safe_pickle.py); first, before anything imports chromadb --
import safe_pickle  # noqa: E402

safe_pickle.install()
import adapters  # noqa: E402
import filter_oracle  # noqa: E402
import fingerprint  # noqa: E402
import wire  # noqa: E402

sys.path.remove(_HERE)  # our file names must not shadow the release's modules
del sys.modules["adapters"], sys.modules["fingerprint"], sys.modules["wire"], sys.modules["safe_pickle"]
del sys.modules["filter_oracle"]

OPS: dict[str, Callable[..., Any]] = {}
STREAM_OPS: set[str] = set()


def op(name: str, stream: bool = False) -> Callable:
    def register(fn: Callable) -> Callable:
        OPS[name] = fn
        if stream:
            STREAM_OPS.add(name)
        return fn

    return register


def _drop_none(**kwargs: Any) -> dict:
    """Releases differ in their defaults; only pass what the caller set."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _vectors(value: Any) -> Any:
    if isinstance(value, dict) and wire.ND in value:
        return wire.unpack_rows(value)
    return value


class State:
    def __init__(self, adapter_name: str) -> None:
        self.adapter_name = adapter_name
        self._adapter: Any = None
        self.clients: dict[int, Any] = {}
        self.collections: dict[tuple[int, str], Any] = {}
        self.digests: dict[str, Any] = {}  # running collection digests, by the host's token
        self.expected: dict[str, Any] = {}  # what the data says each filter matches, by the same token
        self.next_client = 1

    @property
    def adapter(self) -> Any:
        if self._adapter is None:
            self._adapter = adapters.load(self.adapter_name)
        return self._adapter

    def client(self, handle: int) -> Any:
        try:
            return self.clients[handle]
        except KeyError:
            raise LookupError(f"no open client with handle {handle}") from None

    def collection(self, handle: int, name: str) -> Any:
        key = (handle, name)
        if key not in self.collections:
            self.collections[key] = self.adapter.get_collection(self.client(handle), name)
        return self.collections[key]

    def forget(self, handle: int, name: str | None = None) -> None:
        for key in [k for k in self.collections if k[0] == handle and (name is None or k[1] == name)]:
            del self.collections[key]


def _info(col: Any) -> dict:
    return {"name": col.name, "id": str(col.id), "metadata": wire.to_jsonable(col.metadata)}


def _pack_embeddings(value: Any) -> Any:
    """A float64 array whose values are all float32 (1.x returns stored float32 vectors widened)
    travels as float32 bytes marked to come back as float64: half the bytes, the same values."""
    if getattr(value, "dtype", None) is not None and str(value.dtype) == "float64" and value.size:
        import numpy as np

        narrow = value.astype(np.float32)
        if np.array_equal(narrow, value):
            packed = wire.pack_ndarray(narrow, "ndarray")
            packed["restore"] = "float64"
            return packed
    return wire.pack_embeddings(value)


def _result(res: Any, nested: bool) -> dict:
    out = {}
    for key, value in dict(res).items():
        if key == "embeddings" and value is not None:
            out[key] = [_pack_embeddings(v) for v in value] if nested else _pack_embeddings(value)
        elif key in ("data", "uris") and value is None:
            out[key] = None
        else:
            out[key] = value  # wire.dumps encodes numpy scalars and arrays on the way out
    out["_types"] = {k: type(v).__name__ for k, v in dict(res).items()}
    return out


# -- process and release info ---------------------------------------------------------


@op("hello")
def hello(state: State) -> dict:
    started = time.perf_counter()
    import chromadb  # type: ignore

    info = {
        "protocol": wire.PROTOCOL_VERSION,
        "chromadb": getattr(chromadb, "__version__", "unknown"),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "pid": os.getpid(),
        "adapter": state.adapter_name,
        "import_seconds": time.perf_counter() - started,
    }
    for module in ("numpy", "sqlite3", "pydantic", "hnswlib", "duckdb"):
        try:
            mod = importlib.import_module(module)
            info[module] = getattr(mod, "sqlite_version", None) or getattr(mod, "__version__", "?")
        except Exception:
            info[module] = None
    return info


@op("ping")
def ping(state: State) -> str:
    return "pong"


# -- clients ----------------------------------------------------------------------------


@op("open")
def open_client(
    state: State,
    kind: str,
    path: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: dict | None = None,
    headers: dict | None = None,
    tenant: str | None = None,
    database: str | None = None,
) -> dict:
    if kind == "persistent":
        client = state.adapter.persistent(path, settings, tenant, database)
    elif kind == "ephemeral":
        client = state.adapter.ephemeral(settings)
    elif kind == "http":
        client = state.adapter.http(host, port, settings, headers, tenant, database)
    else:
        raise ValueError(f"unknown client kind {kind!r}")
    handle = state.next_client
    state.next_client += 1
    state.clients[handle] = client
    return {"client": handle}


@op("close")
def close_client(state: State, client: int) -> None:
    obj = state.clients.pop(client, None)
    state.forget(client)
    if obj is not None:
        state.adapter.close(obj)


@op("ensure_database")
def ensure_database(state: State, client: int, tenant: str, database: str) -> None:
    state.adapter.ensure_database(state.client(client), tenant, database)


@op("flush")
def flush(state: State, client: int) -> None:
    state.adapter.flush(state.client(client))


@op("reset")
def reset(state: State, client: int) -> Any:
    state.forget(client)
    return wire.to_jsonable(state.client(client).reset())


@op("heartbeat")
def heartbeat(state: State, client: int) -> Any:
    return wire.to_jsonable(state.client(client).heartbeat())


@op("list_collections")
def list_collections(state: State, client: int) -> dict:
    names, returned = state.adapter.collection_names(state.client(client))
    return {"names": names, "returned": returned}


@op("create_collection")
def create_collection(
    state: State, client: int, name: str, metadata: dict | None = None, get_or_create: bool = False
) -> dict:
    col = state.adapter.create_collection(state.client(client), name, metadata, get_or_create)
    state.collections[(client, name)] = col
    return _info(col)


@op("get_collection")
def get_collection(state: State, client: int, name: str) -> dict:
    state.forget(client, name)
    return _info(state.collection(client, name))


@op("delete_collection")
def delete_collection(state: State, client: int, name: str) -> None:
    state.forget(client, name)
    state.client(client).delete_collection(name=name)


@op("modify_collection")
def modify_collection(
    state: State, client: int, collection: str, name: str | None = None, metadata: dict | None = None
) -> dict:
    col = state.collection(client, collection)
    col.modify(**_drop_none(name=name, metadata=metadata))
    state.forget(client, collection)
    return _info(col)


# -- records ----------------------------------------------------------------------------


def _write(method: str) -> Callable:
    def write(
        state: State,
        client: int,
        collection: str,
        ids: list,
        embeddings: Any = None,
        documents: list | None = None,
        metadatas: list | None = None,
    ) -> None:
        col = state.collection(client, collection)
        getattr(col, method)(
            **_drop_none(ids=ids, embeddings=_vectors(embeddings), documents=documents, metadatas=metadatas)
        )

    return write


for _name in ("add", "upsert", "update"):
    op(_name)(_write(_name))


@op("delete")
def delete(
    state: State,
    client: int,
    collection: str,
    ids: list | None = None,
    where: dict | None = None,
    where_document: dict | None = None,
) -> Any:
    col = state.collection(client, collection)
    return wire.to_jsonable(col.delete(**_drop_none(ids=ids, where=where, where_document=where_document)))


@op("get")
def get(
    state: State,
    client: int,
    collection: str,
    ids: list | None = None,
    where: dict | None = None,
    where_document: dict | None = None,
    limit: int | None = None,
    offset: int | None = None,
    include: list | None = None,
) -> dict:
    col = state.collection(client, collection)
    res = col.get(
        **_drop_none(ids=ids, where=where, where_document=where_document, limit=limit, offset=offset, include=include)
    )
    return _result(res, nested=False)


@op("query")
def query(
    state: State,
    client: int,
    collection: str,
    query_embeddings: Any,
    n_results: int = 10,
    where: dict | None = None,
    where_document: dict | None = None,
    include: list | None = None,
) -> dict:
    col = state.collection(client, collection)
    res = col.query(
        **_drop_none(
            query_embeddings=_vectors(query_embeddings),
            n_results=n_results,
            where=where,
            where_document=where_document,
            include=include,
        )
    )
    return _result(res, nested=True)


@op("id_digest")
def id_digest(
    state: State,
    client: int,
    collection: str,
    where: dict | None = None,
    where_document: dict | None = None,
    sample: int = 10,
) -> dict:
    """How many ids a filter matches and an order-independent digest of them.

    Why not return the ids: a filter on a million-record store can match them
    all, and the host must stay bounded (the worker holds them once, as strings).
    Two releases agree on a filter when count and digest agree; ``sample`` (the
    smallest ids) is the evidence when not.
    """
    import hashlib
    import heapq

    col = state.collection(client, collection)
    # one call: paging a filter with offsets re-runs it per page (quadratic), and ids alone are small
    ids = col.get(**_drop_none(where=where, where_document=where_document, include=[]))["ids"]
    digest = 0
    for rid in ids:
        digest = (digest + int.from_bytes(hashlib.blake2b(rid.encode(), digest_size=8).digest(), "big")) % (1 << 64)
    total, smallest = len(ids), heapq.nsmallest(sample, ids)
    return {"count": total, "digest": f"{digest:016x}", "sample": smallest}


@op("id_digests")
def id_digests(state: State, client: int, collection: str, filters: list, sample: int = 10) -> list:
    """``id_digest`` for many filters in one call, each answer or its error (``{"error": ...}``).

    Why: validate's data checks ask hundreds of filters (every stored value of a key, three
    operators); one pipe round trip each cost more than the release spent answering them.
    """
    out = []
    for f in filters:
        try:
            out.append(
                id_digest(
                    state,
                    client,
                    collection,
                    where=f.get("where"),
                    where_document=f.get("where_document"),
                    sample=sample,
                )
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # PanicException (1.x's Rust core) is a BaseException
            text = " ".join(str(exc).split())[:300] or type(exc).__name__
            out.append({"error": f"{type(exc).__name__}: {text}"})
    return out


def _rows(values: Any, rows: list[int]) -> list | None:
    return None if values is None else [values[j] for j in rows]


@op("fingerprint")
def fingerprint_page(
    state: State,
    client: int,
    collection: str,
    ids: list,
    digest: str | None = None,
    records: bool = False,
    queries: Any = None,
    space: str = "l2",
    k: int = 10,
    filters: bool = False,
) -> dict:
    """Read records by id and summarize them here: the ids found (in the order asked),
    a hash of their content, and, asked for, the page's nearest neighbours of the
    ``queries`` and the records themselves.

    Why by id: both releases are asked for the same ids, so their pages line up
    whatever order each returns records in; and chromadb's ``offset`` costs a scan
    of every record before it (measured on 1.5.9: an ids-only page at offset 99k
    takes 2.4x the one at 0), while a page by id costs the same anywhere.
    ``digest`` names a running collection digest this page is added to.
    ``filters`` (with ``digest``): the first page picks filters (returned as
    ``filters``) and every page adds what its records say they match; read the
    sums with ``take_expected``. Why here: the records are at hand, and a defect
    both releases share (a corrupted full-text index) shows only against the data.
    """
    import numpy as np

    col = state.collection(client, collection)
    res = col.get(ids=ids, include=fingerprint.RECORD_FIELDS)
    got = list(res["ids"])
    vectors = fingerprint.float32_rows(res.get("embeddings"), len(got))
    documents, metadatas = res.get("documents"), res.get("metadatas")
    documents, metadatas = (
        None if documents is None else list(documents),
        None if metadatas is None else list(metadatas),
    )
    if got == ids:  # the usual answer: nothing to reorder
        found, rows = got, None
    else:
        where = {rid: j for j, rid in enumerate(got)}
        rows = [where[rid] for rid in ids if rid in where]
        found = [got[j] for j in rows]
        documents, metadatas = _rows(documents, rows), _rows(metadatas, rows)
        vectors = None if vectors is None else vectors[rows]
    width = None if vectors is None else int(vectors.shape[1])
    page = fingerprint.parts(found, documents, metadatas, vectors, wire.default)
    if digest:
        state.digests.setdefault(digest, fingerprint.Digest()).update(page)
    out: dict = {
        "ids": found,
        "hash": fingerprint.page_hash(page, width),
        "dimension": width,
        "unrequested": len(got) - len(found),
    }
    if filters and digest and found:
        if digest not in state.expected:
            picked = filter_oracle.pick(metadatas or [], documents or [])
            state.expected[digest] = filter_oracle.Expected(picked)
            out["filters"] = picked
        state.expected[digest].update(found, documents, metadatas)
    if queries is not None:
        q = np.asarray(_vectors(queries), dtype=np.float64)
        out["nearest"] = fingerprint.nearest(found, vectors, q.reshape(len(q), -1), space, k)
    if records:
        out["records"] = {
            "ids": found,
            "documents": documents,
            "metadatas": metadatas,
            "embeddings": None if vectors is None else wire.pack_ndarray(vectors),
        }
    return out


@op("fingerprints", stream=True)
def fingerprints(state: State, emit: Callable, client: int, collection: str, pages: list, **fixed: Any) -> int:
    """``fingerprint`` for several pages in one call, each page's answer streamed back as soon as it is
    read. Why: one call per page left the worker idle for a round trip through the host between pages
    (validate's compare stream ran at about half the rate of two readers reading on their own)."""
    import numpy as np

    if fixed.get("queries") is not None:  # decoded once, not once per page
        q = np.asarray(_vectors(fixed["queries"]), dtype=np.float64)
        fixed["queries"] = q.reshape(len(q), -1)
    for ids in pages:
        emit(fingerprint_page(state, client, collection, ids, **fixed))
    return len(pages)


@op("take_digest")
def take_digest(state: State, token: str) -> str | None:
    """The running digest named ``token`` (see ``fingerprint``), forgotten once read."""
    running = state.digests.pop(token, None)
    return None if running is None else running.hexdigest()


@op("take_expected")
def take_expected(state: State, token: str) -> list | None:
    """Per filter picked under ``token`` (see ``fingerprint``): what the records read say it matches."""
    expected = state.expected.pop(token, None)
    return None if expected is None else expected.result()


@op("count")
def count(state: State, client: int, collection: str) -> int:
    return state.collection(client, collection).count()


@op("peek")
def peek(state: State, client: int, collection: str, limit: int = 10) -> dict:
    return _result(state.collection(client, collection).peek(limit=limit), nested=False)


@op("export", stream=True)
def export(
    state: State,
    emit: Callable,
    client: int,
    collection: str,
    batch_size: int = 1000,
    include: list | None = None,
    offset: int = 0,
) -> dict:
    """Stream a whole collection in pages of ``batch_size``; memory stays bounded by one page.
    ``offset`` resumes an interrupted stream (an unchanged store pages in the same order)."""
    col = state.collection(client, collection)
    include = include if include is not None else ["embeddings", "documents", "metadatas"]
    total = col.count()
    batches = 0
    while offset < total:
        res = col.get(limit=batch_size, offset=offset, include=include)
        if not res["ids"]:
            break
        emit(_result(res, nested=False))
        offset += len(res["ids"])
        batches += 1
    return {"records": offset, "batches": batches, "count": total, "info": _info(col)}


class _Raised(Exception):
    """A call of write_probe raised: its error is emitted, and the op ends there."""


@op("write_probe", stream=True)
def write_probe(
    state: State,
    emit: Callable,
    client: int,
    collection: str,
    candidates: list,
    fallback: list,
    records: dict,
    include: list,
) -> dict:
    """The write check of roundtrip/write_probe.py (``probe``) in one round trip: the same ops, with the
    same arguments, in the same order as its calls one by one, while none raises; the host checks every
    answer with its own unchanged logic (see ``Batch`` there). Each call is announced (``{"calling":
    op}``, so a crash or timeout names it) and answered (``{"result": ...}`` as the op of that name would
    answer it, or ``{"error": ...}``). The first call that raises ends it: the host goes on call by call.
    ``candidates``: the id pairs tried until one is free (else ``fallback``); ``records``: per write op,
    its embeddings, document and metadata."""

    def call(name: str, **args: Any) -> Any:
        emit({"calling": name, "ids": args.get("ids"), "include": args.get("include")})
        try:
            result = OPS[name](state, client=client, collection=collection, **args)
        except SystemExit:
            raise
        except BaseException as exc:  # PanicException is a BaseException: as the loop answers it
            emit({"error": _error(exc)})
            raise _Raised from None
        emit({"result": result})
        return result

    try:
        call("count")  # the count before writing
        ids = list(fallback)
        for pair in candidates:
            if not call("get", ids=list(pair), include=[])["ids"]:
                ids = list(pair)
                break
        added, upserted = ids
        for method, rid in (("add", added), ("upsert", upserted), ("update", upserted), ("delete", None)):
            touched = [rid] if rid is not None else ids
            if method == "delete":
                call("delete", ids=ids)
            else:
                rec = records[method]
                call(
                    method,
                    ids=[rid],
                    embeddings=rec["embeddings"],
                    documents=[rec["document"]],
                    metadatas=[rec["metadata"]],
                )
            call("get", ids=touched, include=include)  # read back
            call("count")
        # undo: every write returned, the delete last, so nothing of ours is expected: only the recount
        call("get", ids=ids, include=[])
        call("count")
    except _Raised:
        return {"complete": False}
    return {"complete": True}


# -- capabilities: measured on the live release, never assumed ----------------------------

METADATA_CANDIDATES = {
    "str": "s",
    "empty_str": "",
    "int": 7,
    "float": 1.5,
    "bool": True,
    "none": None,
    "list_str": ["a", "b"],
    "list_int": [1, 2],
    "list_float": [1.5],
    "list_bool": [True],
    "empty_list": [],
}


def _classify(sent: Any, got: Any) -> str:
    if isinstance(got, dict) and "k" in got:
        got = got["k"]
    elif isinstance(got, dict) or got is None:
        return "dropped"
    if type(got) is type(sent) and got == sent:
        return "kept"
    return f"changed:{type(got).__name__}"


@op("capabilities")
def capabilities(state: State, collection_settings: dict | None = None) -> dict:
    """Which metadata value types, filters and collection settings this release accepts.

    Each probe runs on a fresh collection of an in-memory client; the answer
    is what the release did, whatever its documentation says.
    """
    import tempfile

    # persistent, in the worker's scratch cwd: some settings (hnsw:batch_size) exist only there
    store = tempfile.mkdtemp(prefix="capability-probe-", dir=os.getcwd())
    client = state.adapter.persistent(store, None)
    out: dict = {"metadata": {}, "operators": {}, "collection_metadata": {}}
    counter = [0]

    def fresh(metadata: dict | None = None) -> Any:
        counter[0] += 1
        return state.adapter.create_collection(client, f"capability-probe-{counter[0]}", metadata, False)

    def attempt(fn: Callable[[], Any]) -> tuple[bool, Any]:
        try:
            return True, fn()
        except BaseException as exc:  # a panic is an answer too
            return False, f"rejected:{type(exc).__name__}"

    for label, value in METADATA_CANDIDATES.items():
        col = fresh()
        ok, res = attempt(lambda: col.add(ids=["x"], embeddings=[[1.0, 0.0]], metadatas=[{"k": value}]))
        if ok:
            ok, res = attempt(lambda: col.get(ids=["x"], include=["metadatas"])["metadatas"][0])
            res = _classify(value, res) if ok else res
        out["metadata"][label] = res
    col = fresh()
    col.add(ids=["bare"], embeddings=[[1.0, 0.0]])
    ok, empty = attempt(lambda: col.add(ids=["empty"], embeddings=[[0.0, 1.0]], metadatas=[{}]))
    got = col.get(include=["metadatas", "documents"])
    by_id = dict(zip(got["ids"], got["metadatas"]))
    out["missing_metadata_reads_as"] = repr(by_id.get("bare"))
    out["empty_metadata"] = repr(by_id.get("empty")) if ok else empty
    out["missing_document_reads_as"] = repr(got["documents"][0])
    col = fresh()
    col.add(
        ids=["a", "b"],
        embeddings=[[1.0, 0.0], [0.0, 1.0]],
        metadatas=[{"k": 1}, {"j": 1}],
        documents=["hello", "world"],
    )
    probes = {
        "$eq": {"where": {"k": {"$eq": 1}}},
        "$ne": {"where": {"k": {"$ne": 1}}},
        "$gt": {"where": {"k": {"$gt": 0}}},
        "$in": {"where": {"k": {"$in": [1]}}},
        "$nin": {"where": {"k": {"$nin": [1]}}},
        "$and": {"where": {"$and": [{"k": 1}, {"k": {"$gte": 1}}]}},
        "$or": {"where": {"$or": [{"k": 1}, {"j": 1}]}},
        "$contains": {"where_document": {"$contains": "ell"}},
        "$not_contains": {"where_document": {"$not_contains": "ell"}},
    }
    for name, kwargs in probes.items():
        ok, res = attempt(lambda: sorted(col.get(**kwargs)["ids"]))
        out["operators"][name] = res
    col = fresh()
    col.add(ids=["u"], embeddings=[[1.0, 0.0]], metadatas=[{"a": 1, "b": 2}])
    ok, res = attempt(
        lambda: (
            col.update(ids=["u"], metadatas=[{"a": 3}]),
            col.get(ids=["u"], include=["metadatas"])["metadatas"][0],
        )[1]
    )
    out["update_metadata"] = (
        ("merge" if res == {"a": 3, "b": 2} else "replace" if res == {"a": 3} else repr(res)) if ok else res
    )
    settings = collection_settings or {"hnsw:space": "cosine"}
    for key, value in settings.items():
        ok, res = attempt(lambda: fresh({**settings, key: value}).metadata)
        out["collection_metadata"][key] = (
            "kept" if isinstance(res, dict) and res.get(key) == value else ("dropped" if ok else res)
        )
    try:
        state.adapter.close(client)
    except BaseException:
        pass
    import shutil

    shutil.rmtree(store, ignore_errors=True)
    return out


# -- user code, probes, test hooks ---------------------------------------------------------


class TargetNotFound(Exception):
    pass


@op("run")
def run(
    state: State,
    target: str,
    client: int | None = None,
    sys_path: list | None = None,
    kwargs: dict | None = None,
    args: list | None = None,
) -> Any:
    """Call ``module:function`` inside this release, e.g. a user's seed function."""
    for entry in reversed(sys_path or []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module_name, _, attr = target.partition(":")
    try:
        fn: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            fn = getattr(fn, part)
    except Exception as exc:  # told apart from errors raised by the function itself
        raise TargetNotFound(f"cannot import {target}: {type(exc).__name__}: {exc}") from exc
    first = (state.client(client),) if client is not None else ()
    return wire.to_jsonable(fn(*first, *(args or []), **(kwargs or {})))


@op("debug")
def debug(state: State, action: str, seconds: float = 0.0, message: str = "") -> Any:
    """Failure modes the host must survive, reproduced on demand for its tests."""
    if action == "sleep":
        time.sleep(seconds)
        return "slept"
    if action == "abort":
        os.abort()
    if action == "exit":
        os._exit(int(seconds))
    if action == "print":
        print(message)  # goes to stderr: the protocol channel is private
        os.write(1, (message + "\n").encode())
        return "printed"
    if action == "raise_base":
        panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
        raise panic(message or "explicit panic")
    if action == "raise":
        raise ValueError(message or "explicit error")
    raise ValueError(f"unknown debug action {action!r}")


# -- the loop -----------------------------------------------------------------------------


def _error(exc: BaseException) -> dict:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": str(exc),
        "traceback": "".join(tb)[-4000:],
        "base_exception": not isinstance(exc, Exception),
    }


def serve(adapter_name: str) -> int:
    channel = os.fdopen(os.dup(1), "w", encoding="ascii", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    state = State(adapter_name)

    def send(message: dict) -> None:
        channel.write(wire.dumps(message) + "\n")
        channel.flush()

    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        try:
            request = wire.loads(raw.decode("utf-8"))
        except ValueError as exc:
            send({"id": None, "ok": False, "error": _error(exc)})
            continue
        rid, name, args = request.get("id"), request.get("op"), request.get("args") or {}
        if name == "shutdown":
            for handle in list(state.clients):
                try:
                    close_client(state, handle)
                except BaseException:
                    pass
            send({"id": rid, "ok": True, "result": None})
            return 0
        try:
            fn = OPS[name]
        except KeyError:
            send({"id": rid, "ok": False, "error": _error(LookupError(f"unknown op {name!r}"))})
            continue
        try:
            if name in STREAM_OPS:
                result = fn(state, lambda chunk: send({"id": rid, "chunk": chunk}), **args)
            else:
                result = fn(state, **args)
            send({"id": rid, "ok": True, "result": result})
        except SystemExit:
            raise
        except BaseException as exc:  # PanicException is a BaseException
            send({"id": rid, "ok": False, "error": _error(exc)})
    return 0


def watch_parent(host_pid: int, interval: float = 1.0) -> None:
    """Exit, with our whole process group, as soon as the host that started us is gone.

    Why a thread: the host may be SIGKILLed (nothing of ours runs then), and we run
    in a session of our own, so no signal reaches us; stdin's EOF would tell, but
    only once the chromadb call in progress returns, which can take minutes.
    PR_SET_PDEATHSIG does not fit: it fires when the host *thread* that started
    us exits, and hosts start workers from short-lived pool threads.
    """
    import signal
    import threading

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != host_pid:  # reparented: the host is gone
                try:
                    if os.getpgrp() == os.getpid():  # our own group (as the host starts us): take it along
                        os.killpg(os.getpid(), signal.SIGKILL)
                finally:
                    os._exit(70)

    threading.Thread(target=watch, name="host-watchdog", daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--adapter", required=True, choices=sorted(adapters.FAMILIES))
    parser.add_argument("--host-pid", type=int, help="exit when this process (our parent) is gone")
    args = parser.parse_args()
    watch_parent(args.host_pid or os.getppid())
    # the host asks for every thread's stack (SIGUSR1) before it kills a worker that stopped answering,
    # so a timeout says where chromadb was stuck, not only that it was
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    return serve(args.adapter)


if __name__ == "__main__":
    sys.exit(main())
