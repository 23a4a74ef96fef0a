"""The sweep: install every release in a range and drive it through a worker.

This is how pin rules are found and kept honest. A release passes when it
installs, imports, and survives a small persistent round trip (write, close,
reopen, get, query). Run with ``ignore_pins`` to see the error each rule
prevents; run normally to see that the rules make every release work.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Callable

from pytest_chroma_compat.common.errors import ChromaError, CompatError
from pytest_chroma_compat.engine import cache_dirs, envs, leftovers, pins
from pytest_chroma_compat.engine.client import Worker

EMBEDDINGS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]]


@dataclass
class SweepResult:
    version: str
    ok: bool
    stage: str  # install | import | write | read | done
    error: str = ""
    pins: tuple[str, ...] = ()
    seconds: float = 0.0


def smoke(worker: Worker, path: str, result: SweepResult) -> None:
    """A persistent round trip; ``result.stage`` tells how far it got."""
    from pytest_chroma_compat.engine.worker import wire

    result.stage = "write"
    c = worker.call("open", kind="persistent", path=path)["client"]
    worker.call("create_collection", client=c, name="sweep", metadata={"hnsw:space": "l2"})
    worker.call(
        "add",
        client=c,
        collection="sweep",
        ids=["a", "b", "c"],
        embeddings=wire.pack_rows(EMBEDDINGS),
        documents=["x", "y", "z"],
        metadatas=[{"n": 1}, {"n": 2.5}, {"n": "s"}],
    )
    worker.call("close", client=c)
    result.stage = "read"
    c = worker.call("open", kind="persistent", path=path)["client"]
    got = worker.call("get", client=c, collection="sweep", include=["documents", "metadatas"])
    if sorted(got["ids"]) != ["a", "b", "c"]:
        raise AssertionError(f"read back ids {got['ids']}")
    hits = worker.call(
        "query",
        client=c,
        collection="sweep",
        query_embeddings=wire.pack_rows([[1.0, 0.0, 0.0]]),
        n_results=1,
        include=["distances"],
    )
    if hits["ids"] != [["a"]]:
        raise AssertionError(f"nearest neighbour of a is {hits['ids']}")
    worker.call("close", client=c)
    result.stage = "done"


def sweep_one(version: str, ignore_pins: bool = False) -> SweepResult:
    started = time.monotonic()
    applied = () if ignore_pins else tuple(r.id for r in pins.for_version(version))
    result = SweepResult(version, False, "install", pins=applied)
    worker = None
    store = tempfile.mkdtemp(prefix=leftovers.prefix("sweep"), dir=cache_dirs.scratch_dir())
    try:
        env = envs.ensure(version, ignore_pins=ignore_pins)
        result.stage = "import"
        worker = Worker(env)
        smoke(worker, store, result)
        result.ok = True
    except ChromaError as exc:
        result.error = str(exc).splitlines()[0][:300]
    except CompatError as exc:
        result.error = str(exc)[:300]
    except AssertionError as exc:
        result.error = f"wrong answer: {exc}"
    finally:
        if worker is not None:
            worker.close()
        shutil.rmtree(store, ignore_errors=True)
        result.seconds = round(time.monotonic() - started, 1)
    return result


def sweep(
    versions: Iterable[str], ignore_pins: bool = False, progress: Callable[[SweepResult], None] = lambda r: None
) -> list[SweepResult]:
    out = []
    for version in versions:
        res = sweep_one(version, ignore_pins)
        progress(res)
        out.append(res)
    return out


def as_dict(result: SweepResult) -> dict:
    return asdict(result)
