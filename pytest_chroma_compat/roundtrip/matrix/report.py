"""Rendering results: terminal text, JSON and Markdown.

Reports carry evidence, not just verdicts: the failing invariant, what was
expected and what came back, the shrunk example and the file that replays it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_chroma_compat.roundtrip.invariants import Outcome
    from pytest_chroma_compat.roundtrip.pair import PathReport

SYMBOL = {
    "pass": "ok",
    "fail": "FAIL",
    "error": "ERROR",
    "pre-existing": "pre-existing",
    "flaky": "flaky",
    "release-defect": "defect",
    "in-place": "in-place",
}
VERDICT = {
    "safe": "SAFE",
    "unsafe": "UNSAFE",
    "flaky": "SAFE (a failure did not reproduce: flaky)",
    "in-place": "no log-replay defect (its failure is in-place's, reported there)",
    "pre-existing": "PRE-EXISTING (the old release fails the same way on its own store; not caused by the upgrade)",
}
# what a passing invariant established, for checks that pass without a detail of their own
HELD = {
    "count": "count() and the records read match the model in every collection",
    "ids": "every expected id and no other",
    "documents": "every document read back as written",
    "metadata": "every metadata value read back as written",
}


def _evidence(evidence: dict, limit: int = 1200) -> str:
    text = json.dumps(evidence, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[:limit] + " ..."


def path_text(report: PathReport, verbose: bool = False) -> str:
    verdict = VERDICT[report.outcome]
    shrunk = f", {report.shrink_steps} shrink step(s)" if report.shrink_steps else ""
    lines = [
        f"{report.old} -> {report.new}  [{report.path}]  {verdict}  "
        f"({report.examples} example(s){shrunk}, {report.seconds:.1f}s)"
    ]
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


def rollback_of(reports: Iterable[PathReport]) -> PathReport | None:
    """The report whose rollback answers "can I go back?": in-place's (the store itself is upgraded),
    else unflushed-wal's, else export-import's (its source store is never touched)."""
    checked = [r for r in reports if r.rollback]
    order = {"in-place": 0, "unflushed-wal": 1}
    return min(checked, key=lambda r: order.get(r.path, 2)) if checked else None


def rollback_words(old: str, reports: Iterable[PathReport]) -> str | None:
    rep = rollback_of(reports)
    return f"rollback to {old} after upgrading: {rep.rollback}" if rep else None


def blocked_by_rollback(reports: Iterable[PathReport], require_rollback: bool) -> bool:
    rep = rollback_of(reports)
    return bool(require_rollback and rep and rep.one_way)


def unsafe(reports: Iterable[PathReport], require_rollback: bool = False, allow_pre_existing: bool = False) -> bool:
    """The exit code's question: a failure of the upgrade, a pre-existing defect not allowed (as validate's
    ``--allow-pre-existing``), or a one-way upgrade with ``--require-rollback``."""
    reports = list(reports)
    return any(r.blocked(allow_pre_existing) for r in reports) or blocked_by_rollback(reports, require_rollback)


def pair_json(reports: Iterable[PathReport], require_rollback: bool = False, allow_pre_existing: bool = False) -> dict:
    reports = list(reports)
    rep = rollback_of(reports)
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "safe": not unsafe(reports, require_rollback, allow_pre_existing),
        "allow_pre_existing": allow_pre_existing,
        "rollback": None
        if rep is None
        else {
            "release": rep.old,
            "possible": not rep.one_way,
            "path": rep.path,
            "detail": rep.rollback,
            "required": require_rollback,
        },
        "paths": [r.to_dict() for r in reports],
    }


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_evidence(outcome: Outcome) -> str:
    """``check: detail``, and the evidence itself when the detail does not carry it (a count, an id)."""
    text = f"{outcome.name}: {outcome.detail}" if outcome.detail else outcome.name
    if outcome.evidence and len(outcome.detail or "") < 40:
        text += f" (evidence: {_evidence(outcome.evidence, 160)})"
    return text


def _pre_existing_words(reports: list[PathReport]) -> str:
    """``pre-existing in 1.5.9 (in-place: writable: ...)``: the release the defect belongs to, and the first."""
    found = [(r, o) for r in reports for o in r.pre_existing]
    r, o = found[0]
    more = f"; and {len(found) - 1} more" if len(found) > 1 else ""
    text = first_evidence(o).replace(f"pre-existing in {r.old}: ", "", 1)
    return f"pre-existing in {r.old}, not caused by the upgrade ({r.path}: {_short(text, 200)}{more})"


def verdict_line(
    old: str,
    new: str,
    reports: Iterable[PathReport],
    require_rollback: bool = False,
    allow_pre_existing: bool = False,
) -> str:
    """The one line a check ends with on stderr: the verdict, the failing check and its first evidence, and
    whether there is a way back. A defect the old release shows on its own store is named as pre-existing
    in that release; it fails the verdict only without ``--allow-pre-existing`` (validate's policy)."""
    reports = list(reports)
    failing = [r for r in reports if not r.ok]
    older = [r for r in reports if r.pre_existing]
    door = rollback_words(old, reports)
    if failing:
        first, *rest = failing
        shape = f" [known shape {first.shape!r}]" if first.shape else ""
        why = [f"{first.path}{shape}: {_short(first_evidence(first.failed[0]), 240)}"]
        why += [f"{r.path}: {_short(first_evidence(r.failed[0]), 80)}" for r in rest]
        if older:
            why.append(_pre_existing_words(older))
        verdict = f"NOT SAFE ({'; '.join(why)})"
    elif older and not allow_pre_existing:
        verdict = f"NOT SAFE ({_pre_existing_words(older)}; --allow-pre-existing accepts it, as validate does)"
    elif blocked_by_rollback(reports, require_rollback):
        verdict, door = f"NOT SAFE ({_short(door or '', 200)}; --require-rollback)", None
    else:
        ran = [r for r in reports if r.outcomes]
        also = (
            [f"{sum(r.outcome == 'flaky' for r in ran)} flaky failure(s) did not reproduce"]
            if any(r.outcome == "flaky" for r in ran)
            else []
        )
        also += [f"{r.path} not applicable" for r in reports if not r.outcomes]
        also += [f"{_pre_existing_words(older)} allowed (--allow-pre-existing)"] if older else []
        verdict = (
            f"SAFE ({len(ran)} path(s), {sum(r.examples for r in ran)} example(s)"
            + "".join(f"; {a}" for a in also)
            + ")"
        )
    line = f"chroma-compat: chromadb {old} -> {new}: {verdict}"
    if door:
        line += f"; {_short(door, 160)}"
    return line


# -- the matrix: rendered from serialized cells (report.pair_json per pair), whoever ran them ----------------
# One rendering path: the unsharded `matrix` and a merge of shards build the same document, then the same
# page. Volatile fields are only ever named "generated" (timestamps) or "seconds" (durations), so dropping
# those two keys leaves what any run of the same plan must reproduce.


def matrix_command(inputs: dict) -> str:
    """The one command that reproduces the matrix: what the page says it was generated by."""
    words = [
        "chroma-compat matrix",
        f"--versions {','.join(inputs['versions'])}",
        f"--paths {inputs['paths'] if inputs['paths'] == 'all' else ','.join(inputs['paths'])}",
    ]
    if inputs["upgrades_only"]:
        words.append("--upgrades-only")
    if inputs["seed"] is not None:
        words.append(f"--seed {inputs['seed']}")
    words += [
        f"--examples {inputs['examples']}",
        f"--profile {inputs['profile']}",
        f"--max-shrinks {inputs['max_shrinks']}",
    ]
    return " ".join(words)


def matrix_doc(
    inputs: dict,
    cells: list[dict],
    *,
    plan_id: str,
    tool_version: str,
    not_run: Iterable[tuple[str, str]] = (),
    seconds: float = 0.0,
) -> dict:
    from pytest_chroma_compat.roundtrip.matrix import plan, upgrade_paths

    return {
        "format": 2,
        "tool_version": tool_version,
        "plan_id": plan_id,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(seconds, 1),
        "command": matrix_command(inputs),
        "inputs": inputs,
        "versions": inputs["versions"],
        "upgrade_paths": upgrade_paths.summary(inputs["versions"], cells, plan.requested_paths(inputs)),
        "not_run": [{"old": o, "new": n} for o, n in not_run],
        "cells": cells,
    }


def _one_way(cell: dict) -> bool:
    return bool(cell.get("rollback")) and not cell["rollback"]["possible"]


def pair_lines(cell: dict) -> list[str]:
    """What a matrix prints on stdout as each pair finishes: a line per path."""
    out = []
    for p in cell["paths"]:
        failed = _failed(p)
        status = "pass" if p["ok"] else f"FAIL {failed[0]['name']}: {failed[0]['detail']}"[:105]
        if p["ok"] and p.get("pre_existing"):
            status = f"pre-existing in {cell['old']}: {', '.join(p['pre_existing'])}"
        door = f" (rollback: {p['rollback'][:60]})" if p["rollback"] and p["path"] != "export-import" else ""
        out.append(f"{cell['old']} -> {cell['new']} [{p['path']}] {status}{door}")
    return out


def matrix_line(doc: dict) -> str:
    """The one line a matrix ends with: which ordered pairs are not safe, which are one-way, which did not run."""
    cells = doc["cells"]
    unsafe = [f"{c['old']}->{c['new']}" for c in cells if not c["safe"]]
    one_way = [f"{c['old']}->{c['new']}" for c in cells if _one_way(c)]
    planned = len(cells) + len(doc["not_run"])
    line = (
        f"chroma-compat: matrix of {len(doc['versions'])} releases: {len(cells) - len(unsafe)} of {planned} "
        f"ordered pair(s) SAFE"
    )
    if unsafe:
        line += f"; NOT SAFE: {', '.join(unsafe)}"
    if one_way:
        line += f"; no rollback after upgrading: {', '.join(one_way)}"
    if doc["not_run"]:
        line += "; NOT RUN: " + ", ".join(f"{c['old']}->{c['new']}" for c in doc["not_run"])
    return line


def matrix_markdown(doc: dict, links_from: Path | str | None = None) -> str:
    """The safe upgrade paths first, then one table per path (rows write, columns read), then rollback.
    Case links are relative to ``links_from`` (the page's folder)."""
    import os

    inputs, versions = doc["inputs"], doc["versions"]
    cells = {(c["old"], c["new"]): c for c in doc["cells"]}
    missing = {(c["old"], c["new"]) for c in doc["not_run"]}
    total = sum(p.get("seconds") or 0 for c in doc["cells"] for p in c["paths"])
    link = (lambda f: os.path.relpath(f, links_from or ".")) if links_from is not None else (lambda f: f)
    out = [
        "# Compatibility matrix",
        "",
        f"Generated {doc['generated'][:10]} by `{doc['command']}` on real releases "
        f"({len(doc['cells'])} pair(s), {total:.0f} s of checks).",
        "Rows: the release that wrote the store. Columns: the release that read it.",
        "A cell says `pass`, or the first failing invariant and its detail, with the case file "
        "`chroma-compat replay` reruns."
        + (" Only upgrades were checked (blank: a downgrade)." if inputs["upgrades_only"] else " Downgrades included."),
        "",
    ]
    for rerun in doc.get("reruns") or ():  # cells re-checked after the whole run, each named with its command
        out += [
            f"Re-run {rerun['generated'][:10]} ({rerun['why']}): {', '.join(rerun['cells'])}, by "
            f"`{rerun['command']}`; the safe upgrade paths were recomputed from the cells.",
            "",
        ]
    if missing:
        out += [
            f"**Not run** (their shard left no result): {', '.join(f'{o} -> {n}' for o, n in sorted(missing))}.",
            "",
        ]
    out += _upgrade_paths_markdown(doc)

    def grid(title: str, render) -> list[str]:
        rows = [f"| {title} | " + " | ".join(versions) + " |", "|---|" + "---|" * len(versions)]
        for old in versions:
            row = []
            for new in versions:
                pair = (old, new)
                row.append(
                    "—"
                    if old == new
                    else "not run"
                    if pair in missing
                    else render(cells[pair])
                    if pair in cells
                    else ""
                )
            rows.append(f"| **{old}** | " + " | ".join(row) + " |")
        return rows + [""]

    paths = sorted({p["path"] for c in doc["cells"] for p in c["paths"]})
    for path in paths:
        out += [f"## {path}", ""] + grid(
            "written by \\ read by",
            lambda c: _cell(_path_of(c, path), link),  # noqa: B023  (grid calls it before the next path)
        )
    out += [
        "## rollback after upgrading",
        "",
        "Once the column's release has opened and written to the row's store in place, can the row's release "
        "open it again?",
        "",
    ]
    out += grid(
        "written by \\ upgraded to",
        lambda c: "n/a" if not c.get("rollback") else _short(c["rollback"]["detail"] or "", 90).replace("|", "\\|"),
    )
    return "\n".join(out).rstrip("\n") + "\n"


def _upgrade_paths_markdown(doc: dict) -> list[str]:
    from pytest_chroma_compat.roundtrip.matrix.upgrade_paths import ANY, ROUTES, chain_text

    rows = doc["upgrade_paths"]
    shown = list(rows[0]["routes"]) if rows else []
    if not shown:
        return []
    heads = [ROUTES.get(r, "any path per hop") for r in shown]
    out = [
        "## Safe upgrade paths",
        "",
        "From each release, the newest one here it reaches with every hop SAFE (upgrades only), directly or "
        "through the releases between; per path, and with any path per hop.",
        "",
        "| from | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(shown),
    ]
    for row in rows:
        texts = [chain_text(row["from"], row["routes"][r], label_hops=r == ANY) for r in shown]
        out.append(f"| **{row['from']}** | " + " | ".join(texts) + " |")
    return out + [""]


def _path_of(cell: dict, path: str) -> dict | None:
    return next((p for p in cell["paths"] if p["path"] == path), None)


def _failed(path_report: dict) -> list[dict]:
    return [i for i in path_report["invariants"] if i["status"] in ("fail", "error")]


def _cell(rep: dict | None, link) -> str:
    if rep is None or (rep["notes"] and not rep["invariants"]):
        return "n/a"
    if rep["ok"] and rep.get("pre_existing"):
        first = next(i for i in rep["invariants"] if i["status"] == "pre-existing")
        text = f"**pre-existing in {rep['old']}**: {first['name']}: {first['detail'][:80]}".replace("|", "\\|").replace(
            "\n", " "
        )
    elif rep["ok"]:
        text = "pass (its failure is in-place's)" if rep["outcome"] == "in-place" else "pass"
    else:
        first = _failed(rep)[0]
        text = f"**{first['name']}**: {first['detail'][:90]}".replace("|", "\\|").replace("\n", " ")
    if rep["case_file"] and (not rep["ok"] or rep.get("pre_existing")):
        text += f" ([case]({link(rep['case_file'])}))"
    return text
