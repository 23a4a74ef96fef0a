"""The host side of a release: its worker process and proxy client/collection objects.

A ``Release`` owns at most one live worker (started lazily, restarted after a
crash or timeout) so Hypothesis examples and pytest tests reuse one process
per release. Proxies look like chromadb's objects but every call crosses the
pipe; nothing of chromadb is imported in this process.
"""

from __future__ import annotations

import atexit
import collections
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
import weakref
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from pathlib import Path
from queue import Empty, Queue
from typing import Any, Callable

from pytest_chroma_compat.common import interrupts
from pytest_chroma_compat.common.errors import ChromaError, CompatError, WorkerCrashed, WorkerKilled, WorkerTimeout
from pytest_chroma_compat.engine import cache_dirs, envs, leftovers, releases
from pytest_chroma_compat.engine.worker import wire

WORKER_MAIN = Path(__file__).parent / "worker" / "main.py"
DEFAULT_TIMEOUT = 120.0
# Replies read ahead of the caller. Bounded so a streamed export pushes back on the
# worker (its pipe fills, its write blocks) instead of piling pages up in this process:
# the host's memory must stay bounded by the page size, not by the store.
REPLY_BUFFER = 4
START_TIMEOUT = 300.0  # the first import after a build compiles bytecode
_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()


