"""Rendering a :class:`Validation`: terminal text, JSON, JUnit XML and Markdown.

Every view renders the same data, so a reader of any one of them can act on it:
the verdict, where the store came from and whether it was left untouched, the
failing checks with their evidence, and the command that reproduces the run.
Evidence holds the user's own ids, documents and metadata, so every renderer
treats it as hostile text: NaN never reaches JSON, control characters never
reach XML or a terminal, and ``|`` never breaks a Markdown table.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shlex
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common import atomic_files
from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.common.redact import redact
from pytest_chroma_compat.snapshot import writers as _writers
from pytest_chroma_compat.snapshot.result import Check, Validation

HEADLINE = {0: "SAFE", 1: "NOT SAFE", 2: "COULD NOT VALIDATE"}
SYMBOL = {
    "pass": "ok",
    "fail": "FAIL",
    "error": "ERROR",
    "pre-existing": "PRE-EXISTING",
    "skip": "skip",
    "info": "info",
}
#: characters that are invalid in XML 1.0 or that move a terminal's cursor (CR, ESC, C1, lone surrogates)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _redacted(render: Any) -> Any:
    """Every rendering passes through :func:`redact`: a password written into ``--endpoint-url`` (or
    any URL a store or an error message carries) never reaches a terminal, a CI log or a report."""
    import functools

    @functools.wraps(render)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        return redact(render(*args, **kwargs))

    return wrapper


def _clean(text: Any) -> str:
    """Visible escapes instead of characters that would corrupt XML or a terminal."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", str(text))


