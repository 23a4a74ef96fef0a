"""One client release against one running server: the operations of the skew matrix.

Runs inside the CLIENT release's worker (``Release.run``), with that release's
own ``chromadb.HttpClient`` built the way its users build it: no header or
setting added by the harness (the worker's ``open("http")`` adds a JSON
Content-Type for 0.4/0.5 clients, which would hide exactly the kind of skew
this measures). Every HTTP exchange is observed by wrapping the transport's
``send`` (requests for 0.4, httpx from 0.5), so a failure carries the status
code and body the server really sent, not only the exception the client made
of it. Each operation's result is also checked against what the data says
(ids, counts, nearest neighbour): a call that "works" and returns the wrong
records is a failure too. Stdlib only (plus the release).
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import Any, Callable

MAX_TEXT = 400
_exchanges: list[dict] = []
_hooked: dict[str, bool] = {}

EMBEDDINGS = {
    "a": [1.0, 0.0, 0.0, 0.0],
    "b": [0.0, 1.0, 0.0, 0.0],
    "c": [0.0, 0.0, 1.0, 0.0],
    "d": [0.0, 0.0, 0.0, 1.0],
}
ADDED = {"a": {"kind": "fruit", "n": 1}, "b": {"kind": "veg", "n": 2}, "c": {"kind": "fruit", "n": 3}}
UPSERTED = {"c": {"kind": "veg", "n": 3}, "d": {"kind": "fruit", "n": 4}}


def _record(method: str, url: str, status: int, body: str) -> None:
    path = url.split("://", 1)[-1]
    path = "/" + path.split("/", 1)[1] if "/" in path else "/"
    _exchanges.append({"method": method, "path": path.split("?", 1)[0], "status": status, "body": body[:MAX_TEXT]})


def _hook_requests() -> None:
    """At the transport adapter, under ``Session.send``: 0.4 subclasses Session (its auth adapter) and
    type-checks ``send`` with typeguard, so a wrapper there changes what the release does."""
    try:
        from requests.adapters import HTTPAdapter  # type: ignore
    except Exception:
        return
    if _hooked.get("requests"):
        return
    original = HTTPAdapter.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, request, *args, **kwargs)
        try:
            _record(request.method, request.url, response.status_code, response.text)
        except Exception:
            pass
        return response

    HTTPAdapter.send = send
    _hooked["requests"] = True


def _hook_httpx() -> None:
    try:
        import httpx  # type: ignore
    except Exception:
        return
    if _hooked.get("httpx"):
        return
    original = httpx.Client.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, request, *args, **kwargs)
        try:
            response.read()
            _record(request.method, str(request.url), response.status_code, response.text)
        except Exception:
            pass
        return response

    httpx.Client.send = send
    _hooked["httpx"] = True


class Wrong(Exception):
    """The call returned, with the wrong answer."""


def _expect(what: str, got: Any, expected: Any) -> None:
    if got != expected:
        raise Wrong(f"{what}: got {got!r}, expected {expected!r}")


def _error(exc: BaseException, exchanges: list[dict]) -> dict:
    failed = [x for x in exchanges if x["status"] >= 400]
    out = {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": (str(exc) or repr(exc))[:MAX_TEXT],
        "where": _where(exc),
    }
    if failed or exchanges:
        last = failed[-1] if failed else exchanges[-1]
        out["http"] = last
    return out


def _where(exc: BaseException) -> str:
    """The raising frame, with the environment's own path shortened (reports are committed)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-2:])[-MAX_TEXT:]
    return text.replace(sys.prefix, "<env>")


def _clear_system_cache(chromadb: Any) -> None:
    """Releases keep one System per host:port in a class cache: a new server on a reused port
    must not be answered by the previous cell's client."""
    try:
        from chromadb.api.client import SharedSystemClient  # type: ignore

        SharedSystemClient.clear_system_cache()
    except Exception:
        pass