class Worker:
    """One process running one release; speaks the protocol in engine/worker/wire.py."""

    def __init__(self, env: envs.Environment, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.env = env
        self.timeout = timeout
        self.scratch = cache_dirs.scratch_dir() / f"{env.version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        (self.scratch / "cwd").mkdir(parents=True)
        self._owner = leftovers.hold(self.scratch)  # in use: no sweep removes it, whatever pid it sees
        self._stderr_tail: collections.deque[str] = collections.deque(
            maxlen=400
        )  # room for a stack dump of every thread
        self._stderr_lines = 0
        self._replies: Queue = Queue(maxsize=REPLY_BUFFER)
        self._next_id = 0
        self._lock = threading.Lock()
        self._closing = threading.Lock()  # one close at a time: a background reap and the atexit close
        self._closed = False
        self.dead: str | None = None
        # Its own process group: Ctrl-C on the host must not hit the release mid-write. So nothing
        # kills it when we die: it is registered for the signal handler (common/interrupts.py), and it
        # exits by itself when its parent (--host-pid) is gone, SIGKILL of the host included.
        self.proc = subprocess.Popen(
            [str(env.interpreter), "-u", str(WORKER_MAIN), "--adapter", env.family, "--host-pid", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.scratch / "cwd",
            env=envs.hermetic_environ(self.scratch),
            start_new_session=True,
        )
        interrupts.track(self.proc)
        try:
            self._threads = [
                threading.Thread(target=self._read_stdout, daemon=True),
                threading.Thread(target=self._read_stderr, daemon=True),
            ]
            for t in self._threads:
                t.start()
            _LIVE.add(self)
            self.info: dict = self.call("hello", timeout=START_TIMEOUT)
        except BaseException as exc:
            self.close()  # a worker that cannot even import chromadb is not left behind
            broken = envs.start_failure(env, exc)  # its environment's fault, not the release's
            if broken is not None:
                raise broken from None
            raise

    # -- plumbing ---------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self._replies.put(line)
        except (ValueError, OSError):  # the pipe closed under us (close() on a signal): the worker is gone
            pass
        self._replies.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            with open(self.scratch / "stderr.log", "ab") as log:
                for line in self.proc.stderr:
                    log.write(line)
                    self._stderr_tail.append(line.decode("utf-8", "replace").rstrip())
                    self._stderr_lines += 1
        except (ValueError, OSError):  # closed under us, or its scratch removed: nothing left to keep
            pass

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._stderr_tail)[-lines:])

    def _fail(self, exc: Exception) -> Exception:
        exc.worker = self  # type: ignore[attr-defined]
        self.dead = str(exc)
        self._kill()
        return exc

    def _dump_stacks(self, op: str, wait: float = 1.0) -> str | None:
        """Have the worker write every thread's stack to its stderr (faulthandler on SIGUSR1) and keep
        them in the cache's logs/, so a timeout says where chromadb was stuck; the file's path."""
        if self.proc.poll() is not None:
            return None
        mark = self._stderr_lines
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
        except (ProcessLookupError, PermissionError):
            return None
        time.sleep(wait)
        new = list(self._stderr_tail)[-(self._stderr_lines - mark) :] if self._stderr_lines > mark else []
        if not new:
            return None
        try:
            logs = cache_dirs.home() / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            out = logs / f"timeout-{self.env.version}-{op}-{time.strftime('%Y%m%dT%H%M%S')}-{self.proc.pid}.txt"
            out.write_text("\n".join(new) + "\n")
            return str(out)
        except OSError:
            return None

    def _kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.returncode is not None:
            interrupts.untrack(self.proc)

    def _describe_exit(self) -> tuple[str, int | None]:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "stopped answering", None
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}", code
            except ValueError:
                return f"was killed by signal {-code}", code
        return f"exited with status {code}", code

    def _send(self, op: str, args: dict) -> int:
        if self.dead:
            raise WorkerCrashed(
                f"chromadb {self.env.version} worker is gone: {self.dead}",
                returncode=self.proc.returncode,
                stderr_tail=self.stderr_tail(),
            )
        self._next_id += 1
        line = wire.dumps({"id": self._next_id, "op": op, "args": args}) + "\n"
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line.encode("ascii"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._raise_crash(op)
        return self._next_id

    def _raise_crash(self, op: str) -> None:
        # let the stderr reader catch the last words: it ends at the pipe's EOF, i.e. when the process is
        # gone (at once after a requested ``debug exit``); bounded, as the fixed 0.1 s sleep it replaces
        self._threads[1].join(timeout=0.1)
        how, code = self._describe_exit()
        tail = self.stderr_tail()
        if code == -signal.SIGKILL:  # we only SIGKILL after recording why; this came from outside
            raise self._fail(
                WorkerKilled(
                    f"chromadb {self.env.version} worker was killed from outside (SIGKILL) during {op!r}: out of "
                    "memory, or an operator; free memory and run again",
                    returncode=code,
                    stderr_tail=tail,
                )
            )
        raise self._fail(
            WorkerCrashed(
                f"chromadb {self.env.version} worker {how} during {op!r}"
                + (f"; stderr: {tail.splitlines()[-1]}" if tail else ""),
                returncode=code,
                stderr_tail=tail,
            )
        )

    def _receive(self, rid: int, op: str, deadline: float) -> dict:
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._replies.get(timeout=max(remaining, 0.001))
            except Empty:
                seconds = self.timeout if deadline else 0
                stacks = self._dump_stacks(op)
                raise self._fail(
                    WorkerTimeout(
                        f"chromadb {self.env.version} worker did not answer {op!r} within {seconds:g} s; killed it "
                        "(a limit of the harness, not a verdict: pass a larger --timeout)"
                        + (f"; where it was stuck: {stacks}" if stacks else ""),
                        seconds=seconds,
                        stderr_tail=self.stderr_tail(),
                    )
                ) from None
            if line is None:
                self._raise_crash(op)
            msg = wire.loads(line, object_hook=_unpack)
            if msg.get("id") == rid:
                return msg

    # -- calls ------------------------------------------------------------------------------
    def call(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        """One request, one reply; a chromadb exception comes back as ChromaError."""
        with self._lock:
            limit = timeout or self.timeout
            mark = self._stderr_lines
            rid = self._send(op, args)
            msg = self._receive(rid, op, time.monotonic() + limit)
            while "chunk" in msg:
                msg = self._receive(rid, op, time.monotonic() + limit)
        if not msg.get("ok"):
            raise self._error(op, msg.get("error") or {}, mark)
        return msg.get("result")

    @property
    def stderr_lines(self) -> int:
        """Lines the worker wrote to stderr so far (a mark for ``error``)."""
        return self._stderr_lines

    def error(self, op: str, error: dict, mark: int) -> ChromaError:
        """The ChromaError of ``op``'s error reply (see ``_error``); ``mark``: ``stderr_lines`` when it began."""
        return self._error(op, error, mark)

    def _error(self, op: str, error: dict, mark: int) -> ChromaError:
        """A Rust panic on a background thread surfaces as an ordinary error (1.0.21:
        "Error sending message to compactor"); stderr says "panicked at". Say so."""
        time.sleep(0.02)
        new = list(self._stderr_tail)[-(self._stderr_lines - mark) :] if self._stderr_lines > mark else []
        panics = [ln for ln in new if "panicked at" in ln]
        if panics:
            error = {
                **error,
                "message": f"{error.get('message', '')} [Rust panic on a background thread: {panics[0].strip()}]",
                "base_exception": True,
            }
        exc = ChromaError(op, error)
        exc.worker = self  # which release raised it, when both sides of a migration are in one call stack
        return exc

    def stream(self, op: str, timeout: float | None = None, **args: Any) -> Generator[Any, None, Any]:
        """A request answered by many chunks; yields each, then returns the final result. A chunk
        ``{"calling": name, ...}`` (an op made of calls: ``write_probe``) names the call in progress: a
        crash or a timeout is reported as during that call, as it would be when made on its own."""
        with self._lock:
            limit = timeout or self.timeout
            mark = self._stderr_lines
            rid = self._send(op, args)
            doing = op
            while True:
                msg = self._receive(rid, doing, time.monotonic() + limit)
                if "chunk" in msg:
                    chunk = msg["chunk"]
                    if isinstance(chunk, dict) and isinstance(chunk.get("calling"), str):
                        doing = chunk["calling"]
                    yield chunk
                    continue
                if not msg.get("ok"):
                    raise self._error(op, msg.get("error") or {}, mark)
                return msg.get("result")

    def close(self, wait: bool = True) -> None:
        """Shut the worker down and reap it. ``wait=False``: the same, on a background thread, for a
        worker whose stores nothing reads afterwards (a stop takes 0.3-0.45 s of interpreter teardown);
        the atexit close still waits for it, so no process outlives the host."""
        if not wait and not self.dead:
            threading.Thread(target=self.close, name=f"reap-{self.env.version}", daemon=True).start()
            return
        with self._closing:
            self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc.poll() is None and not self.dead:
            try:
                self.call("shutdown", timeout=30)
            except Exception:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._kill()
        while True:  # unblock the reader thread if it waits to hand over a reply nobody will read
            try:
                self._replies.get_nowait()
            except Empty:
                break
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream and stream.close()
            except OSError:
                pass
        self.dead = self.dead or "closed"
        shutil.rmtree(self.scratch, ignore_errors=True)
        self._owner.close()
        _LIVE.discard(self)


def _project_path() -> list[str]:
    """The caller's project root (nearest pyproject.toml or setup.py up from the cwd) and the cwd."""
    cwd = Path.cwd()
    out = [str(cwd)]
    for candidate in (cwd, *cwd.parents):
        if (candidate / "pyproject.toml").is_file() or (candidate / "setup.py").is_file():
            if str(candidate) not in out:
                out.insert(0, str(candidate))
            break
    return out


def _unpack(obj: dict) -> Any:
    """json object hook: packed arrays become numpy arrays of the dtype the release returned
    (done while parsing, so a page of metadata is not walked a second time in Python)."""
    if wire.ND in obj:
        import numpy as np

        return wire.unpack_ndarray(obj, np)
    return obj


def pack_vectors(values: Any) -> Any:
    """Vectors as they cross the pipe (what the proxies' writes send)."""
    return _pack_vectors(values)


def _pack_vectors(values: Any) -> Any:
    if values is None:
        return None
    import numpy as np

    if isinstance(values, np.ndarray):
        return wire.pack_ndarray(np.ascontiguousarray(values), "ndarray")
    rows = list(values)
    if rows and isinstance(rows[0], np.ndarray):
        return wire.pack_ndarray(np.ascontiguousarray(np.stack(rows)), "ndarray")
    return wire.pack_rows(rows, "float64", "list")


@atexit.register
def close_all() -> None:
    """Stop every live worker and wait for each (those stopping in the background included)."""
    for worker in list(_LIVE):
        worker.close()


class Release:
    """A chromadb release, installed in its own environment and driven through a worker.

    >>> with Release("0.4.24").persistent(path) as client:
    ...     client.create_collection("docs").add(ids=["a"], embeddings=[[0.1, 0.2]])

    ``kind="client"`` is the release's thin ``chromadb-client`` package
    (envs.PACKAGES): only ``http`` works there, the way it works for its users.
    """

    def __init__(self, version: str, *, timeout: float = DEFAULT_TIMEOUT, kind: str = "full") -> None:
        if kind not in envs.PACKAGES:
            raise CompatError(f"unknown environment kind {kind!r} (one of {', '.join(envs.PACKAGES)})")
        self.kind = kind
        self.version = releases.resolve(version) if kind == "full" else releases.resolve_thin(version)
        self.timeout = timeout
        self._env: envs.Environment | None = None
        self._worker: Worker | None = None
        self._spare: Future | None = None  # a fresh worker started ahead of need (prestart)
        self._box: list = [None, None]  # [worker, spare]: what the finalizer stops
        self._finalizer = weakref.finalize(self, Release._stop, self._box)

    def __repr__(self) -> str:
        return f"Release({self.version!r})" if self.kind == "full" else f"Release({self.version!r}, kind={self.kind!r})"

    @staticmethod
    def _stop(box: list) -> None:
        worker, spare = box
        if worker is not None:
            worker.close()
        if spare is not None:
            Release._drop(spare, wait=True)

    @staticmethod
    def _drop(spare: Future, *, wait: bool) -> None:
        """Stop a prestarted worker nobody took (once it has started)."""
        if not wait:
            threading.Thread(target=Release._drop, args=(spare,), kwargs={"wait": True}, daemon=True).start()
            return
        try:
            spare.result().close()
        except BaseException:  # noqa: BLE001 - it failed to start: nothing to stop (a real start reports it)
            pass

    @property
    def env(self) -> envs.Environment:
        if self._env is None:
            self._env = envs.ensure(self.version, kind=self.kind)
        return self._env

    def prestart(self) -> None:
        """Start a fresh worker now, in the background (it imports chromadb meanwhile); the next start of
        ``worker`` takes it instead of starting one then. It is a fresh process that has touched no store,
        exactly what that start would give. No-op while a live worker or a spare exists."""
        if self._spare is not None or (self._worker is not None and not self._worker.dead):
            return
        env, timeout = self.env, self.timeout  # the environment is ensured here, in the caller
        fut: Future = Future()

        def start() -> None:
            try:
                fut.set_result(Worker(env, timeout=timeout))
            except BaseException as exc:  # noqa: BLE001 - handed to the taker, which starts one itself
                fut.set_exception(exc)

        threading.Thread(target=start, name=f"prestart-{self.version}", daemon=True).start()
        self._spare = self._box[1] = fut

    def _take_spare(self) -> Worker | None:
        spare, self._spare, self._box[1] = self._spare, None, None
        if spare is None:
            return None
        try:
            w = spare.result()
        except BaseException:  # noqa: BLE001 - the caller starts one in the ordinary way, which reports why
            return None
        if w.dead or w.proc.poll() is not None:
            w.close()
            return None
        return w

    @property
    def worker(self) -> Worker:
        if self._worker is None or self._worker.dead:
            if self._worker is not None:
                self._worker.close()  # reap it and remove its scratch space
            self._worker = self._box[0] = None
            if interrupts.interrupted():  # a thread still at work after the signal: no new process for it
                raise CompatError(f"chromadb {self.version}: not started, the command was interrupted")
            self._worker = self._box[0] = self._take_spare() or Worker(self.env, timeout=self.timeout)
        return self._worker

    def current_worker(self) -> Worker | None:
        """The live worker, if one is running (None: the next call starts or takes one)."""
        return self._worker if self._worker is not None and not self._worker.dead else None

    def raised(self, exc: BaseException) -> bool:
        """True when ``exc`` came from this release's current worker (see ``Worker._error``)."""
        return self._worker is not None and getattr(exc, "worker", None) is self._worker

    def info(self) -> dict:
        return self.worker.info

    def call(self, op: str, **args: Any) -> Any:
        return self.worker.call(op, **args)

    def persistent(
        self,
        path: str | os.PathLike,
        settings: dict | None = None,
        *,
        tenant: str | None = None,
        database: str | None = None,
    ) -> Client:
        """A client on ``path``; ``tenant``/``database`` (0.4.15 on) open one other than the default."""
        return self._open(
            "persistent", path=str(Path(path).resolve()), settings=settings, tenant=tenant, database=database
        )

    def ephemeral(self, settings: dict | None = None) -> Client:
        return self._open("ephemeral", settings=settings)

    def http(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        headers: dict | None = None,
        settings: dict | None = None,
        *,
        tenant: str | None = None,
        database: str | None = None,
    ) -> Client:
        return self._open(
            "http", host=host, port=port, headers=headers, settings=settings, tenant=tenant, database=database
        )

    def _open(self, kind: str, **args: Any) -> Client:
        worker = self.worker
        handle = worker.call("open", kind=kind, **{k: v for k, v in args.items() if v is not None})["client"]
        return Client(self, worker, handle, args.get("path"))

    def run(
        self,
        target: str | Callable[..., Any],
        *args: Any,
        client: Client | None = None,
        sys_path: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call a function of your own inside this release's interpreter and return its result.

        ``target`` is a function (``Release("0.6.3").run(myapp.seed.fill, 100)``) or its name as
        ``"module:function"``. Arguments and the result cross the process boundary as JSON (numpy
        arrays as lists), so pass and return plain data. With ``client`` (a client of this
        release), the release's own chromadb client object is passed first. Your project is on
        the path by default: the directory holding the nearest pyproject.toml (or setup.py) from
        the current directory up, and the current directory; ``sys_path`` replaces that.
        """
        if callable(target):
            target = f"{target.__module__}:{target.__qualname__}"
        if sys_path is None:
            sys_path = _project_path()
        return self.worker.call(
            "run",
            target=target,
            client=client.handle if client else None,
            sys_path=sys_path,
            args=list(args),
            kwargs=kwargs,
        )

    def close(self, wait: bool = True) -> None:
        """Stop the worker (and a prestarted spare). ``wait=False``: reaped in the background, for when
        nothing reads this release's stores afterwards (see ``Worker.close``)."""
        if self._worker is not None:
            self._worker.close(wait)
            self._worker = self._box[0] = None
        if self._spare is not None:
            spare, self._spare, self._box[1] = self._spare, None, None
            Release._drop(spare, wait=wait)

    def __enter__(self) -> Release:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Client:
    """A client of one release, living in that release's worker."""

    def __init__(self, release: Release, worker: Worker, handle: int, path: str | None) -> None:
        self.release = release
        self.worker = worker
        self.handle = handle
        self.path = path
        self.closed = False

    def __repr__(self) -> str:
        return f"<chromadb {self.release.version} client {self.path or ''}>"

    def _call(self, op: str, **args: Any) -> Any:
        return self.worker.call(op, client=self.handle, **args)

    def create_collection(self, name: str, metadata: dict | None = None, get_or_create: bool = False) -> Collection:
        info = self._call("create_collection", name=name, metadata=metadata, get_or_create=get_or_create)
        return Collection(self, info)

    def get_or_create_collection(self, name: str, metadata: dict | None = None) -> Collection:
        return self.create_collection(name, metadata, get_or_create=True)

    def get_collection(self, name: str) -> Collection:
        return Collection(self, self._call("get_collection", name=name))

    def delete_collection(self, name: str) -> None:
        self._call("delete_collection", name=name)

    def list_collection_names(self) -> list[str]:
        return self._call("list_collections")["names"]

    def list_collections(self) -> dict:
        """Names plus the type the release returned (``Collection`` or ``str``)."""
        return self._call("list_collections")

    def heartbeat(self) -> Any:
        return self._call("heartbeat")

    def reset(self) -> Any:
        return self._call("reset")

    def flush(self) -> None:
        self._call("flush")

    def ensure_database(self, tenant: str, database: str) -> None:
        """Create ``tenant`` and its ``database`` in this client's store unless they exist."""
        self._call("ensure_database", tenant=tenant, database=database)

    def close(self) -> None:
        if not self.closed and not self.worker.dead:
            self._call("close")
        self.closed = True

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Collection:
    def __init__(self, client: Client, info: dict) -> None:
        self.client = client
        self.name: str = info["name"]
        self.id: str = info["id"]
        self.metadata: dict | None = info.get("metadata")

    def __repr__(self) -> str:
        return f"<Collection {self.name!r} of chromadb {self.client.release.version}>"

    def _call(self, op: str, **args: Any) -> Any:
        return self.client._call(op, collection=self.name, **{k: v for k, v in args.items() if v is not None})

    def add(
        self, ids: list[str], embeddings: Any = None, documents: list | None = None, metadatas: list | None = None
    ) -> None:
        self._call("add", ids=ids, embeddings=_pack_vectors(embeddings), documents=documents, metadatas=metadatas)

    def upsert(
        self, ids: list[str], embeddings: Any = None, documents: list | None = None, metadatas: list | None = None
    ) -> None:
        self._call("upsert", ids=ids, embeddings=_pack_vectors(embeddings), documents=documents, metadatas=metadatas)

    def update(
        self, ids: list[str], embeddings: Any = None, documents: list | None = None, metadatas: list | None = None
    ) -> None:
        self._call("update", ids=ids, embeddings=_pack_vectors(embeddings), documents=documents, metadatas=metadatas)

    def delete(
        self, ids: list[str] | None = None, where: dict | None = None, where_document: dict | None = None
    ) -> Any:
        return self._call("delete", ids=ids, where=where, where_document=where_document)

    def get(
        self,
        ids: list[str] | None = None,
        where: dict | None = None,
        where_document: dict | None = None,
        limit: int | None = None,
        offset: int | None = None,
        include: list[str] | None = None,
    ) -> dict:
        return self._call(
            "get", ids=ids, where=where, where_document=where_document, limit=limit, offset=offset, include=include
        )

    def query(
        self,
        query_embeddings: Any,
        n_results: int = 10,
        where: dict | None = None,
        where_document: dict | None = None,
        include: list[str] | None = None,
    ) -> dict:
        return self._call(
            "query",
            query_embeddings=_pack_vectors(query_embeddings),
            n_results=n_results,
            where=where,
            where_document=where_document,
            include=include,
        )

    def count(self) -> int:
        return self._call("count")

    def peek(self, limit: int = 10) -> dict:
        return self._call("peek", limit=limit)

    def modify(self, name: str | None = None, metadata: dict | None = None) -> None:
        info = self._call("modify_collection", name=name, metadata=metadata)
        self.name, self.metadata = info["name"], info.get("metadata")

    def export(self, batch_size: int = 1000, include: list[str] | None = None, offset: int = 0) -> Iterator[dict]:
        """Every record from ``offset`` on, streamed in pages: memory is bounded by one page, not the collection."""
        return self.client.worker.stream(
            "export",
            client=self.client.handle,
            collection=self.name,
            batch_size=batch_size,
            include=include,
            offset=offset,
        )
