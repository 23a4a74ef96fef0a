"""The scan as SARIF 2.1.0, the format GitHub code scanning uploads (``github/codeql-action/upload-sarif``).

One rule per contract that has findings (rule id = contract id), its help the log entry and the
fix; one result per finding, located by a path relative to the scan's working directory (code
scanning resolves ``uri`` against the repository root, so run the scan from there).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from pytest_chroma_compat.usercode.scan.reader import Finding, Scan

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://docs.trychroma.com/docs/overview/migration"


def _uri(path: str) -> str:
    """RFC 3986: a path relative to the working directory, percent-encoded (a space, ``#``, ``%``
    or a non-ASCII letter in a file name would otherwise be a different or invalid URI), else a
    ``file://`` URI (``Path.as_uri`` encodes)."""
    p = Path(path)
    try:
        p = p.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return p.resolve().as_uri()
    return urllib.parse.quote(p.as_posix(), safe="/")


def _rule(f: Finding) -> dict:
    log = f'{f.section}: "{f.quote}"' if f.quote else f.section
    help_text = f"Migration log: {log}\nConsequence: {f.consequence}\nFix: {f.fix}"
    return {
        "id": f.contract_id,
        "name": f.contract_id.title().replace("-", ""),
        "shortDescription": {"text": f.title},
        "fullDescription": {"text": f.consequence},
        "help": {
            "text": help_text,
            "markdown": f"**Migration log**: {log}\n\n**Consequence**: {f.consequence}\n\n**Fix**: {f.fix}",
        },
        "helpUri": INFO_URI,
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["chromadb", "upgrade"]},
    }


def sarif(result: Scan) -> dict:
    ids: list[str] = []
    rules = []
    for f in result.findings:
        if f.contract_id not in ids:
            ids.append(f.contract_id)
            rules.append(_rule(f))
    results = [
        {
            "ruleId": f.contract_id,
            "ruleIndex": ids.index(f.contract_id),
            "level": "warning",
            "message": {
                "text": f"{f.title}: for this code, measured {result.old} -> {result.new}: {f.what} "
                f"(changes at {', '.join(f.changes)}). Fix: {f.fix}"
            },
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.path)},
                        "region": {"startLine": f.line, "startColumn": f.column, "snippet": {"text": f.code}},
                    }
                }
            ],
            "partialFingerprints": {"primaryLocationLineHash": f"{f.contract_id}:{f.code}"},
        }
        for f in result.findings
    ]
    notes = [{"level": "warning", "message": {"text": f"not scanned (cannot parse): {u}"}} for u in result.unreadable]
    notes += [{"level": "warning", "message": {"text": f"not scanned (not read): {u}"}} for u in result.skipped]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "chroma-compat scan",
                        "rules": rules,
                        "informationUri": "https://pypi.org/project/pytest-chroma-compat/",
                    }
                },
                "results": results,
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}],
                "properties": {"from": result.old, "to": result.new, "files": result.files},
            }
        ],
    }


def as_sarif(result: Scan) -> str:
    return json.dumps(sarif(result), indent=1, ensure_ascii=False) + "\n"
