"""Probes: each one measures one documented behaviour on the release it runs in.

This file runs INSIDE a release's environment (the worker's ``run`` op imports
it as the top-level module ``probes``), so it is stdlib + chromadb only.

Why it is built this way:
- Every probe builds its own client on a fresh persistent store in a new
  temporary directory and lets it go afterwards: the worker's own clients use
  the harness's settings (``allow_reset=True``), which would hide defaults, and
  releases cache one System per path, so stores are never shared.
- A probe returns a small JSON-able value describing what the release *did*.
  Exceptions, ``BaseException`` included (the 1.x Rust core panics), are part
  of that value as ``{"error": "TypeName"}``: type names only, because
  messages change between releases and would make every release look different.
- Nothing here embeds text: every write passes explicit embeddings, and every
  embedding function handed to a release raises if it is ever called.
- Versions are never compared here; differences are found with ``hasattr``
  and by trying things.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any, Callable

E2 = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]]
# A filter's answer when it matched every record of the collection. Said in words, not as the ids:
# the ids depend on which records a release let in (lists refused: no "d"), the meaning does not,
# and a filter that stops filtering must be told apart from one that matches a few records.
EVERY_RECORD = "every record"


# -- helpers ------------------------------------------------------------------------------


def _err(exc: BaseException) -> dict:
    return {"error": type(exc).__name__}


def _attempt(fn: Callable[[], Any]) -> Any:
    """The value of ``fn()``, or ``{"error": TypeName}`` for anything it raises."""
    try:
        return fn()
    except BaseException as exc:  # a Rust panic is an answer too
        return _err(exc)


def _never_embed(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("a contract probe never embeds text")


def _chromadb() -> Any:
    import chromadb  # type: ignore

    return chromadb


def _new_client(path: str, settings: dict | None) -> Any:
    chromadb = _chromadb()
    from chromadb.config import Settings  # type: ignore

    values = {"anonymized_telemetry": False, **(settings or {})}
    if hasattr(chromadb, "PersistentClient"):
        return chromadb.PersistentClient(path=path, settings=Settings(**values))
    values.update(chroma_db_impl="duckdb+parquet", persist_directory=path)  # 0.3
    return chromadb.Client(Settings(**values))


def _release(client: Any) -> None:
    """Stop the client's system and drop it from the per-path cache (as the worker adapter does).

    Idempotent: a second call finds the system gone (1.x raises KeyError for it) and does nothing.
    """
    try:
        system = getattr(client, "_system", None)
    except BaseException:
        return
    with contextlib.suppress(BaseException):
        if system is not None and hasattr(system, "stop"):
            system.stop()
    for klass in type(client).__mro__:
        cache = vars(klass).get("_identifer_to_system") or vars(klass).get("_identifier_to_system")
        if isinstance(cache, dict):
            for key in [k for k, v in cache.items() if v is system]:
                del cache[key]


@contextlib.contextmanager
def _store(settings: dict | None = None) -> Iterator[tuple[Any, str]]:
    """A fresh client on a fresh persistent store, removed afterwards."""
    path = tempfile.mkdtemp(prefix="contract-probe-", dir=os.getcwd())
    client = None
    try:
        client = _new_client(path, settings)
        yield client, path
    finally:
        if client is not None:
            _release(client)
        shutil.rmtree(path, ignore_errors=True)


def _ef_none() -> Any:
    """0.4+ accept ``embedding_function=None``; 0.3 swaps None for a model, so give it one that refuses."""
    return None if hasattr(_chromadb(), "PersistentClient") else _never_embed


def _collection(client: Any, name: str = "probe", metadata: dict | None = None, **kwargs: Any) -> Any:
    args = {"name": name, "embedding_function": kwargs.pop("embedding_function", _ef_none()), **kwargs}
    if metadata is not None:
        args["metadata"] = metadata
    return client.create_collection(**args)


def _kind(value: Any) -> str:
    """A type description: ``ndarray``, ``list[ndarray]``, ``list[CollectionName(str)]``..."""
    name = type(value).__name__
    if isinstance(value, (list, tuple)) and value:
        item = type(value[0])
        bases = "(str)" if issubclass(item, str) and item is not str else ""
        return f"{name}[{item.__name__}{bases}]"
    return name


def _matched(col: Any, **kwargs: Any) -> Any:
    """The sorted ids a filtered ``get`` matches, or EVERY_RECORD when it matched all of two or more records."""
    ids = sorted(col.get(**kwargs)["ids"])
    return EVERY_RECORD if len(ids) > 1 and ids == sorted(col.get()["ids"]) else ids


def _guarded(probe: Callable[[], Any]) -> Callable[[], Any]:
    """Whatever a probe's set-up raises becomes its observed value, never a worker error."""

    def run() -> Any:
        return _attempt(probe)

    run.__name__ = probe.__name__
    run.__doc__ = probe.__doc__
    return run