def _plain(obj: Any) -> Any:
    """JSON-safe data: non-finite floats become strings ("NaN" is a finding, null would hide it)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {(k if isinstance(k, (str, int, bool)) or k is None else str(k)): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v) for v in obj]
    return obj


def _dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(_plain(obj), indent=indent, default=repr, allow_nan=False, ensure_ascii=False)


def _compact(evidence: dict, limit: int = 800) -> str:
    text = _clean(_dumps(evidence))
    return text if len(text) <= limit else text[:limit] + " ..."


def _size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"  # unreachable


def _yes(value: Any) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _count(value: Any) -> int | None:
    return len(value) if isinstance(value, (list, dict)) else value if isinstance(value, int) else None


def _where(c: Check) -> str:
    return f" [{c.collection}]" if c.collection else ""


def _pair(v: Validation) -> str:
    return f"{v.source_label} -> {v.target_release or '?'}"


def _rollback(v: Validation) -> str | None:
    """The one-way door, in one line: shown next to the verdict, whatever the exit code."""
    rb = v.rollback
    if not isinstance(rb, dict) or not rb.get("checked"):
        return None
    why = f" ({rb['why_releases']})" if rb.get("why_releases") else ""  # two releases: which is which
    if rb.get("possible"):
        who = ", ".join(rb.get("releases") or [str(rb.get("release"))])
        return f"rollback after upgrading: possible (chromadb {who} reopened the upgraded copy){why}"
    required = any(c.name == "rollback-after-upgrade" and c.status == "fail" for c in v.checks)
    return (
        f"rollback after upgrading: NOT POSSIBLE (chromadb {rb.get('release')} cannot open the store once "
        f"{v.target_release} has written to it: {rb.get('error')}"
        + (f"; chromadb {', '.join(rb['reopened_by'])} did reopen it" if rb.get("reopened_by") else "")
        + ")"
        + why
        + ("" if required else "; not part of the verdict: pass --require-rollback to make it so")
    )


def _inventory(inv: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) facts from a free-form inventory: known keys only, any of them may be missing."""
    facts: list[tuple[str, str]] = []
    if "format" in inv:
        facts.append(("format", str(inv["format"])))
    wr = inv.get("writer_range")
    if isinstance(wr, dict):
        facts.append(("written by", _writers.describe(wr)))
    elif wr:
        facts.append(("written by", str(wr)))
    created = {
        k: s
        for k, s in (inv.get("store_settings") or {}).items()
        if isinstance(s, dict) and s.get("value") not in (None, s.get("default"))
    }
    for name, s in sorted(created.items()):  # a setting every open must repeat (snapshot/store_settings.py)
        facts.append(
            (
                "created with",
                f'{name}="{s["value"]}" (not the default "{s.get("default")}"; '
                f"{s.get('evidence', '')}); opened with it by every release",
            )
        )
    sizes = [(_count(inv.get(k)), k) for k in ("tenants", "databases", "collections") if k in inv]
    if sizes:
        text = ", ".join(f"{n if n is not None else '?'} {k[:-1]}(s)" for n, k in sizes)
        records = [c.get("count") for c in inv.get("collections") or [] if isinstance(c, dict)]
        if records and all(isinstance(r, int) for r in records):
            text += f", {sum(records)} record(s)"
        facts.append(("holds", text))
    wal = inv.get("wal")
    if isinstance(wal, dict):
        extra = f", SQLite -wal file {_size(wal['sqlite_wal_bytes'])}" if wal.get("sqlite_wal_bytes") else ""
        facts.append(("write-ahead log", f"{wal.get('rows', '?')} rows, {_size(wal.get('bytes'))}{extra}"))
    if "automatically_purge" in inv:
        purge = inv["automatically_purge"]
        facts.append(("automatically_purge", "not set (the writer predates it)" if purge is None else _yes(purge)))
    for key, label in (
        ("orphaned_segment_dirs", "orphaned segment dirs"),
        ("missing_segment_dirs", "missing segment dirs"),
    ):
        if key in inv:
            items = inv[key] if isinstance(inv[key], list) else []
            total = sum(d.get("bytes", 0) for d in items if isinstance(d, dict))
            facts.append((label, f"{_count(inv[key])}" + (f" ({_size(total)})" if total else "")))
    if inv.get("orphaned_fulltext_rows"):
        facts.append(("orphaned full-text rows", str(inv["orphaned_fulltext_rows"])))
    facts += [("problem", str(p)) for p in inv.get("problems") or []]
    facts += [("note", str(n)) for n in inv.get("notes") or []]
    return facts


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def _collection_rows(v: Validation) -> list[list[str]]:
    rows = [["collection", "source", "target", "compared", "bit-identical", "max ULPs (emb/meta)"]]
    for c in v.collections:
        match = "-" if c.source_digest is None or c.target_digest is None else _yes(c.source_digest == c.target_digest)
        rows.append(
            [
                c.name,
                str(c.source_count if c.source_count is not None else "?"),
                str(c.target_count if c.target_count is not None else "?"),
                str(c.records_compared),
                match,
                f"{c.max_embedding_ulps}/{c.max_metadata_ulps}",
            ]
        )
    return rows


def _contract(c: dict[str, Any]) -> tuple[str, str]:
    """(headline, what changed): the measured ``change`` when there is one, else before -> after."""
    when = (
        f" (changed in {c['changed_in']})"
        if c.get("changed_in")
        else f" (documented in {c['documented']})"
        if c.get("documented")
        else ""
    )
    head = f"{c.get('id', '?')}: {c.get('title', '')}{when}"
    show = lambda x: x if isinstance(x, str) else _dumps(x)  # noqa: E731 - compact() already gives JSON text
    change = c.get("change") or (f"{show(c.get('before'))} -> {show(c.get('after'))}" if "before" in c else "")
    return head, str(change)


