"""Is a contract crossed by this upgrade, for this piece of code?

A finding is reported only when a change the contract owns lies in (from, to] *and* the
measured value the code depends on differs between the two releases: a value that changes
and changes back (get() order: 0.4.20 and 0.5.9) is no change for an upgrade spanning both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from pytest_chroma_compat.usercode.scan import changes

MISSING = object()


@dataclass(frozen=True)
class Crossing:
    contract_id: str
    at: tuple[str, ...]  # the measured changes the contract owns inside (from, to]
    what: str  # the measured values at from and at to, for the keys the code depends on


def value_at(contract_id: str, version: str) -> Any:
    """The measured value under ``version``: the run holding it, or the last run before it (a
    release between two measured ones behaves as the earlier, until the next measured change)."""
    runs = changes.load()["contracts"][contract_id]["runs"]
    v = Version(version)
    before = [r for r in runs if Version(r["first"]) <= v]
    return (before[-1] if before else runs[0])["value"]


def _key(value: Any, key: str) -> Any:
    """A dotted key of a measured value; for a list of names, whether the name is present."""
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return "present" if key in value else "absent"
    for part in [key] if isinstance(value, dict) and key in value else key.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def crossing(contract_id: str, old: str, new: str, keys: tuple[str, ...] = ()) -> Crossing | None:
    """The crossing of ``contract_id`` between ``old`` and ``new`` for code depending on ``keys``
    (the whole value when empty); None when the contract is not measured or not crossed."""
    from pytest_chroma_compat.contracts.measure import compact, describe_change

    entry = changes.load()["contracts"].get(contract_id)
    if not entry:
        return None
    at = tuple(v for v in entry["owned"] if Version(old) < Version(v) <= Version(new))
    if not at:
        return None
    before, after = value_at(contract_id, old), value_at(contract_id, new)
    if not keys:
        return Crossing(contract_id, at, describe_change(before, after)) if before != after else None
    runs = entry["runs"]
    starts = {r["first"]: (runs[i - 1]["value"], r["value"]) for i, r in enumerate(runs) if i}
    at = tuple(v for v in at if v not in starts or any(_key(starts[v][0], k) != _key(starts[v][1], k) for k in keys))
    parts = []
    for key in keys:
        b, a = _key(before, key), _key(after, key)
        if b is not MISSING and a is not MISSING and b != a:
            parts.append(f"{key}: {compact(b)} -> {compact(a)}")
    return Crossing(contract_id, at, "; ".join(parts)) if parts else None
