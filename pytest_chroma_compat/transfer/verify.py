"""``migrate --verify``: both sides of every collection read back and compared, digest against digest.

Why read by id, in sorted id order: the two releases return records in
different orders (``get()`` order changed twice, docs/contracts.md), so both
are asked for the same ids page by page and each summarizes its page where it
read it (``engine/worker/fingerprint.py``, the digest ``validate`` computes). Equal
digests mean bit-identical ids, documents, metadata (types included) and
float32 vectors; a count check catches records the target has and the source
does not. Collection metadata and the distance space are compared too: a
collection that comes back as l2 instead of cosine answers every query
differently with every record intact.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from pytest_chroma_compat.engine.client import Collection
from pytest_chroma_compat.engine.worker import fingerprint as fp

PAGE = 500
ID_PAGE = 5000
SETTINGS_PREFIX = "hnsw:"  # index settings: 1.x moves them from metadata into the configuration


@dataclass
class Verified:
    label: str
    source_count: int = 0
    target_count: int = 0
    source_digest: str = ""
    target_digest: str = ""
    source_space: str = ""
    target_space: str = ""
    differences: list[str] = field(default_factory=list)
    #: records the target release's own write path changes (``_compare_page``): how many, and a few
    release_changes: int = 0
    release_examples: list[str] = field(default_factory=list)
    #: with release changes: the source's digest with those records as the target release stores them
    expected_digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _ids(col: Collection) -> list[str]:
    out: list[str] = []
    for page in col.export(batch_size=ID_PAGE, include=[]):
        out.extend(page["ids"])
    return out


#: (records, space) -> the same records as the TARGET release returns them after writing them into a
#: fresh collection of its own; records are {"ids", "embeddings" (float32 rows), "documents", "metadatas"}
Control = Callable[[dict, str], dict]


def _field_change(name: str, rid: str, left: Any, right: Any) -> str:
    if name == "embedding":
        return f"record {rid!r}: its embedding (largest change {float(np.abs(left - right).max()):.3g})"
    return f"record {rid!r}: {name} {left!r} on the source, {right!r} on the target"


def _fields(rec: dict, i: int) -> dict[str, Any]:
    vec = rec["embeddings"]
    return {
        "document": None if rec["documents"] is None else rec["documents"][i],
        "metadata": None if rec["metadatas"] is None else rec["metadatas"][i],
        "embedding": None if vec is None else vec[i],
    }


def _same(name: str, left: Any, right: Any) -> bool:
    if name == "embedding":
        return (left is None) == (right is None) and (left is None or left.tobytes() == right.tobytes())
    return fp.encode([left]) == fp.encode([right])


def _records(reply: dict) -> dict:
    rec = dict(reply["records"])
    rec["embeddings"] = fp.float32_rows(rec["embeddings"], len(rec["ids"]))  # numpy already, from the reply
    return rec


def _compare_page(
    src: Collection, tgt: Collection, chunk: list[str], space: str, control: Control | None, replaced: dict[str, dict]
) -> tuple[str | None, list[str]]:
    """Why a page's hashes differ: ``(the first unexplained change, [])``, or ``(None, changes)`` when
    every changed record comes back from a fresh collection of the target release, written by that
    release itself, exactly as the target holds it (``control``): the release's write path changed
    it (1.x rescales cosine vectors and re-parses some float metadata, measured), not the move.
    ``replaced`` gets, per explained record, the fields as the target release stores them."""
    a = _records(src._call("fingerprint", ids=chunk, records=True))
    b = _records(tgt._call("fingerprint", ids=chunk, records=True))
    rows_b = {rid: i for i, rid in enumerate(b["ids"])}
    changed: list[tuple[int, int, list[str]]] = []
    for i, rid in enumerate(a["ids"]):
        j = rows_b.get(rid)
        if j is None:
            return f"record {rid!r} is missing from the target", []
        left, right = _fields(a, i), _fields(b, j)
        names = [n for n in left if not _same(n, left[n], right[n])]
        if names:
            changed.append((i, j, names))
    if not changed:
        return "a page's records differ in a way no single field shows (order or types)", []
    i, j, names = changed[0]
    first = _field_change(names[0], a["ids"][i], _fields(a, i)[names[0]], _fields(b, j)[names[0]])
    if control is None:
        return first, []
    rows = [i for i, _, _ in changed]
    subset = {
        "ids": [a["ids"][k] for k in rows],
        "embeddings": None if a["embeddings"] is None else a["embeddings"][rows],
        "documents": None if a["documents"] is None else [a["documents"][k] for k in rows],
        "metadatas": None if a["metadatas"] is None else [a["metadatas"][k] for k in rows],
    }
    own = control(subset, space)
    explained = []
    for k, (i, j, names) in enumerate(changed):
        mine, theirs = _fields(own, k), _fields(b, j)
        if not all(_same(n, mine[n], theirs[n]) for n in names):
            return first + "; a fresh collection of the target release keeps this record as written", []
        explained.append(_field_change(names[0], a["ids"][i], _fields(a, i)[names[0]], theirs[names[0]]))
        replaced[a["ids"][i]] = {n: mine[n] for n in names}
    return None, explained


def _expected_digest(src: Collection, ids: list[str], replaced: dict[str, dict]) -> str:
    """The digest the target must have: every source page, read again, with the records the target
    release changes on write replaced by its own values, summarized here as the worker does it.
    Each page's hash as computed here is checked against the worker's first, so the host and the
    worker agree on every byte before the digest means anything."""
    from pytest_chroma_compat.engine.worker import wire

    digest = fp.Digest()
    for start in range(0, len(ids), PAGE):
        chunk = ids[start : start + PAGE]
        reply = src._call("fingerprint", ids=chunk, records=True)
        rec = _records(reply)
        if rec["embeddings"] is not None:
            rec["embeddings"] = rec["embeddings"].copy()  # the reply's buffer is read-only
        own = fp.parts(rec["ids"], rec["documents"], rec["metadatas"], rec["embeddings"], wire.default)
        width = None if rec["embeddings"] is None else int(rec["embeddings"].shape[1])
        if fp.page_hash(own, width) != reply["hash"]:
            raise AssertionError(f"the host summarizes a page of {src.name!r} differently from the worker")
        for k, rid in enumerate(rec["ids"]):
            for name, value in replaced.get(rid, {}).items():
                if name == "embedding":
                    rec["embeddings"][k] = value
                else:
                    rec[f"{name}s"][k] = value
        digest.update(fp.parts(rec["ids"], rec["documents"], rec["metadatas"], rec["embeddings"], wire.default))
    return digest.hexdigest()


def _settings(metadata: dict | None) -> dict:
    return {k: v for k, v in (metadata or {}).items() if not k.startswith(SETTINGS_PREFIX)}


def collection(
    label: str,
    src: Collection,
    tgt: Collection,
    source_info: dict,
    target_info: dict,
    progress: Callable[[int, int], None] | None = None,
    control: Control | None = None,
) -> Verified:
    out = Verified(label, source_space=source_info["space"], target_space=target_info["space"])
    ids = sorted(_ids(src))
    out.source_count, out.target_count = len(ids), tgt.count()
    if out.source_space != out.target_space:
        out.differences.append(f"distance space {out.source_space} on the source, {out.target_space} on the target")
    if _settings(source_info["metadata"]) != _settings(target_info["metadata"]):
        out.differences.append(
            f"collection metadata {_settings(source_info['metadata'])!r} on the source, "
            f"{_settings(target_info['metadata'])!r} on the target"
        )
    token = f"verify-{uuid.uuid4().hex}"
    first: str | None = None
    replaced: dict[str, dict] = {}
    for start in range(0, len(ids), PAGE):
        chunk = ids[start : start + PAGE]
        a = src._call("fingerprint", ids=chunk, digest=token)
        b = tgt._call("fingerprint", ids=chunk, digest=token)
        if a["hash"] != b["hash"] and first is None:
            first, explained = _compare_page(src, tgt, chunk, out.target_space, control, replaced)
            out.release_changes += len(explained)
            out.release_examples.extend(explained[: 3 - len(out.release_examples)])
        if progress:
            progress(start + len(chunk), len(ids))
    out.source_digest = src.client.worker.call("take_digest", token=token) or "empty"
    out.target_digest = tgt.client.worker.call("take_digest", token=token) or "empty"
    if first:
        out.differences.append(first)
    elif replaced:
        out.expected_digest = _expected_digest(src, ids, replaced)
        if out.expected_digest != out.target_digest:
            out.differences.append(
                f"the target's digest {out.target_digest} is not the source's as the target "
                f"release stores it ({out.expected_digest})"
            )
    elif out.source_digest != out.target_digest:
        out.differences.append("the digests differ")
    if out.target_count != out.source_count:
        out.differences.append(f"{out.target_count} records on the target, {out.source_count} on the source")
    return out