def _wrap(text: str, indent: str, first: str = "") -> list[str]:
    """Lines under 120 characters that never split a word, so paths, hashes and ids stay whole."""
    out: list[str] = []
    for para in text.replace("\r\n", "\n").split("\n"):
        out += textwrap.wrap(
            para,
            118,
            initial_indent=indent if out else first,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [indent]
    return out


@_redacted
def terminal(v: Validation, *, verbose: bool = False) -> str:
    """Plain text, no markup: it is read in a terminal but just as often in a CI log or a file."""
    src = v.source
    # wrapped, not clipped: for "could not validate" the summary is the only explanation there is
    lines = _wrap(f"{HEADLINE[v.exit_code]}  {' '.join(v.summary.split())}", "  ")
    door = _rollback(v)
    lines += (_wrap(door, "  ", "  ") if door else []) + [""]
    lines.append(f"source:  {src.get('location', '?')} ({src.get('kind', '?')})")
    if src.get("pointer"):
        lines += _wrap(f"{src['pointer']} (names {src.get('pointer_names')!r})", "  ", "  followed pointer: ")
    if "hash_before" in src and src.get("hash_after") == src["hash_before"]:
        lines.append(f"  hash:  {src['hash_before']} (the same before and after)")
    elif "hash_before" in src:
        lines += [
            f"  hash before: {src['hash_before']}",
            f"  hash after:  {src.get('hash_after', '?')} (unchanged: {_yes(src.get('unchanged'))})",
        ]
    lines += _wrap(
        f"{v.source_release or '?'} ({v.source_release_evidence or 'no evidence'})",
        "  ",
        "read with: " if v.source_release_evidence.startswith("written by") else "from:    ",
    )
    lines.append(f"to:      {v.target_release or '?'} ({v.direction or 'direction unknown'}, path {v.path})")
    facts = _inventory(v.inventory)
    if facts:
        lines += ["", "inventory:"] + [ln for label, value in facts for ln in _wrap(value, "    ", f"  {label}: ")]
    if v.collections:
        lines += [""] + _table(_collection_rows(v))
    shown = v.checks if verbose else v.findings
    if shown:
        lines += ["", "checks:" if verbose else "failing checks:"]
        for c in shown:
            lines += _wrap(
                f"{c.name}{_where(c)}{': ' if c.detail else ''}{c.detail}",
                " " * 16,
                f"  {SYMBOL.get(c.status, c.status):>12}  ",
            )
            if c.evidence and (verbose or c in v.findings):
                lines.append(f"{'':16}evidence: {_compact(c.evidence)}")
    if v.checks:
        lines.append(f"checks: {v.tally}")
    if v.contracts_crossed:
        lines += ["", f"contracts crossed ({len(v.contracts_crossed)}; information, not part of the verdict):"]
        for c in v.contracts_crossed:
            head, change = _contract(c)
            clipped = change if len(change) <= 112 else change[:108] + " ..."
            lines += _wrap(head, "      ", "  ") + ([f"      {clipped}"] if change else [])
    if v.timings:
        lines += ["", "timings: " + ", ".join(f"{k} {t:.1f}s" for k, t in v.timings.items())]
    return _clean("\n".join(lines))  # once, at the end: user strings are everywhere above


@_redacted
def to_json_text(v: Validation) -> str:
    """The documented report (docs/validate-report.md); strict JSON, so any parser reads it."""
    return json.dumps(_plain(v.to_json()), indent=2, sort_keys=False, default=repr, allow_nan=False) + "\n"


@_redacted
def junit_xml(v: Validation) -> str:
    """One testcase per check, so CI shows which collection broke and how, next to the code's own tests."""
    cases: list[ET.Element] = []
    if v.error is not None:
        case = ET.Element("testcase", classname="chroma-compat.validate.store", name="validate", time="0.000")
        ET.SubElement(case, "error", message=_clean(v.error), type="could-not-validate").text = _clean(v.summary)
        cases.append(case)
    for c in v.checks:
        case = ET.Element(
            "testcase",
            classname=_clean("chroma-compat.validate." + (c.collection or "store")),
            name=_clean(c.name),
            time=f"{c.seconds:.3f}",
        )
        kind = {"fail": "failure", "pre-existing": "failure", "error": "error", "skip": "skipped"}.get(c.status)
        if c in v.allowed:  # --allow-pre-existing: shown, not a failure CI stops on
            kind = None
            ET.SubElement(case, "system-out").text = _clean(f"pre-existing, allowed: {c.detail}")
        if kind:
            outcome = ET.SubElement(case, kind, message=_clean(c.detail), type=c.status)
            if kind != "skipped" and c.evidence:
                outcome.text = _clean(_dumps(c.evidence, indent=2))
        elif c.status == "info" and c.detail:
            ET.SubElement(case, "system-out").text = _clean(c.detail)
        cases.append(case)
    counts = {k: str(sum(case.find(k) is not None for case in cases)) for k in ("failure", "error", "skipped")}
    attrs = {
        "tests": str(len(cases)),
        "failures": counts["failure"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "time": f"{v.timings.get('total', sum(c.seconds for c in v.checks)):.3f}",
    }
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", name="chroma-compat validate", timestamp=v.created, **attrs)
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("source", v.source.get("location")),
        ("source_kind", v.source.get("kind")),
        ("source_release", v.source_release),
        ("target_release", v.target_release),
        ("direction", v.direction),
        ("path", v.path),
        ("verdict", v.verdict),
        ("exit_code", v.exit_code),
        ("hash_before", v.source.get("hash_before")),
        ("hash_after", v.source.get("hash_after")),
        ("summary", v.summary),
    ):
        ET.SubElement(props, "property", name=name, value=_clean("" if value is None else value))
    suite.extend(cases)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _cell(text: Any, limit: int = 200) -> str:
    text = _clean(str(text).replace("\r\n", "\n"))
    text = text if len(text) <= limit else text[:limit] + " ..."
    # "<" and "&" only: enough to stop HTML, while "->" stays readable in the raw comment
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|").replace("\n", "<br>")


def _fence(text: str, lang: str = "") -> str:
    """A code fence longer than any backtick run inside, so evidence cannot close it early."""
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall("`+", text)), default=0))
    return f"{ticks}{lang}\n{text}\n{ticks}"


