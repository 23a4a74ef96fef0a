"""Rendering results: terminal text, JSON and Markdown.

Reports carry evidence, not just verdicts: the failing invariant, what was
expected and what came back, the shrunk example and the file that replays it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from .roundtrip import PathReport

SYMBOL = {"pass": "ok", "fail": "FAIL", "error": "ERROR", "pre-existing": "pre-existing", "flaky": "flaky",
          "release-defect": "defect", "in-place": "in-place"}
VERDICT = {"safe": "SAFE", "unsafe": "UNSAFE", "flaky": "SAFE (a failure did not reproduce: flaky)",
           "in-place": "no log-replay defect (its failure is in-place's, reported there)"}
# what a passing invariant established, for checks that pass without a detail of their own
HELD = {"count": "count() and the records read match the model in every collection",
        "ids": "every expected id and no other", "documents": "every document read back as written",
        "metadata": "every metadata value read back as written"}


def _evidence(evidence: dict, limit: int = 1200) -> str:
    text = json.dumps(evidence, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[:limit] + " ..."


def path_text(report: "PathReport", verbose: bool = False) -> str:
    verdict = VERDICT[report.outcome]
    shrunk = f", {report.shrink_steps} shrink step(s)" if report.shrink_steps else ""
    lines = [f"{report.old} -> {report.new}  [{report.path}]  {verdict}  "
             f"({report.examples} example(s){shrunk}, {report.seconds:.1f}s)"]
    if report.rollback:
        lines.append(f"  rollback to {report.old} after upgrading: {report.rollback}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    for o in report.outcomes:
        if o.status == "pass" and not verbose and o.name != "all":
            continue
        detail = o.detail or (HELD.get(o.name, "held") if o.status == "pass" else "(no detail)")
        lines.append(f"  {SYMBOL.get(o.status, o.status):>12}  {o.name}: {detail}")
        if o.evidence and o.status != "pass":
            lines.append(f"{'':16}evidence: {_evidence(o.evidence)}")
    if report.outcome != "safe":
        if report.falsifying:
            lines.append("  shrunk example:")
            lines.extend("    " + ln for ln in report.falsifying.splitlines())
        if report.case_file:
            lines.append(f"  reproduce: chroma-compat replay {report.case_file}")
    return "\n".join(lines)


def rollback_of(reports: Iterable["PathReport"]) -> "PathReport | None":
    """The report whose rollback answers "can I go back?": in-place's (the store itself is upgraded),
    else unflushed-wal's, else export-import's (its source store is never touched)."""
    checked = [r for r in reports if r.rollback]
    order = {"in-place": 0, "unflushed-wal": 1}
    return min(checked, key=lambda r: order.get(r.path, 2)) if checked else None


def rollback_words(old: str, reports: Iterable["PathReport"]) -> str | None:
    rep = rollback_of(reports)
    return f"rollback to {old} after upgrading: {rep.rollback}" if rep else None


def blocked_by_rollback(reports: Iterable["PathReport"], require_rollback: bool) -> bool:
    rep = rollback_of(reports)
    return bool(require_rollback and rep and rep.one_way)


def pair_json(reports: Iterable["PathReport"], require_rollback: bool = False) -> dict:
    reports = list(reports)
    rep = rollback_of(reports)
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "safe": all(r.ok for r in reports) and not blocked_by_rollback(reports, require_rollback),
        "rollback": None if rep is None else {"release": rep.old, "possible": not rep.one_way,
                                              "path": rep.path, "detail": rep.rollback,
                                              "required": require_rollback},
        "paths": [r.to_dict() for r in reports],
    }


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def verdict_line(old: str, new: str, reports: Iterable["PathReport"], require_rollback: bool = False) -> str:
    """The one line a check ends with on stderr: the verdict, why, and whether there is a way back."""
    reports = list(reports)
    failing = [r for r in reports if not r.ok]
    door = rollback_words(old, reports)
    if failing:
        first, *rest = failing
        why = [f"{first.path}: {_short(first.first_failure(), 160)}"]
        why += [f"{r.path}: {r.failed[0].name}" for r in rest]
        verdict = f"NOT SAFE ({'; '.join(why)})"
    elif blocked_by_rollback(reports, require_rollback):
        verdict, door = f"NOT SAFE ({_short(door or '', 200)}; --require-rollback)", None
    else:
        ran = [r for r in reports if r.outcomes]
        also = [f"{sum(r.outcome == 'flaky' for r in ran)} flaky failure(s) did not reproduce"] if any(
            r.outcome == "flaky" for r in ran) else []
        also += [f"{r.path} not applicable" for r in reports if not r.outcomes]
        verdict = f"SAFE ({len(ran)} path(s), {sum(r.examples for r in ran)} example(s)" + \
            "".join(f"; {a}" for a in also) + ")"
    line = f"chroma-compat: chromadb {old} -> {new}: {verdict}"
    if door:
        line += f"; {_short(door, 160)}"
    return line


def matrix_line(versions: list[str], cells: dict[tuple[str, str], list["PathReport"]]) -> str:
    """The one line a matrix ends with: which ordered pairs are not safe, and which are one-way."""
    unsafe = [f"{o}->{n}" for (o, n), reps in cells.items() if not all(r.ok for r in reps)]
    one_way = [f"{o}->{n}" for (o, n), reps in cells.items() if (rep := rollback_of(reps)) and rep.one_way]
    line = (f"chroma-compat: matrix of {len(versions)} releases: {len(cells) - len(unsafe)} of {len(cells)} "
            f"ordered pair(s) SAFE")
    if unsafe:
        line += f"; NOT SAFE: {', '.join(unsafe)}"
    if one_way:
        line += f"; no rollback after upgrading: {', '.join(one_way)}"
    return line


def matrix_markdown(versions: list[str], cells: dict[tuple[str, str], list["PathReport"]]) -> str:
    """One table per path: rows write (old), columns read (new); downgrades included."""
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = ["# Compatibility matrix", "",
           f"Generated {date} by `chroma-compat matrix --versions {','.join(versions)}` on real releases.",
           "Rows: the release that wrote the store. Columns: the release that read it.",
           "A cell says `pass`, or the first failing invariant and its detail.", ""]
    paths = sorted({r.path for reps in cells.values() for r in reps})
    for path in paths:
        out += [f"## {path}", "", "| written by \\ read by | " + " | ".join(versions) + " |",
                "|---|" + "---|" * len(versions)]
        for old in versions:
            row = []
            for new in versions:
                if old == new:
                    row.append("—")
                    continue
                rep = next((r for r in cells.get((old, new), []) if r.path == path), None)
                row.append(_cell(rep))
            out.append(f"| **{old}** | " + " | ".join(row) + " |")
        out.append("")
    out += ["## rollback after upgrading", "",
            "Once the column's release has opened and written to the row's store in place, can the row's release "
            "open it again?", "", "| written by \\ upgraded to | " + " | ".join(versions) + " |",
            "|---|" + "---|" * len(versions)]
    for old in versions:
        row = []
        for new in versions:
            rep = rollback_of(cells.get((old, new), [])) if old != new else None
            row.append("—" if old == new else "n/a" if rep is None else
                       _short(rep.rollback or "", 90).replace("|", "\\|"))
        out.append(f"| **{old}** | " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def _cell(rep: "PathReport | None") -> str:
    if rep is None:
        return "n/a"
    if rep.notes and not rep.outcomes:
        return "n/a"
    if rep.ok:
        return "pass (its failure is in-place's)" if rep.outcome == "in-place" else "pass"
    first = rep.failed[0]
    return f"**{first.name}**: {first.detail[:90]}".replace("|", "\\|").replace("\n", " ")