# -- 0.4.0 ----------------------------------------------------------------------------------


@_guarded
def persist_method() -> Any:
    """Does a persistent client still have ``.persist()``?"""
    with _store() as (client, _):
        return {"persist": "present" if hasattr(client, "persist") else "absent"}


@_guarded
def reset_default() -> Any:
    """``client.reset()`` under default settings, allow_reset=False and allow_reset=True."""
    out = {}
    for label, settings in (
        ("default", {}),
        ("allow_reset=False", {"allow_reset": False}),
        ("allow_reset=True", {"allow_reset": True}),
    ):

        def attempt() -> Any:
            with _store(settings) as (client, _):
                col = _collection(client)
                col.add(ids=["a"], embeddings=[E2[0]])
                client.reset()
                names = [getattr(c, "name", c) for c in client.list_collections()]
                return "reset" if not names else "kept"

        out[label] = _attempt(attempt)
    return out


@_guarded
def client_constructors() -> Any:
    """Which client constructors ``import chromadb`` offers."""
    chromadb = _chromadb()
    return sorted(n for n in ("Client", "EphemeralClient", "PersistentClient", "HttpClient") if hasattr(chromadb, n))


# -- 0.4.16 ---------------------------------------------------------------------------------


@_guarded
def embedding_function_signature() -> Any:
    """Is a custom embedding function with ``__call__(self, texts)`` / ``(self, input)`` accepted?"""
    variants: dict[str, Any] = {}

    class Texts:
        def __call__(self, texts):  # noqa: ANN001 - the old protocol, on purpose
            return _never_embed(texts)

    class Input:
        def __call__(self, input):  # noqa: A002,ANN001 - the new protocol
            return _never_embed(input)

    variants["texts"], variants["input"] = Texts, Input
    base = getattr(_attempt(lambda: __import__("chromadb.api.types", fromlist=["x"])), "EmbeddingFunction", None)
    if base is not None:
        variants["texts_subclass"] = type("TextsEF", (base,), {"__call__": Texts.__call__})
        variants["input_subclass"] = type("InputEF", (base,), {"__call__": Input.__call__})
    out = {}
    for label, klass in variants.items():

        def attempt() -> Any:
            with _store() as (client, _):
                _collection(client, embedding_function=klass())
                return "accepted"

        out[label] = _attempt(attempt)
    return out


# -- auth overhaul (April 2024), 0.5.1, 0.5.6 -------------------------------------------------

