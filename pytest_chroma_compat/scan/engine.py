"""Scan files for an upgrade: parse, match the rules, keep what the upgrade crosses, drop suppressions."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from packaging.version import Version

from ..errors import CompatError
from . import finder, rules, scope

SUPPRESS = re.compile(r"#\s*chroma-compat:\s*ignore\[([^\]]*)\]")
SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox", "site-packages"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    code: str
    contract_id: str
    title: str
    section: str
    quote: str
    documented: str
    changes: tuple[str, ...]     # the measured changes the contract owns inside (from, to]
    what: str                    # the measured values under --from and --to this code depends on
    consequence: str
    fix: str

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Scan:
    old: str
    new: str
    files: int
    findings: tuple[Finding, ...]
    unreadable: tuple[str, ...] = ()   # files that are not Python the parser accepts: named, not guessed


def python_files(paths: Iterable[str]) -> Iterator[Path]:
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise CompatError(f"scan: no such file or directory: {raw}")
        if p.is_file():
            yield p
            continue
        for f in sorted(p.rglob("*.py")):
            if not SKIP_DIRS & set(f.relative_to(p).parts[:-1]):
                yield f


def suppressed(line: str, contract_id: str) -> bool:
    m = SUPPRESS.search(line)
    return bool(m) and contract_id in {x.strip() for x in m.group(1).split(",")}


def scan(paths: Iterable[str], old: str, new: str) -> Scan:
    """Every line of the Python files under ``paths`` that the upgrade from ``old`` to ``new`` touches."""
    from ..contracts.measure import contract

    if Version(old) >= Version(new):
        raise CompatError(f"scan: --from {old} must be older than --to {new}")
    table = rules.load()
    findings: list[Finding] = []
    unreadable: list[str] = []
    files = 0
    for path in python_files(paths):
        files += 1
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source, filename=str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
            unreadable.append(f"{path}: {type(exc).__name__}: {exc}")
            continue
        lines = source.splitlines()
        for m in finder.find(tree, table):
            text = lines[m.line - 1] if m.line <= len(lines) else ""
            if suppressed(text, m.rule.contract_id):
                continue
            crossed = scope.crossing(m.rule.contract_id, old, new, m.keys)
            if crossed is None:
                continue
            c = contract(m.rule.contract_id)
            findings.append(Finding(str(path), m.line, m.column, text.strip(), c.id, c.title, c.section, c.quote,
                                    c.documented, crossed.at, crossed.what, c.consequence, m.rule.fix))
    return Scan(old, new, files, tuple(findings), tuple(unreadable))