@_redacted
def markdown(v: Validation) -> str:
    """For a pull-request comment: the verdict first, the evidence folded away, the command to rerun it."""
    verdict = {0: "safe to upgrade", 1: "NOT safe to upgrade", 2: "could not validate the upgrade"}[v.exit_code]
    src = v.source
    door = _rollback(v)
    out = [f"## chroma-compat validate: {verdict} {_cell(_pair(v))}", "", _cell(v.summary, 1000), ""]
    out += [f"**{_cell(door, 1000)}**", ""] if door else []
    out += [
        "| source | |",
        "|---|---|",
        f"| location | {_cell(src.get('location', '?'))} ({_cell(src.get('kind', '?'))}) |",
        *(
            [f"| followed pointer | {_cell(src['pointer'])} (names {_cell(src.get('pointer_names'))}) |"]
            if src.get("pointer")
            else []
        ),
        f"| hash before / after | {_cell(src.get('hash_before', '?'))} / {_cell(src.get('hash_after', '?'))} |",
        f"| unchanged during validation | {_yes(src.get('unchanged'))} |",
        f"| {'read with' if v.source_release_evidence.startswith('written by') else 'written by'} | "
        f"{_cell(v.source_release or '?')} ({_cell(v.source_release_evidence or 'no evidence', 1000)}) |",
        f"| target | {_cell(v.target_release or '?')} ({_cell(v.direction or 'direction unknown')}, "
        f"path {_cell(v.path)}) |",
        "",
    ]
    facts = _inventory(v.inventory)
    if facts:
        out += ["### Inventory", ""] + [f"- **{label}**: {_cell(value, 400)}" for label, value in facts] + [""]
    if v.collections:
        rows = _collection_rows(v)
        out += ["### Collections", "", "| " + " | ".join(rows[0]) + " |", "|---" * len(rows[0]) + "|"]
        out += ["| " + " | ".join(_cell(x) for x in r) + " |" for r in rows[1:]] + [""]
    if v.findings:
        out += ["### Failing checks", "", "| check | collection | status | detail |", "|---|---|---|---|"]
        out += [
            f"| {_cell(c.name)} | {_cell(c.collection or '(store)')} | {c.status} | {_cell(c.detail)} |"
            for c in v.findings
        ] + [""]
        for c in v.findings:
            if c.evidence:
                out += [
                    f"<details><summary>{_cell(c.name + _where(c))}: evidence</summary>",
                    "",
                    _fence(_dumps(c.evidence, indent=2), "json"),
                    "",
                    "</details>",
                    "",
                ]
    if v.checks:
        out += [f"Checks: {v.tally}.", ""]
    if v.contracts_crossed:
        out += ["### Behaviour contracts crossed (information, not part of the verdict)", ""]
        for c in v.contracts_crossed:
            head, change = _contract(c)
            consequence = f" {c['consequence']}" if c.get("consequence") else ""
            out.append(
                f"- **{_cell(head)}**" + (f": {_cell(change, 300)}." if change else "") + _cell(consequence, 400)
            )
        out.append("")
    command = ["chroma-compat", "validate", str(src.get("location", "SOURCE")), "--to", v.target_release or "TARGET"]
    if v.source_release_evidence == "given with --from" and v.source_release:
        command += ["--from", v.source_release]
    if v.path != "in-place":
        command += ["--path", v.path]
    for flag, key in (("--endpoint-url", "endpoint_url"), ("--profile", "profile"), ("--region", "region")):
        if src.get(key):  # without it, pasting the command would ask real AWS for the bucket
            command += [flag, str(src[key])]
    out += ["Reproduce:", "", _fence(shlex.join(command), "bash")]
    return _clean("\n".join(out)) + "\n"