AUTH_SETTINGS = (
    "chroma_client_auth_provider",
    "chroma_client_auth_credentials",
    "chroma_client_auth_credentials_provider",
    "chroma_client_auth_protocol_adapter",
    "chroma_client_auth_credentials_file",
    "chroma_client_auth_token_transport_header",
    "chroma_server_auth_token_transport_header",
    "chroma_auth_token_transport_header",
    "chroma_server_auth_provider",
    "chroma_server_authn_provider",
    "chroma_server_auth_configuration_provider",
    "chroma_server_auth_credentials_provider",
    "chroma_server_auth_credentials",
    "chroma_server_authn_credentials",
    "chroma_server_auth_credentials_file",
    "chroma_server_authn_credentials_file",
    "chroma_server_auth_configuration_file",
    "chroma_server_authn_configuration_file",
    "chroma_server_authz_provider",
    "chroma_server_authz_config",
    "chroma_server_authz_config_file",
    "chroma_server_authz_ignore_paths",
    "chroma_server_auth_ignore_paths",
)


@_guarded
def auth_settings() -> Any:
    """Which of the old and new auth setting names ``chromadb.config.Settings`` declares."""
    from chromadb.config import Settings  # type: ignore

    fields = getattr(Settings, "model_fields", None) or getattr(Settings, "__fields__", {})
    return sorted(name for name in AUTH_SETTINGS if name in fields)


@_guarded
def max_batch_size() -> Any:
    """``client.max_batch_size`` (property) and ``client.get_max_batch_size()`` (method)."""
    with _store() as (client, _):
        return {
            "max_batch_size": _attempt(lambda: type(client.max_batch_size).__name__),
            "get_max_batch_size()": _attempt(lambda: type(client.get_max_batch_size()).__name__),
        }


@_guarded
def wal_pruning() -> Any:
    """The write-ahead-log config a NEW store is created with (read from chroma.sqlite3)."""
    with _store() as (client, path):
        _collection(client).add(ids=["a", "b"], embeddings=E2[:2])
        _release(client)
        db = os.path.join(path, "chroma.sqlite3")
        if not os.path.exists(db):
            return {"store": "no chroma.sqlite3"}
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "embeddings_queue_config" not in tables:
                return {"embeddings_queue_config": "absent"}
            import json

            rows = con.execute("SELECT config_json_str FROM embeddings_queue_config").fetchall()
            configs = [json.loads(r[0]) for r in rows]
            return {"automatically_purge": [c.get("automatically_purge") for c in configs]}
        finally:
            con.close()


# -- 0.5.11 ---------------------------------------------------------------------------------


@_guarded
def get_order() -> Any:
    """Ids "3","2","1","0" added in that order: what get() and get(limit=2, offset=2) return."""
    with _store() as (client, _):
        col = _collection(client)
        col.add(ids=["3", "2", "1", "0"], embeddings=E2)
        return {
            "get()": _attempt(lambda: col.get()["ids"]),
            "get(limit=2,offset=2)": _attempt(lambda: col.get(limit=2, offset=2)["ids"]),
        }


@_guarded
def get_or_create_metadata() -> Any:
    """get_or_create_collection(metadata=...) on an existing collection: overwritten or ignored?"""
    with _store() as (client, _):
        _collection(client, metadata={"owner": "first"})
        client.get_or_create_collection(name="probe", metadata={"owner": "second"}, embedding_function=_ef_none())
        got = (client.get_collection(name="probe", embedding_function=_ef_none()).metadata or {}).get("owner")
        return {"first": "ignored", "second": "overwritten"}.get(got, repr(got))


@_guarded
def embeddings_type() -> Any:
    """The Python type of ``embeddings`` in get(), query() and peek() results."""
    with _store() as (client, _):
        col = _collection(client)
        col.add(ids=["a", "b"], embeddings=E2[:2])
        return {
            "get": _attempt(lambda: _kind(col.get(include=["embeddings"])["embeddings"])),
            "query": _attempt(
                lambda: _kind(col.query(query_embeddings=[E2[0]], n_results=1, include=["embeddings"])["embeddings"])
            ),
            "peek": _attempt(lambda: _kind(col.peek(limit=2)["embeddings"])),
        }


# -- 0.5.12 ---------------------------------------------------------------------------------


