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
          "release-defect": "defect"}
VERDICT = {"safe": "SAFE", "unsafe": "UNSAFE", "flaky": "SAFE (a failure did not reproduce: flaky)"}
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


def pair_json(reports: Iterable["PathReport"]) -> dict:
    reports = list(reports)
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "safe": all(r.ok for r in reports),
        "paths": [r.to_dict() for r in reports],
    }


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
    return "\n".join(out) + "\n"


def _cell(rep: "PathReport | None") -> str:
    if rep is None:
        return "n/a"
    if rep.notes and not rep.outcomes:
        return "n/a"
    if rep.ok:
        return "pass"
    first = rep.failed[0]
    return f"**{first.name}**: {first.detail[:90]}".replace("|", "\\|").replace("\n", " ")