def _inside(path: Path, location: Any) -> bool:
    """True when ``path`` would land in (or on) a local source: a report there would alter the user's store."""
    if not isinstance(location, str) or "://" in location or not location:
        return False
    src = Path(location).expanduser().resolve()
    return path == src or src in path.parents


def check_report_paths(source: Any, paths: list[str | Path]) -> None:
    """Refuse, before any work, a report that could not be written at the end (one line, exit 2).

    Why before: a report folder that is read-only used to fail only after the
    whole run, with the verdict never printed. The nearest existing folder must
    take a probe file (root passes ``os.access`` on a read-only mount); nothing
    is created for the user here.
    """
    seen: set[Path] = set()
    for given in paths:
        path = Path(given).expanduser()
        full = path.resolve()
        if full.is_dir():
            raise CompatError(f"cannot write a report to {path}: it is a directory")
        if full in seen:
            raise CompatError(f"cannot write two reports to the same file {path}")
        if _inside(full, source):
            raise CompatError(f"refusing to write a report to {path}: it is inside the source being validated")
        seen.add(full)
        folder = full.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise CompatError(f"cannot write report {path}: {folder} is not a directory")
        probe = folder / f".chroma-compat-probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            with open(probe, "x"):
                pass
            probe.unlink()
        except OSError as exc:
            raise CompatError(
                f"cannot write report {path}: {exc.strerror or exc} in {folder}; choose a writable place"
            ) from None
        if full.exists() and not os.access(full, os.W_OK):
            raise CompatError(f"cannot write report {path}: the file is not writable")


def write_reports(
    v: Validation,
    *,
    json_path: str | Path | None = None,
    junit_path: str | Path | None = None,
    markdown_path: str | Path | None = None,
) -> list[Path]:
    """Write each requested report atomically: a CI step that reads it never sees half a file.

    Every path is checked before anything is written, so a refused request
    leaves no partial set of reports behind.
    """
    wanted = [
        (Path(p).expanduser(), render)
        for p, render in ((json_path, to_json_text), (junit_path, junit_xml), (markdown_path, markdown))
        if p
    ]
    check_report_paths(v.source.get("location"), [path for path, _ in wanted])
    written = []
    for path, text in [(path, render(v)) for path, render in wanted]:  # render all before writing any
        written.append(atomic_files.write_text(path, text, "report", errors="backslashreplace"))
    return written