def _filter_collection(client: Any) -> Any:
    """a: k=1 + document; b: other key, no document; c: k=2 + document; d: no metadata, no document."""
    col = _collection(client)
    col.add(ids=["a", "c"], embeddings=E2[:2], metadatas=[{"k": 1}, {"k": 2}], documents=["hello", "world"])
    col.add(ids=["b"], embeddings=[E2[2]], metadatas=[{"j": 1}])
    col.add(ids=["d"], embeddings=[E2[3]])
    return col


@_guarded
def ne_nin_missing_key() -> Any:
    """Which records ``$ne`` / ``$nin`` match when some lack the key (b) or any metadata (d)."""
    with _store() as (client, _):
        col = _filter_collection(client)
        return {
            "$ne": _attempt(lambda: sorted(col.get(where={"k": {"$ne": 1}})["ids"])),
            "$nin": _attempt(lambda: sorted(col.get(where={"k": {"$nin": [1]}})["ids"])),
        }


@_guarded
def not_contains_missing_document() -> Any:
    """Which records ``$not_contains`` matches when some have no document (b, d)."""
    with _store() as (client, _):
        col = _filter_collection(client)
        return _attempt(lambda: sorted(col.get(where_document={"$not_contains": "ell"})["ids"]))


@_guarded
def rate_limiting_classes() -> Any:
    """Which of RateLimitingProvider (old) and RateLimitEnforcer (new) can be imported."""
    import importlib

    found = []
    for module, name in (
        ("chromadb.rate_limiting", "RateLimitingProvider"),
        ("chromadb.rate_limit", "RateLimitEnforcer"),
        ("chromadb.rate_limit", "SimpleRateLimitEnforcer"),
    ):
        try:
            if hasattr(importlib.import_module(module), name):
                found.append(f"{module}.{name}")
        except BaseException:
            pass
    return found


# -- 0.5.17 ---------------------------------------------------------------------------------


@_guarded
def empty_filters() -> Any:
    """get(where={}), get(where_document={}), get(ids=[]), get(ids=[...], where={}): how many records, or the error."""
    with _store() as (client, _):
        col = _collection(client)
        col.add(ids=["a", "b"], embeddings=E2[:2], documents=["x", "y"])
        calls = {
            "where={}": {"where": {}},
            "where_document={}": {"where_document": {}},
            "ids=[]": {"ids": []},
            "ids=[a],where={}": {"ids": ["a"], "where": {}},
        }
        return {label: _attempt(lambda kw=kw: len(col.get(**kw)["ids"])) for label, kw in calls.items()}


# -- 0.6.0 / 1.0.0 ----------------------------------------------------------------------------


@_guarded
def list_collections_type() -> Any:
    """The type of the items ``client.list_collections()`` returns."""
    with _store() as (client, _):
        _collection(client)
        return _kind(client.list_collections())


@_guarded
def requires_python() -> Any:
    """The installed distribution's Requires-Python."""
    from importlib import metadata

    return metadata.metadata("chromadb").get("Requires-Python")


# -- not in the log, but user code meets them -------------------------------------------------

