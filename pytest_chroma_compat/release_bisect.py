"""The first release that breaks the user's command, found in about log2(n) runs, with what changed there.

Like ``git bisect`` over the release catalogue: ``good`` is assumed to pass and
``bad`` to fail (they are not run again), the candidates are the non-yanked
releases strictly between them (or the user's ``--versions`` list), and each
step runs the middle one. A release whose run says nothing about the code (its
environment cannot be built, the project excludes it, pytest could not collect
or was interrupted) is skipped, as ``git bisect skip`` does, and a neighbour of
the middle is tried instead. When the first bad release is found, the measured
contracts whose value changes between the last good and the first bad release
are the documented changes the break may come from (contracts/measure.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from packaging.version import Version

from . import releases
from .errors import CompatError
from .user_runs import RunResult


@dataclass
class Bisection:
    good: str
    bad: str
    candidates: list[str]
    runs: list[RunResult] = field(default_factory=list)
    skipped: list[RunResult] = field(default_factory=list)
    last_good: str = ""
    first_bad: str = ""
    undecided: list[str] = field(default_factory=list)  # the first bad is one of these (skips left it open)
    crossed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"good": self.good, "bad": self.bad, "candidates": self.candidates, "last_good": self.last_good,
                "first_bad": self.first_bad, "undecided": self.undecided, "crossed": self.crossed,
                "runs": [r.as_dict() for r in self.runs], "skipped": [r.version for r in self.skipped]}


def candidates(good: str, bad: str, versions: list[str] | None = None) -> list[str]:
    """The releases strictly between ``good`` and ``bad``, oldest first."""
    lo, hi = Version(good), Version(bad)
    if lo >= hi:
        raise CompatError(f"--good {good} must be older than --bad {bad}")
    pool = versions if versions is not None else releases.versions()
    return sorted((v for v in pool if lo < Version(v) < hi), key=Version)


def search(good: str, bad: str, run: Callable[[str], RunResult], *, versions: list[str] | None = None,
           on_run: Callable[[RunResult, int], None] | None = None) -> Bisection:
    """``run(version)`` decides: passed is good, failed is bad, anything else is skipped."""
    between = candidates(good, bad, versions)
    out = Bisection(good, bad, between)
    order = [good, *between, bad]
    lo, hi = 0, len(order) - 1  # order[lo] known good, order[hi] known bad
    skipped: set[int] = set()
    while True:
        untested = [i for i in range(lo + 1, hi) if i not in skipped]
        if not untested:
            break
        middle = (lo + hi) / 2
        pick = min(untested, key=lambda i: (abs(i - middle), i))
        result = run(order[pick])
        out.runs.append(result)
        if on_run:
            on_run(result, len(untested))
        if result.status == "passed":
            lo = pick
        elif result.status == "failed":
            hi = pick
        else:
            skipped.add(pick)
            out.skipped.append(result)
    out.last_good, out.first_bad = order[lo], order[hi]
    out.undecided = [order[i] for i in range(lo + 1, hi)]  # all skipped: the break is in one of them or at hi
    return out


def crossed_between(old: str, new: str) -> list[dict[str, Any]]:
    """The measured contracts whose value differs between two consecutive answers of the search."""
    from .contracts import measure

    rows = []
    for x in measure.crossed(old, new):
        rows.append({"id": x.contract.id, "title": x.contract.title, "documented": x.contract.documented,
                     "section": x.contract.section, "consequence": x.contract.consequence,
                     "change": measure.describe_change(x.before, x.after)})
    return rows
