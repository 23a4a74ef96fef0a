"""The one-way door: after the upgrade, can the release you ran before open the store again?

Why: an upgrade plan relies on pinning the old release back when something goes
wrong. Once the new release has opened a store in place and written to it, the
old release may refuse it (0.4.24 cannot open a store 1.x migrated; 1.0.21 panics
on one 1.5.9 wrote). That is not a defect of either release, and not data loss,
so it is reported beside the verdict, and decides it only with ``--require-rollback``.

It is measured in a fresh worker of the old release (opening a store a newer
release wrote can leave a worker in any state, and the round trip's old worker
serves the remaining examples), after the new release's worker is gone.

Where, in a round trip (issue 27): once per path, at the END of the pair
(``PairRunner.settle_rollbacks`` in roundtrip/pair.py, called by ``check_pair``
after every path, by ``check_path`` and ``replay`` when run alone), on the store
of the path's first example, kept until then. Before, it ran right after that
first example, which stopped the new release's worker and started a fresh old
one in the middle of the examples. Same store, same reads, same labels, same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pytest_chroma_compat.common.errors import ChromaError, CompatError, HarnessFault, WorkerError
from pytest_chroma_compat.engine.client import Release

# export-import never changes the source store: rolling back is going on using it
UNTOUCHED = "possible (export-import leaves the source store as it was)"


@dataclass
class Rollback:
    release: str
    error: str | None = None  # the first line of what the release raised; None: it reopened the store
    read: list[str] = field(default_factory=list)  # "name: count" per collection it read

    @property
    def possible(self) -> bool:
        return self.error is None

    def label(self) -> str:
        """``possible`` or ``not possible: <first error line>``: the words the reports and the final line use."""
        return "possible" if self.possible else f"not possible: {self.error}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split())[:300] if text else type(exc).__name__


def reopen(
    version: str,
    store: Path,
    timeout: float | None = None,
    *,
    settings: dict | None = None,
    release: Release | None = None,
    wait: bool = True,
) -> Rollback:
    """``version`` lists every collection of ``store`` and counts, pages and queries each
    (``chroma-compat check`` at the end of a pair, ``validate`` after the target wrote to its copy).

    ``release``: a ``Release`` of ``version`` that has served nothing yet, typically prestarted
    (``Release.prestart``) so its import overlapped other work: still a fresh process that touched
    no store. The worker is closed here; ``wait=False`` reaps it in the background, for a caller
    that reads ``store`` no more (the pair; validate reopens the same copy with another release)."""
    out = Rollback(version)
    try:
        back = release or (Release(version) if timeout is None else Release(version, timeout=timeout))
        try:
            with back.persistent(store, settings) as client:
                for name in client.list_collection_names():
                    col = client.get_collection(name)
                    n = col.count()
                    page = col.get(limit=1, include=["embeddings"])
                    vectors = page.get("embeddings")
                    if n and vectors is not None and len(vectors):
                        col.query(query_embeddings=[vectors[0]], n_results=1, include=["distances"])
                    out.read.append(f"{name}: {n}")
        finally:
            back.close(wait=wait)
    except HarnessFault:
        raise
    except (ChromaError, WorkerError) as exc:  # the release refused the store: that is the answer
        out.error = _first_line(exc)
    except CompatError as exc:  # it could not even start: ours to fix, never "not possible"
        raise HarnessFault(f"cannot start chromadb {version} to check the rollback: {exc}") from None
    return out
