"""What a page of records comes down to: a content hash, a running digest, its nearest neighbours.

Imported by the worker (a sibling file, run by a release's own interpreter) and
by the host (``pytest_chroma_compat.worker.fingerprint``), so a page a release
summarizes and a page the host holds are summarized by the same code. Needs
only the standard library and numpy, which every chromadb release brings.

Why pages are summarized where they are read: comparing two releases used to
mean shipping both releases' full pages to the host, decoding and comparing
them there; on two cores that cost more than the releases spent reading. Now
each release hashes the page it returned, the host compares two hashes, and
full records cross the pipe only for a page whose hashes differ (and the
source's first page, from which filters are picked).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

import numpy as np

Default = Callable[[Any], Any]
RECORD_FIELDS = ["embeddings", "documents", "metadatas"]  # what a page is read with, on either side


def encode(values: list, default: Default | None = None) -> bytes:
    """Canonical JSON: sorted keys (releases differ in metadata key order), and JSON keeps
    ``True``, ``1`` and ``1.0`` apart, so types count."""
    return json.dumps(
        values, sort_keys=True, ensure_ascii=False, allow_nan=True, separators=(",", ":"), default=default
    ).encode("utf-8", "surrogatepass")


def float32_rows(embeddings: Any, n: int) -> np.ndarray | None:
    """Whatever a release returned as embeddings, as an (n, d) float32 array.

    float32 is what every release stores; 1.x hands it back widened to float64,
    0.4 as lists of Python floats. The comparison is on the stored values.
    """
    if embeddings is None:
        return None
    arr = np.asarray(embeddings, dtype=np.float32)
    return arr.reshape(n, -1) if arr.size else arr.reshape(n, 0)


def parts(
    ids: list, documents: list, metadatas: list, embeddings: np.ndarray | None, default: Default | None = None
) -> tuple[bytes, bytes, bytes, bytes]:
    """The page as four canonical byte strings: ids, documents, metadatas, little-endian float32 vectors."""
    vectors = b"" if embeddings is None else np.ascontiguousarray(embeddings, dtype="<f4").tobytes()
    return encode(ids, default), encode(documents, default), encode(metadatas, default), vectors


def page_hash(page: tuple[bytes, bytes, bytes, bytes], width: int | None) -> str:
    """Equal hashes: the same records, in the same order, bit for bit."""
    h = hashlib.sha256(f"{width}".encode())
    for part in page:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


class Digest:
    """sha256 over every record of a collection, in page order, whatever the page size.

    Four running hashes (ids, documents, metadatas, vectors) fed with each page's
    JSON arrays minus their brackets, joined by commas: pages of 7 or of 1000
    records give the same digest. Equal digests mean bit-identical ids,
    documents, metadata (types included) and float32 embeddings.
    """

    def __init__(self) -> None:
        self._parts = [hashlib.sha256() for _ in range(4)]
        self._started = False

    def update(self, page: tuple[bytes, bytes, bytes, bytes]) -> None:
        if page[0] == b"[]":
            return
        sep = b"," if self._started else b""
        self._started = True
        for running, part in zip(self._parts[:3], page[:3]):
            running.update(sep + part[1:-1])
        self._parts[3].update(page[3])

    def hexdigest(self) -> str:
        return hashlib.sha256(b"".join(p.digest() for p in self._parts)).hexdigest()[:32]


def nearest(ids: list, embeddings: np.ndarray | None, queries: np.ndarray, space: str, k: int) -> list:
    """For each query vector, the page's ``k`` closest records as ``[ids, distances]``.

    The host merges pages into the exact top-k of the whole collection, against
    which each release's own ``query()`` answers are graded. All queries at once
    (one matrix product): the direct form costs a pass over the page per query.
    """
    if embeddings is None or not len(ids) or embeddings.shape[1] != queries.shape[1]:
        return [[[], []] for _ in range(len(queries))]
    mat = embeddings.astype(np.float64)
    dots = mat @ queries.T  # (n, q)
    if space == "ip":
        dist = 1.0 - dots
    elif space == "cosine":
        norms = np.linalg.norm(mat, axis=1)[:, None] * np.linalg.norm(queries, axis=1)[None, :]
        dist = 1.0 - dots / np.where(norms == 0, 1.0, norms)
    else:  # squared L2
        dist = np.maximum((mat * mat).sum(axis=1)[:, None] - 2.0 * dots + (queries * queries).sum(axis=1)[None, :], 0.0)
    if k < dist.shape[0]:  # the k smallest of each column first: a full sort per query costs 2x on a 1000-record page
        part = np.argpartition(dist, k - 1, axis=0)[:k]
    else:
        part = np.broadcast_to(np.arange(dist.shape[0])[:, None], dist.shape)
    out = []
    for j in range(dist.shape[1]):
        cand = np.sort(part[:, j])  # record order first, so ties keep it (as a stable sort of the page would)
        keep = cand[np.argsort(dist[cand, j], kind="stable")]
        out.append([[ids[i] for i in keep], dist[keep, j].tolist()])
    return out
