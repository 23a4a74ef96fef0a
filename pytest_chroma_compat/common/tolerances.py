"""Tolerances and value comparison shared by the round trip's invariants, the write probe and validate.

Why a module of its own: the invariants run the write probe, and the write probe compares what it reads
back with these same tolerances; with them in either module, the two imported each other (a cycle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Stated tolerance for embeddings, as float32 ULPs. Measured: cosine collections come back
# up to 2.4e-7 (1-2 ULPs of values near 1) off their input, even within one release,
# and 1.x re-rounds 0.x cosine data. That is rounding, not loss.
MAX_ULPS = 4
# Float metadata: measured, 1.x writes some float64 values 1 ULP off (-103.11500475927103
# reads back as -103.11500475927105), through any write, migrated or not. Re-rounding is
# reported with its size; a filter on such a value is checked by the filters invariant.
MAX_METADATA_ULPS = 2


def float32_ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 units in the last place (0 for equal values, signed zeros included)."""

    def ordered(x: np.ndarray) -> np.ndarray:
        i = x.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    return np.abs(ordered(a) - ordered(b))


def describe_change(want: Any, got: Any) -> str:
    """Say how a value changed, in the words a user needs ("float changed by 1 ULP")."""
    if isinstance(want, dict) and isinstance(got, dict):
        parts = [f"key {k!r} missing" for k in want if k not in got]
        parts += [f"unexpected key {k!r}" for k in got if k not in want]
        parts += [
            f"{k!r}: {describe_change(want[k], got[k])}"
            for k in want
            if k in got and (want[k] != got[k] or type(want[k]) is not type(got[k]))
        ]
        return "; ".join(parts)
    if type(want) is not type(got):
        return f"{type(want).__name__} {want!r} came back as {type(got).__name__} {got!r}"
    if isinstance(want, float):
        ulps = abs(int(np.array(want).view(np.int64)) - int(np.array(got).view(np.int64)))
        return f"float {want!r} came back as {got!r} ({ulps} ULP of float64)"
    return f"{want!r} came back as {got!r}"


def _float_ulps(a: float, b: float) -> int:
    def ordered(x: float) -> int:
        i = int(np.array(x, dtype=np.float64).view(np.int64))
        return i if i >= 0 else -(i & 0x7FFFFFFFFFFFFFFF)

    return abs(ordered(a) - ordered(b))


def values_close(want: Any, got: Any, worst: list[int]) -> bool:
    """Equal, types included, but for float re-rounding within MAX_METADATA_ULPS."""
    if type(want) is not type(got):
        return False
    if isinstance(want, dict):
        return want.keys() == got.keys() and all(values_close(want[k], got[k], worst) for k in want)
    if isinstance(want, list):
        return len(want) == len(got) and all(values_close(a, b, worst) for a, b in zip(want, got))
    if isinstance(want, float) and want != got:
        ulps = _float_ulps(want, got)
        worst[0] = max(worst[0], ulps)
        return ulps <= MAX_METADATA_ULPS
    return want == got
