"""The first release that breaks the user's command (or, with ``--first-good``, the first that runs
it), found in about log2(n) runs, proven at its ends, with what changed there.

Like ``git bisect`` over the release catalogue, with proof at every end:

- Both endpoints run first. ``--good`` must pass and ``--bad`` must fail; if
  either does not, there is nothing to search (an always-failing command, a
  test that is broken under both, a change that is not between them) and the
  search stops with both outcomes (exit 2), instead of naming a release.
- ``first_good`` searches the other way: ``--bad`` is the older release (the
  command fails) and ``--good`` the newer (it passes); the answer is the first
  release that passes, a project's real lower bound.
- A release whose run says nothing about the code (its environment cannot be
  built, the project excludes it, pytest could not collect or was interrupted)
  is skipped, as ``git bisect skip`` does, and a neighbour of the middle is
  tried instead. A collection error (a test module whose import fails under
  that release) is what a project that needs a newer name sees, so
  ``count_errors`` counts it as a failure instead; the answer says which was
  done.
- The two releases either side of the boundary are run a second time; if
  either outcome flips, the answer is "flaky" (exit 2), never a release.

When the boundary is found, the measured contracts whose value changes between
its two releases are the documented changes the break may come from
(contracts/measure.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from packaging.version import Version

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.engine import releases
from pytest_chroma_compat.usercode.runs import RunResult

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Bisection:
    good: str
    bad: str
    candidates: list[str]
    direction: str = "first-bad"  # or "first-good": the first release that passes (--first-good)
    count_errors: bool = False
    runs: list[RunResult] = field(default_factory=list)
    skipped: list[RunResult] = field(default_factory=list)
    counted: list[str] = field(default_factory=list)  # collection errors counted as failures (count_errors)
    before: str = ""  # the last release on the old side of the boundary (last good; last bad for first-good)
    after: str = ""  # the first release on the new side (first bad; first good for first-good)
    undecided: list[str] = field(default_factory=list)  # the boundary is one of these (skips left it open)
    crossed: list[dict[str, Any]] = field(default_factory=list)
    answer: str = ""  # found | undecided | endpoints | flaky
    reason: str = ""  # why there is no answer (endpoints, flaky)

    @property
    def found(self) -> bool:
        return self.answer in ("found", "undecided")

    @property
    def first_good(self) -> bool:
        return self.direction == "first-good"

    @property
    def last_good(self) -> str:
        return "" if self.first_good else self.before

    @property
    def first_bad(self) -> str:
        return "" if self.first_good else self.after

    def errors_note(self) -> str:
        """What was done with collection errors, for the report."""
        errors = [r.version for r in self.runs if r.cannot_collect]
        if not errors:
            return ""
        if self.count_errors:
            return f"collection/import errors counted as failures (--count-errors): {', '.join(dict.fromkeys(errors))}"
        return (
            f"collection/import errors skipped (pass --count-errors to count them as failures): "
            f"{', '.join(dict.fromkeys(errors))}"
        )

    def as_dict(self) -> dict[str, Any]:
        out = {
            "good": self.good,
            "bad": self.bad,
            "direction": self.direction,
            "answer": self.answer,
            "reason": self.reason,
            "candidates": self.candidates,
            "count_errors": self.count_errors,
            "counted": self.counted,
            "errors": self.errors_note(),
            "undecided": self.undecided,
            "crossed": self.crossed,
            "runs": [r.as_dict() for r in self.runs],
            "skipped": [r.version for r in self.skipped],
        }
        if self.first_good:
            out.update(last_bad=self.before, first_good=self.after)
        else:
            out.update(last_good=self.before, first_bad=self.after)
        return out


def candidates(old: str, new: str, versions: list[str] | None = None, *, first_good: bool = False) -> list[str]:
    """The releases strictly between ``old`` and ``new``, oldest first."""
    lo, hi = Version(old), Version(new)
    if lo >= hi:
        raise CompatError(
            f"--bad {old} must be older than --good {new} with --first-good"
            if first_good
            else f"--good {old} must be older than --bad {new}"
        )
    pool = versions if versions is not None else releases.versions()
    return sorted((v for v in pool if lo < Version(v) < hi), key=Version)


def judge(result: RunResult, count_errors: bool) -> str:
    """pass, fail or skip: what one run says about the code under its release. A run that timed out
    failed (``--timeout`` is the user's bound on a good run)."""
    if result.status == "passed":
        return PASS
    if result.status == "failed" or (count_errors and result.cannot_collect):
        return FAIL
    return SKIP


def outcome(result: RunResult) -> str:
    """One run in a few words, for a reason line."""
    if result.status == "passed":
        return "passed"
    if result.timed_out:
        return result.reason
    words = {"failed": "failed", "error": "could not be judged", "excluded": "is excluded"}[result.status]
    code = f" (exit {result.exit_code})" if result.exit_code is not None else ""
    why = f": {result.reason[:160]}" if result.reason else ""
    return f"{words}{code}{why}"


def search(
    good: str,
    bad: str,
    run: Callable[[str], RunResult],
    *,
    versions: list[str] | None = None,
    on_run: Callable[[RunResult, int], None] | None = None,
    first_good: bool = False,
    count_errors: bool = False,
) -> Bisection:
    """``run(version)`` decides (``judge``). The endpoints run first and must differ as asked; the
    boundary pair runs twice. ``answer`` says whether a release was found, and ``reason`` why not."""
    old, new = (bad, good) if first_good else (good, bad)
    old_side, new_side = (FAIL, PASS) if first_good else (PASS, FAIL)
    between = candidates(old, new, versions, first_good=first_good)
    out = Bisection(
        good, bad, between, direction="first-good" if first_good else "first-bad", count_errors=count_errors
    )
    order = [old, *between, new]
    seen: dict[int, str] = {}

    def step(i: int, left: int) -> str:
        result = run(order[i])
        out.runs.append(result)
        verdict = judge(result, count_errors)
        if result.cannot_collect and verdict == FAIL:
            out.counted.append(result.version)
        if on_run:
            on_run(result, left)
        return verdict

    # 1. the endpoints, both, before anything is searched
    seen[0] = step(0, len(order))
    seen[len(order) - 1] = step(len(order) - 1, len(order))
    if seen[0] != old_side or seen[len(order) - 1] != new_side:
        old_run, new_run = out.runs[0], out.runs[1]
        good_run, bad_run = (new_run, old_run) if first_good else (old_run, new_run)
        out.answer = "endpoints"
        out.reason = (
            f"--good {good} must pass and --bad {bad} must fail, but under --good {good} the command "
            f"{outcome(good_run)}; under --bad {bad} it {outcome(bad_run)}"
        )
        if any(r.cannot_collect for r in (good_run, bad_run)) and not count_errors:
            out.reason += " (pass --count-errors to count a collection/import error as a failure)"
        return out

    # 2. the search, between proven ends
    lo, hi = 0, len(order) - 1  # order[lo] on the old side, order[hi] on the new side
    skipped: set[int] = set()
    while True:
        untested = [i for i in range(lo + 1, hi) if i not in skipped]
        if not untested:
            break
        middle = (lo + hi) / 2
        pick = min(untested, key=lambda i: (abs(i - middle), i))
        verdict = step(pick, len(untested))
        seen[pick] = verdict
        if verdict == old_side:
            lo = pick
        elif verdict == new_side:
            hi = pick
        else:
            skipped.add(pick)
            out.skipped.append(out.runs[-1])
    out.before, out.after = order[lo], order[hi]
    out.undecided = [order[i] for i in range(lo + 1, hi)]  # all skipped: the boundary is in one of them or at hi

    # 3. the boundary pair again: an answer that does not repeat is no answer
    for i in (lo, hi):
        again = step(i, 0)
        if again != seen[i]:
            out.answer = "flaky"
            first = {PASS: "passed", FAIL: "failed"}.get(seen[i], "could not be judged")
            out.reason = (
                f"the command is flaky: under chromadb {order[i]} it {first} on a first run and "
                f"{outcome(out.runs[-1])} on a second; no release can be named"
            )
            return out
    out.answer = "undecided" if out.undecided else "found"
    return out


def crossed_between(old: str, new: str) -> list[dict[str, Any]]:
    """The measured contracts whose value differs between two consecutive answers of the search."""
    from pytest_chroma_compat.contracts import measure

    rows = []
    for x in measure.crossed(old, new):
        rows.append(
            {
                "id": x.contract.id,
                "title": x.contract.title,
                "documented": x.contract.documented,
                "section": x.contract.section,
                "consequence": x.contract.consequence,
                "change": measure.describe_change(x.before, x.after),
            }
        )
    return rows
