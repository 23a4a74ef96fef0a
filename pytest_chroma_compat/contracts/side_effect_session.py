"""A realistic local session of one release, in a fresh interpreter, with its side effects recorded.

Run by side_effects.py as ``<release python> side_effect_session.py CONFIG.json`` (stdlib + chromadb
only), in a sandbox whose HOME, cwd and TMPDIR are empty directories of their own.

Why it is built this way:
- A fresh interpreter: a release may write at ``import chromadb`` (onnxruntime's device id, a log
  file), and the worker that starts us imported chromadb long ago.
- Python audit hooks see Python-level opens, mkdirs, renames, host lookups and connects, with the
  host name (a native trace only sees the DNS server). Every lookup and connect is REFUSED here,
  after it is recorded: nothing leaves the machine, and the attempt is still on the record.
- Each step creates a marker directory ``meta/phase-NN-step`` before it starts, so a native trace
  (strace, run around us by side_effects.py) can tell which step a write belongs to.
- Events go to an already-open file descriptor with ``os.write``: writing them must not itself
  raise audit events (or recurse into the hook).
- Only the main thread's events carry a step; work a release hands to its own threads (telemetry
  senders, the 1.x core's runtime) is timed by the scheduler, so it is labelled "background".
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

STEPS = ("import", "client", "create", "add", "query", "get", "close", "exit")
E2 = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_FS_EVENTS = {"open", "os.mkdir", "os.rename", "os.link", "os.symlink", "os.truncate", "sqlite3.connect"}
_NET_EVENTS = {
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.connect",
    "socket.sendto",
    "socket.sendmsg",
}


class Recorder:
    """The audit hook: records what the release writes and which hosts it tries to reach."""

    def __init__(self, events_fd: int, meta: str) -> None:
        self.fd = events_fd
        self.meta = meta
        self.step = "start"
        self.main = threading.get_ident()
        self.local = threading.local()

    def _emit(self, record: dict) -> None:
        record["when"] = self.step if threading.get_ident() == self.main else "background"
        os.write(self.fd, (json.dumps(record) + "\n").encode())

    def enter(self, step: str) -> None:
        self.step = step
        os.mkdir(os.path.join(self.meta, f"phase-{STEPS.index(step):02d}-{step}"))

    def __call__(self, event: str, args: tuple) -> None:
        if event not in _FS_EVENTS and event not in _NET_EVENTS:
            return
        if getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            blocked = self._record(event, args)
        except Exception:  # recording must never break the release; a refusal is raised below
            blocked = None
        finally:
            self.local.busy = False
        if blocked is not None:
            raise blocked

    def _path(self, value: Any) -> str | None:
        if isinstance(value, bytes):
            value = os.fsdecode(value)
        if not isinstance(value, str) or value in ("", ":memory:") or value.startswith("file:"):
            return None
        path = os.path.abspath(value)
        return None if path == self.meta or path.startswith(self.meta + os.sep) else path

    def _record(self, event: str, args: tuple) -> BaseException | None:
        if event in _FS_EVENTS:
            if event == "open":
                path, mode, flags = (list(args) + [None, None])[:3]
                writes = (flags & _WRITE_FLAGS) if isinstance(flags, int) else any(c in (mode or "") for c in "wax+")
                target = path if writes else None
            elif event in ("os.rename", "os.link", "os.symlink"):
                target = args[1]
            else:
                target = args[0]
            path = self._path(target)
            if path is not None:
                self._emit({"kind": "write", "path": path, "seen": "audit"})
            return None
        if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
            host = os.fsdecode(args[0]) if isinstance(args[0], bytes) else str(args[0])
            port = args[1] if event == "socket.getaddrinfo" and len(args) > 1 and args[1] not in (None, 0) else None
            self._emit({"kind": "net", "what": f"lookup {host}" + (f":{port}" if port is not None else "")})
            import socket

            return socket.gaierror(socket.EAI_NONAME, "refused by the contract probe: no network")
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and len(address) >= 2:
            where = f"{address[0]}:{address[1]}"
        else:
            where = f"unix:{os.fsdecode(address) if isinstance(address, bytes) else address}"
        self._emit({"kind": "net", "what": f"{event.split('.', 1)[1]} {where}"})
        import errno

        return OSError(errno.ENETUNREACH, "refused by the contract probe: no network")


def _never_embed(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("a contract probe never embeds text")


def _client(chromadb: Any, store: str, telemetry: bool | None) -> Any:
    """A persistent client; ``telemetry=None`` leaves anonymized_telemetry at the release's default."""
    from chromadb.config import Settings  # type: ignore

    values: dict = {} if telemetry is None else {"anonymized_telemetry": telemetry}
    if hasattr(chromadb, "PersistentClient"):
        return chromadb.PersistentClient(path=store, settings=Settings(**values))
    values.update(chroma_db_impl="duckdb+parquet", persist_directory=store)  # 0.3
    return chromadb.Client(Settings(**values))


def _close(client: Any) -> None:
    """Stop the client's system and drop it from the per-path cache, as an application would at shutdown."""
    system = getattr(client, "_system", None)
    if system is not None and hasattr(system, "stop"):
        system.stop()
    for klass in type(client).__mro__:
        cache = vars(klass).get("_identifer_to_system") or vars(klass).get("_identifier_to_system")
        if isinstance(cache, dict):
            for key in [k for k, v in cache.items() if v is system]:
                del cache[key]


def session(recorder: Recorder, store: str, telemetry: bool | None) -> None:
    recorder.enter("import")
    import chromadb  # type: ignore

    recorder.enter("client")
    client = _client(chromadb, store, telemetry)
    recorder.enter("create")
    # 0.4+ take embedding_function=None; 0.3 swaps None for its default model, so it gets one that refuses
    ef = None if hasattr(chromadb, "PersistentClient") else _never_embed
    col = client.create_collection(name="side-effects", embedding_function=ef)
    recorder.enter("add")
    col.add(
        ids=["a", "b", "c"],
        embeddings=E2,
        documents=["hello", "world", "again"],
        metadatas=[{"k": 1}, {"k": 2}, {"k": 3}],
    )
    recorder.enter("query")
    col.query(query_embeddings=[E2[0]], n_results=2)
    recorder.enter("get")
    col.get(ids=["a"])
    recorder.enter("close")
    _close(client)
    recorder.enter("exit")  # what runs from here on is the release's atexit work


def main(config_path: str) -> int:
    with open(config_path) as fh:
        config = json.load(fh)
    meta = config["meta"]
    fd = os.open(os.path.join(meta, "events.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    recorder = Recorder(fd, meta)
    sys.addaudithook(recorder)
    outcome: dict = {"session": "ok"}
    try:
        session(recorder, config["store"], config["telemetry"])
    except BaseException as exc:  # a refusal, a panic: part of the answer, with the step it stopped at
        outcome = {"session": {"error": type(exc).__name__, "step": recorder.step}}
    # written with os.* on an fd the hook ignores (meta), before the release's atexit work runs
    out = os.open(os.path.join(meta, "outcome.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(out, json.dumps(outcome).encode())
    os.close(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
