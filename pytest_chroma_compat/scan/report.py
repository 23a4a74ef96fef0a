"""The scan as text for a terminal and as JSON."""

from __future__ import annotations

import json

from .engine import Finding, Scan


def finding_text(f: Finding) -> str:
    quote = f"\n    log: {f.section}: \"{f.quote}\"" if f.quote else f"\n    log: {f.section}"
    return (f"{f.path}:{f.line}:{f.column}: {f.contract_id}: {f.title}\n"
            f"    {f.code}{quote}\n"
            f"    measured change: {', '.join(f.changes)}; for this code: {f.what}\n"
            f"    consequence: {f.consequence}\n"
            f"    fix: {f.fix}")


def text(result: Scan) -> str:
    lines = [finding_text(f) for f in result.findings]
    lines += [f"not scanned (cannot parse): {u}" for u in result.unreadable]
    contracts = sorted({f.contract_id for f in result.findings})
    lines.append(f"{len(result.findings)} finding(s) in {result.files} file(s) for {result.old} -> {result.new}"
                 + (f" ({', '.join(contracts)})" if contracts else ""))
    return "\n".join(lines) + "\n"


def as_json(result: Scan) -> str:
    return json.dumps({"from": result.old, "to": result.new, "files": result.files,
                       "findings": [f.as_dict() for f in result.findings],
                       "unreadable": list(result.unreadable)}, indent=1, ensure_ascii=False) + "\n"
