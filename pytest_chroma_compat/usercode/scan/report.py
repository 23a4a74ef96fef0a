"""The scan as text for a terminal and as JSON."""

from __future__ import annotations

import json
import re

from pytest_chroma_compat.usercode.scan.reader import Finding, Scan

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """A file name or code line from the scanned tree, control characters escaped: a name holding a
    newline or a terminal escape must not forge report lines nor drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def finding_text(f: Finding) -> str:
    quote = f'\n    log: {f.section}: "{f.quote}"' if f.quote else f"\n    log: {f.section}"
    return (
        f"{shown(f.path)}:{f.line}:{f.column}: {f.contract_id}: {f.title}\n"
        f"    {shown(f.code)}{quote}\n"
        f"    measured change: {', '.join(f.changes)}; for this code: {f.what}\n"
        f"    consequence: {f.consequence}\n"
        f"    fix: {f.fix}"
    )


def text(result: Scan) -> str:
    lines = [finding_text(f) for f in result.findings]
    lines += [f"not scanned (cannot parse): {shown(u)}" for u in result.unreadable]
    lines += [f"not scanned (not read): {shown(u)}" for u in result.skipped]
    contracts = sorted({f.contract_id for f in result.findings})
    lines.append(
        f"{len(result.findings)} finding(s) in {result.files} file(s) for {result.old} -> {result.new}"
        + (f" ({', '.join(contracts)})" if contracts else "")
    )
    return "\n".join(lines) + "\n"


def as_json(result: Scan) -> str:
    return (
        json.dumps(
            {
                "from": result.old,
                "to": result.new,
                "files": result.files,
                "findings": [f.as_dict() for f in result.findings],
                "unreadable": list(result.unreadable),
                "skipped": list(result.skipped),
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n"
    )