METADATA_VALUES = {
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

# Releases check metadata in each write call separately (1.5.9 refuses None through add but takes it
# through upsert/update), so every value goes through every call. An empty metadata dict is a whole
# record's metadata, not a value, hence its own label.
WRITE_CALLS = ("add", "upsert", "update")


def _write_through(col: Any, call: str, metadata: dict) -> None:
    """Write record "x" with ``metadata`` through ``call``; update needs the record first (set-up by add)."""
    if call == "update":
        col.add(ids=["x"], embeddings=[E2[0]], metadatas=[{"other": 1}])
        col.update(ids=["x"], metadatas=[metadata])
    else:
        getattr(col, call)(ids=["x"], embeddings=[E2[0]], metadatas=[metadata])


def _read_metadata(col: Any) -> dict:
    return col.get(ids=["x"], include=["metadatas"])["metadatas"][0] or {}


@_guarded
def metadata_types() -> Any:
    """Per write call and metadata value type: kept as sent, changed (to which type), dropped, or rejected."""
    out: dict[str, dict] = {}
    with _store() as (client, _):
        for call in WRITE_CALLS:
            answers: dict[str, Any] = {}
            for i, (label, value) in enumerate(METADATA_VALUES.items()):
                col = _collection(client, name=f"probe-{call}-{i}")

                def attempt() -> Any:
                    _write_through(col, call, {"k": value, "other": 1})
                    got = _read_metadata(col)
                    if "k" not in got:
                        return "dropped"
                    same = type(got["k"]) is type(value) and got["k"] == value
                    return "kept" if same else f"changed:{type(got['k']).__name__}"

                answers[label] = _attempt(attempt)
            col = _collection(client, name=f"probe-{call}-empty")
            answers["empty_dict"] = _attempt(lambda: (_write_through(col, call, {}), "accepted")[1])
            out[call] = answers
    return out


@_guarded
def operators() -> Any:
    """Per filter operator: the ids it matches (an empty list is an answer too), or the error.

    Ids, not "ok": an operator that stops raising and silently matches nothing (or everything,
    EVERY_RECORD) must look different from one that starts working.
    """
    calls = {
        "$eq": {"where": {"k": {"$eq": 1}}},
        "$ne": {"where": {"k": {"$ne": 1}}},
        "$gt": {"where": {"k": {"$gt": 0}}},
        "$in": {"where": {"k": {"$in": [1]}}},
        "$nin": {"where": {"k": {"$nin": [1]}}},
        "$and": {"where": {"$and": [{"k": 1}, {"j": 1}]}},
        "$or": {"where": {"$or": [{"k": 1}, {"j": 1}]}},
        "$contains": {"where_document": {"$contains": "ell"}},
        "$not_contains": {"where_document": {"$not_contains": "ell"}},
        "$regex": {"where_document": {"$regex": "^h"}},
        "$not_regex": {"where_document": {"$not_regex": "^h"}},
        "where $contains": {"where": {"k": {"$contains": 1}}},
    }
    with _store() as (client, _):
        col = _filter_collection(client)
        return {name: _attempt(lambda kw=kw: _matched(col, **kw)) for name, kw in calls.items()}


@_guarded
def where_contains() -> Any:
    """``$contains`` / ``$not_contains`` in ``where`` on a string, an int and a list metadata field: ids or error.

    a: s="hello", b: s="world", c: n=1, d: l=["x", "y"] (written only where lists are accepted).
    """
    with _store() as (client, _):
        col = _collection(client)
        col.add(ids=["a", "b", "c"], embeddings=E2[:3], metadatas=[{"s": "hello"}, {"s": "world"}, {"n": 1}])
        _attempt(lambda: col.add(ids=["d"], embeddings=[E2[3]], metadatas=[{"l": ["x", "y"]}]))
        calls = {
            "string, substring": {"s": {"$contains": "ell"}},
            "string, whole value": {"s": {"$contains": "hello"}},
            "string, $not_contains": {"s": {"$not_contains": "ell"}},
            "int": {"n": {"$contains": 1}},
            "list": {"l": {"$contains": "x"}},
        }
        return {label: _attempt(lambda w=w: _matched(col, where=w)) for label, w in calls.items()}


# float64 values: two that a JSON parser without exact round trip reads one or two steps off (an
# application's confidence score, a third), and one every parser keeps
FLOAT_VALUES = {"0.9421136975288391": 0.9421136975288391, "90.33333333333333": 90.33333333333333, "0.1": 0.1}


@_guarded
def float_metadata_exact() -> Any:
    """Per float64 metadata value written by ``add``: read back bit for bit or changed (to what), and
    whether ``where={"f": {"$eq": <the value written>}}`` finds its record."""
    with _store() as (client, _):
        col = _collection(client)
        ids = [f"f{i}" for i in range(len(FLOAT_VALUES))]
        col.add(ids=ids, embeddings=E2[: len(ids)], metadatas=[{"f": v} for v in FLOAT_VALUES.values()])
        got = col.get(ids=ids, include=["metadatas"])
        back = {rid: (meta or {}).get("f") for rid, meta in zip(got["ids"], got["metadatas"])}
        out: dict[str, Any] = {}
        for rid, (label, value) in zip(ids, FLOAT_VALUES.items()):
            read = back.get(rid)
            found = _attempt(lambda v=value: _matched(col, where={"f": {"$eq": v}}))
            out[label] = {
                "read back": "exact" if type(read) is float and read == value else f"changed: {read!r}",
                "$eq with the value written": found
                if isinstance(found, dict)
                else ("finds it" if rid in found else "misses it"),
            }
        return out


COLLECTION_NAMES = {
    "2 chars": "ab",
    "3 chars": "abc",
    "63 chars": "a" * 63,
    "64 chars": "a" * 64,
    "a..b": "a..b",
    "1.1.1.1": "1.1.1.1",
    "under_score": "under_score",
    "dash-ok": "dash-ok",
    "-leading-dash": "-abc",
    "trailing-dash-": "abc-",
    "UPPER": "ABC",
    "space": "a b c",
    "dotted.name": "a.b.c",
}


@_guarded
def collection_names() -> Any:
    """Which collection names a release accepts."""
    out = {}
    with _store() as (client, _):
        for label, name in COLLECTION_NAMES.items():
            out[label] = _attempt(lambda name=name: (_collection(client, name=name), "ok")[1])
    return out


# -- embedding functions (1.x persists them), not in the migration log ------------------------------
#
# None of these probes ever calls an embedding function: every write passes explicit embeddings and
# the functions handed over refuse to embed. A release that replaces ``embedding_function=None`` with
# its default function (ONNX MiniLM, downloaded on first call) only *builds* it, which reads no model;
# each probe reports whether a model directory appeared under HOME, so a download would be seen.


def _persisted_ef(path: str, name: str) -> Any:
    """What the store keeps as the collection's embedding function ({name, type}), read with SQLite."""
    db = os.path.join(path, "chroma.sqlite3")
    if not os.path.exists(db):
        return "no sqlite store"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cols = [r[1] for r in conn.execute("pragma table_info('collections')")]
        if "config_json_str" not in cols:
            return "no configuration column"
        schema = "schema_str" if "schema_str" in cols else "null"
        row = conn.execute(f"select config_json_str, {schema} from collections where name = ?", (name,)).fetchone()
    finally:
        conn.close()
    import json

    config = json.loads(row[0]) if row and row[0] else {}
    ef = config.get("embedding_function") if isinstance(config, dict) else None
    where = "configuration"
    if not isinstance(ef, dict) and row and row[1]:  # 1.3 on: the collection's schema holds it
        index = ((json.loads(row[1]).get("keys") or {}).get("#embedding") or {}).get("float_list") or {}
        ef = ((index.get("vector_index") or {}).get("config") or {}).get("embedding_function")
        where = "schema"
    if not isinstance(ef, dict):
        return "nothing"
    return {"in": where, **{k: ef[k] for k in ("name", "type") if k in ef}}


def _model_files() -> str:
    """Whether a default-model directory exists under HOME (the worker's HOME starts empty)."""
    home = os.path.expanduser("~")
    found = [
        p
        for p in (".cache/chroma/onnx_models", ".cache/torch/sentence_transformers")
        if os.path.exists(os.path.join(home, p))
    ]
    return ", ".join(found) if found else "none"


class DefaultRefused(Exception):
    """Raised in place of the default embedding function: the release *would* have embedded with it."""


@contextlib.contextmanager
def _default_disarmed() -> Iterator[list[str]]:
    """While inside, chromadb's default function (ONNX MiniLM) raises :class:`DefaultRefused` instead of
    downloading and running its model; the worker runs every probe in one process, so the classes
    are restored on the way out."""
    saved: list[tuple[type, str, Any]] = []
    try:
        for klass in _disarm_default():
            saved.extend(klass.pop("saved"))
        yield [k for k, _, _ in saved]
    finally:
        for klass, attr, value in reversed(saved):
            if value is None:
                with contextlib.suppress(AttributeError):
                    delattr(klass, attr)
            else:
                setattr(klass, attr, value)


def _disarm_default() -> list[dict]:
    """Patch the default function's classes; what was there before, per class, to put back."""
    import importlib
    import pkgutil

    patched: list[dict] = []
    try:
        package = importlib.import_module("chromadb.utils.embedding_functions")
    except BaseException:
        return patched
    modules = [package]
    for info in pkgutil.iter_modules(getattr(package, "__path__", []) or []):
        if "onnx" in info.name or "default" in info.name:
            with contextlib.suppress(BaseException):
                modules.append(importlib.import_module(f"{package.__name__}.{info.name}"))

    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise DefaultRefused(type(self).__name__)

    def refuse_call(self: Any, input: Any) -> Any:  # noqa: A002 - releases check __call__'s signature
        raise DefaultRefused(type(self).__name__)

    seen: set = set()
    for module in modules:
        for name in ("ONNXMiniLM_L6_V2", "DefaultEmbeddingFunction"):
            klass = getattr(module, name, None)
            if isinstance(klass, type) and klass not in seen:
                seen.add(klass)
                saved = []
                for attr in ("__call__", "_download_model_if_not_exists", "_forward", "embed_query"):
                    if hasattr(klass, attr):
                        saved.append((klass, attr, vars(klass).get(attr)))
                        setattr(klass, attr, refuse_call if attr in ("__call__", "embed_query") else refuse)
                patched.append({"saved": saved})
    return patched


class ProbeFunctionCalled(Exception):
    """Raised by a probe's own embedding function: the release embedded with it (its name is the message)."""


def _embeds_with(col: Any) -> Any:
    """What ``add(documents=...)`` without embeddings does: the function it would embed with, or the error.
    Nothing is embedded: the default function is disarmed and the probes' own functions refuse."""
    try:
        col.add(ids=["doc"], documents=["a document"])
    except DefaultRefused:
        return "embeds with the default function"
    except ProbeFunctionCalled as exc:
        return f"embeds with {str(exc).split(' ')[0]}"
    except BaseException as exc:
        return _err(exc)
    return "embedded"


@_guarded
def embedding_function_none() -> Any:
    """``embedding_function=None`` at create_collection, get_or_create_collection and get_collection, then
    ``add(documents=...)``: the error, or the function the release embeds with (the default one disarmed)."""
    if not hasattr(_chromadb(), "PersistentClient"):  # 0.3 would build a sentence-transformers model
        return "not measured on 0.3 (None there means a sentence-transformers model)"
    out: dict[str, Any] = {}
    with _default_disarmed() as disarmed, _store() as (client, path):
        for call, make in (
            ("create_collection", lambda: client.create_collection(name="made-none", embedding_function=None)),
            (
                "get_or_create_collection",
                lambda: client.get_or_create_collection(name="got-none", embedding_function=None),
            ),
            ("get_collection", lambda: client.get_collection(name="made-none", embedding_function=None)),
        ):
            col = _attempt(make)
            out[call] = col if isinstance(col, dict) else _embeds_with(col)
        out["persisted"] = _attempt(lambda: _persisted_ef(path, "made-none"))
    out["model files under HOME"] = _model_files()
    out["default disarmed"] = "yes" if disarmed else "no default function found"
    return out


def _probe_ef(label: str) -> Any:
    """An embedding function class named ``label`` that refuses to embed, registered where 1.x registers."""
    try:
        from chromadb.api.types import EmbeddingFunction as base  # type: ignore
    except BaseException:
        base = object

    def __call__(self: Any, input: Any) -> Any:  # noqa: A002 - the protocol's parameter name
        raise ProbeFunctionCalled(label)

    body = {
        "__call__": __call__,
        "__init__": lambda self, *a, **k: None,
        "name": staticmethod(lambda: label),
        "get_config": lambda self: {},
        "build_from_config": staticmethod(lambda config: klass()),
        "is_legacy": lambda self: False,
        "default_space": lambda self: "l2",
        "supported_spaces": lambda self: ["l2", "cosine", "ip"],
        "validate_config": staticmethod(lambda c: None),
        "validate_config_update": lambda self, old, new: None,
    }
    klass = type(f"Probe_{label.replace('-', '_')}", (base,), body)
    with contextlib.suppress(BaseException):
        from chromadb.utils.embedding_functions import register_embedding_function  # type: ignore

        register_embedding_function(klass)
    return klass


@_guarded
def persisted_embedding_function() -> Any:
    """A collection created with embedding function A: what the store keeps, what a collection got
    without a function then embeds ``add(documents=...)`` with, and get_collection /
    get_or_create_collection with A and with another function B: ok or the error."""
    if not hasattr(_chromadb(), "PersistentClient"):
        return "not measured on 0.3 (None there means a sentence-transformers model)"
    first, other = _probe_ef("chroma-compat-probe-a"), _probe_ef("chroma-compat-probe-b")
    out: dict[str, Any] = {}
    with _default_disarmed(), _store() as (client, path):
        made = _attempt(lambda: client.create_collection(name="with-ef", embedding_function=first()))
        if isinstance(made, dict):  # refused: the rest has nothing to open
            return {"create with A": made, "model files under HOME": _model_files()}
        out["persisted"] = _attempt(lambda: _persisted_ef(path, "with-ef"))
        got = _attempt(lambda: client.get_collection(name="with-ef"))
        out["get without one, then add(documents=...)"] = got if isinstance(got, dict) else _embeds_with(got)
        out["get with A"] = _attempt(
            lambda: (client.get_collection(name="with-ef", embedding_function=first()), "ok")[1]
        )
        out["get with B"] = _attempt(
            lambda: (client.get_collection(name="with-ef", embedding_function=other()), "ok")[1]
        )
        out["get_or_create with B"] = _attempt(
            lambda: (client.get_or_create_collection(name="with-ef", embedding_function=other()), "ok")[1]
        )
    out["model files under HOME"] = _model_files()
    return out


@_guarded
def modify_hnsw_space() -> Any:
    """``collection.modify(metadata={"hnsw:space": "cosine"})`` on an l2 collection: ok or the error, and the
    space the collection reports afterwards (metadata, and the configuration where there is one)."""
    with _store() as (client, _):
        col = _collection(client, metadata={"hnsw:space": "l2"})
        col.add(ids=["a", "b"], embeddings=E2[:2])
        out: dict[str, Any] = {"modify": _attempt(lambda: (col.modify(metadata={"hnsw:space": "cosine"}), "ok")[1])}
        again = client.get_collection(name="probe", embedding_function=_ef_none())
        out["metadata space after"] = (again.metadata or {}).get("hnsw:space", "absent")
        config = getattr(again, "configuration_json", None) or {}
        hnsw = config.get("hnsw") or config.get("hnsw_configuration") if isinstance(config, dict) else None
        out["configured space after"] = hnsw.get("space", "absent") if isinstance(hnsw, dict) else "no configuration"
        out["modify other metadata"] = _attempt(lambda: (col.modify(metadata={"owner": "x"}), "ok")[1])
        # 0.x replaces the whole metadata, hnsw:space included (the index keeps its space): what is read back
        after = _attempt(lambda: client.get_collection(name="probe", embedding_function=_ef_none()).metadata or {})
        out["metadata space after that"] = after.get("hnsw:space", "absent") if "error" not in after else after
        return out
