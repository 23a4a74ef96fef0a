"""The ``writable`` check of ``validate``: the target writes to its copy, the source to its own as a baseline.

Reads can survive an upgrade that breaks writes (0.4.6-0.4.24 stores with an
orphaned full-text row read fine under 1.x, then refuse ``add`` with a
document), so every collection is written to, an empty one included: with the
dimension its records have, else the one the store recorded for it (an emptied
collection keeps it, and refuses any other), else any (a never-written one
accepts any). See :mod:`..write_probe` for what one write check does.

Why a baseline on the source copy: a write that fails on the target may fail
the same way before the upgrade (a defect already in the store, or in the
release that reads it). Then it is "pre-existing in this store": it will still
be there after the upgrade, so it fails ``validate`` unless the user allows it
(``--allow-pre-existing``), but the upgrade is not blamed. The source copy is
private (``validate`` copies the store before any release opens it), and a
collection is written only after it has been read in full.
"""

from __future__ import annotations

import time

from pytest_chroma_compat.engine.client import Collection
from pytest_chroma_compat.roundtrip.write_probe import WriteProbe, probe
from pytest_chroma_compat.snapshot.result import Check


def dimension_for(records: int | None, recorded: int | None) -> int | None:
    """The dimension to write: the records', else the store's record of it, else None (any)."""
    return records or recorded or None


def write_check(
    label: str,
    target: Collection,
    dimension: int | None,
    *,
    source: Collection | None = None,
    source_version: str | None = None,
) -> Check:
    """Write through every call on the target's copy; on a failure, the same on the source's copy."""
    started = time.monotonic()
    after = probe(target, dimension)
    if not after.failed:
        return Check("writable", "pass", after.detail, label, after.evidence, time.monotonic() - started)
    evidence = {"target": after.evidence}
    if source is None:
        return Check("writable", "fail", after.detail, label, evidence, time.monotonic() - started)
    before = probe(source, after.dimension)
    evidence["source"] = {"release": source_version, **before.evidence}
    status, detail = _attribute(after, before, source_version)
    return Check("writable", status, detail, label, evidence, time.monotonic() - started)


def _attribute(after: WriteProbe, before: WriteProbe, source_version: str | None) -> tuple[str, str]:
    who = f"chromadb {source_version or '?'}"
    if before.failed and before.first_kind == after.first_kind:
        return "pre-existing", (
            f"pre-existing in this store: {after.detail}; {who} fails the same way on its own "
            f"copy before the upgrade, so it will still be there after it"
        )
    if before.failed:
        return "fail", f"{after.detail} ({who} on its own copy fails otherwise: {before.detail})"
    return "fail", f"{after.detail}; {who} writes to its own copy without trouble"