def exercise(host: str, port: int, headers: dict | None = None, collection: str = "skew_probe") -> dict:
    """Every operation in order; an operation whose prerequisite failed is skipped, not failed."""
    import chromadb  # type: ignore

    _hook_requests()
    _hook_httpx()
    _clear_system_cache(chromadb)
    ops: list[dict] = []
    state: dict[str, Any] = {}

    def step(name: str, needs: str | None, fn: Callable[[], Any]) -> None:
        if needs and needs not in state:
            ops.append({"op": name, "ok": None, "skipped": f"needs {needs}"})
            return
        del _exchanges[:]
        started = time.perf_counter()
        try:
            value = fn()
        except BaseException as exc:  # a Rust panic is a BaseException: still an answer
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            ops.append(
                {
                    "op": name,
                    "ok": False,
                    "seconds": round(time.perf_counter() - started, 3),
                    "error": _error(exc, list(_exchanges)),
                }
            )
            return
        ops.append(
            {
                "op": name,
                "ok": True,
                "seconds": round(time.perf_counter() - started, 3),
                "value": _jsonable(value),
                "requests": len(_exchanges),
            }
        )
        state[name] = value

    def connect() -> Any:
        kwargs: dict = {"host": host, "port": port}
        if headers:
            kwargs["headers"] = dict(headers)
        try:
            from chromadb.config import Settings  # type: ignore

            kwargs["settings"] = Settings(anonymized_telemetry=False)
        except Exception:
            pass
        state["client"] = chromadb.HttpClient(**kwargs)
        return type(state["client"]).__name__

    def heartbeat() -> Any:
        value = state["client"].heartbeat()
        if not isinstance(value, int) or value <= 0:
            raise Wrong(f"heartbeat: got {value!r}, expected a positive integer (nanoseconds)")
        return value

    def version() -> Any:
        return state["client"].get_version()

    def create() -> Any:
        col = state["client"].create_collection(name=collection, metadata={"purpose": "skew"}, embedding_function=None)
        state["collection"] = col
        return col.name

    def get_collection() -> Any:
        col = state["client"].get_collection(name=collection, embedding_function=None)
        _expect("get_collection metadata", dict(col.metadata or {}).get("purpose"), "skew")
        state["collection"] = col
        return col.name

    def list_collections() -> Any:
        listed = state["client"].list_collections()
        names = sorted(c if isinstance(c, str) else c.name for c in listed)
        if collection not in names:
            raise Wrong(f"list_collections: {collection!r} missing from {names!r}")
        return names

    def add() -> Any:
        ids = list(ADDED)
        state["collection"].add(
            ids=ids,
            embeddings=[EMBEDDINGS[i] for i in ids],
            metadatas=[ADDED[i] for i in ids],
            documents=[f"doc {i}" for i in ids],
        )
        return ids

    def upsert() -> Any:
        ids = list(UPSERTED)
        state["collection"].upsert(
            ids=ids,
            embeddings=[EMBEDDINGS[i] for i in ids],
            metadatas=[UPSERTED[i] for i in ids],
            documents=[f"doc {i}" for i in ids],
        )
        return ids

    def get_where() -> Any:
        got = state["collection"].get(where={"kind": "fruit"}, include=["metadatas", "documents"])
        pairs = sorted(zip(got["ids"], [dict(m) for m in got["metadatas"]]))
        _expect("get(where={'kind': 'fruit'})", pairs, [("a", ADDED["a"]), ("d", UPSERTED["d"])])
        return [p[0] for p in pairs]

    def query() -> Any:
        got = state["collection"].query(query_embeddings=[[0.9, 0.2, 0.0, 0.0]], n_results=2, include=["distances"])
        _expect("query nearest ids", list(got["ids"][0]), ["a", "b"])
        return list(got["ids"][0])

    def count() -> Any:
        n = state["collection"].count()
        _expect("count", n, 4)
        return n

    def delete() -> Any:
        state["collection"].delete(ids=["a"])
        left = state["collection"].get(ids=["a"])["ids"]
        _expect("get(ids=['a']) after delete", list(left), [])
        _expect("count after delete", state["collection"].count(), 3)
        return 3

    def delete_collection() -> Any:
        state["client"].delete_collection(name=collection)
        listed = state["client"].list_collections()
        names = sorted(c if isinstance(c, str) else c.name for c in listed)
        if collection in names:
            raise Wrong(f"delete_collection: {collection!r} still listed")
        return names

    step("connect", None, connect)
    step("heartbeat", "connect", heartbeat)
    step("version", "connect", version)
    step("create_collection", "connect", create)
    step("get_collection", "create_collection", get_collection)
    step("list_collections", "create_collection", list_collections)
    step("add", "create_collection", add)
    step("upsert", "add", upsert)
    step("get_where", "upsert", get_where)
    step("query", "upsert", query)
    step("count", "upsert", count)
    step("delete", "upsert", delete)
    step("delete_collection", "create_collection", delete_collection)
    _clear_system_cache(chromadb)
    transports = sorted(k for k, v in _hooked.items() if v)
    return {
        "client": getattr(chromadb, "__version__", "?"),
        "distribution": _distribution(),
        "transports": transports,
        "operations": ops,
    }


def _distribution() -> dict:
    """Which package provides ``chromadb`` here, measured: a thin-client row that ran the full
    package (or the reverse) would answer a question nobody asked."""
    from importlib import metadata

    for name in ("chromadb-client", "chromadb"):
        try:
            return {"name": name, "version": metadata.version(name)}
        except metadata.PackageNotFoundError:
            continue
    return {"name": "?", "version": "?"}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)[:MAX_TEXT]
