"""Scan files for an upgrade: parse, match the rules, keep what the upgrade crosses, drop suppressions."""

from __future__ import annotations

import ast
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.usercode.scan import finder, rules, scope

SUPPRESS = re.compile(r"#\s*chroma-compat:\s*ignore\[([^\]]*)\]")
SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox", "site-packages"}
#: files above this are listed as not scanned, not read: a 50 MB file took 11 minutes and 8 GB (measured)
DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024


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
    changes: tuple[str, ...]  # the measured changes the contract owns inside (from, to]
    what: str  # the measured values under --from and --to this code depends on
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
    unreadable: tuple[str, ...] = ()  # files that are not Python the parser accepts: named, not guessed
    skipped: tuple[str, ...] = ()  # files never read (not regular, a link out of the tree, too big): why


@dataclass(frozen=True)
class Candidate:
    """A file the walk found: ``why`` says why it is not read ("" = read it)."""

    path: Path
    why: str = ""


def _kind(mode: int) -> str:
    return (
        "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a directory"
        if stat.S_ISDIR(mode)
        else "not a regular file"
    )


def _check(path: Path, root: Path | None, limit: int) -> Candidate:
    """Why a found file must not be read: only regular files inside the tree, and not too big.
    Why before ``open``: opening a FIFO blocks until a writer comes, and a device may never end."""
    try:
        if path.is_symlink():
            real = path.resolve(strict=True)
            if root is not None and real != root and root not in real.parents:
                return Candidate(path, f"a link leading outside the tree (to {real})")
        info = path.stat()
    except (OSError, RuntimeError) as exc:  # a dangling or looping link, a file gone since the walk
        return Candidate(path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})")
    if not stat.S_ISREG(info.st_mode):
        return Candidate(path, f"{_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        return Candidate(path, f"{info.st_size} bytes, above --max-file-bytes {limit}")
    return Candidate(path)


def read_source(path: Path, limit: int) -> str:
    """The file's text, read from a descriptor checked again after ``open`` (the file may have been
    swapped for a FIFO or a device since the walk), never more than ``limit`` bytes."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{_kind(info.st_mode)}, not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(f"more than --max-file-bytes {limit}")
    return data.decode("utf-8")


def candidates(paths: Iterable[str], limit: int = DEFAULT_MAX_FILE_BYTES) -> Iterator[Candidate]:
    """Every ``*.py`` under ``paths`` (a named file as given), each with why it is not read, if so.
    Directories are walked without following links: a link to a directory is not entered."""
    for raw in paths:
        p = Path(raw)
        if not p.exists() and not p.is_symlink():
            raise CompatError(f"scan: no such file or directory: {raw}")
        if not p.is_dir():
            yield _check(p, None, limit)
            continue
        root = p.resolve()
        for folder, dirs, files in os.walk(p):
            rel = Path(folder).relative_to(p).parts
            if SKIP_DIRS & set(rel):
                dirs[:] = []
                continue
            links = [d for d in dirs if (Path(folder) / d).is_symlink()]
            dirs[:] = sorted(d for d in dirs if d not in links)
            for name in sorted(files + links):
                if name.endswith(".py") or name in links:
                    found = _check(Path(folder) / name, root, limit)
                    if name in links and not found.why.startswith("a link leading outside"):
                        continue  # a link to a folder of the tree: its files are scanned where they are
                    yield found


def python_files(paths: Iterable[str]) -> Iterator[Path]:
    """The files ``scan`` reads (the ones :func:`candidates` does not skip)."""
    for c in candidates(paths):
        if not c.why:
            yield c.path


def suppressed(line: str, contract_id: str) -> bool:
    m = SUPPRESS.search(line)
    return bool(m) and contract_id in {x.strip() for x in m.group(1).split(",")}


def scan(paths: Iterable[str], old: str, new: str, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Scan:
    """Every line of the Python files under ``paths`` that the upgrade from ``old`` to ``new`` touches.

    A file that cannot be read or parsed, or whose syntax is nested deeper than the parser or the
    matcher can follow, is listed as not scanned with its reason; the other files' findings stand."""
    from pytest_chroma_compat.contracts.measure import contract

    if Version(old) >= Version(new):
        raise CompatError(f"scan: --from {old} must be older than --to {new}")
    table = rules.load()
    findings: list[Finding] = []
    unreadable: list[str] = []
    skipped: list[str] = []
    files = 0
    for cand in candidates(paths, max_file_bytes):
        path = cand.path
        if cand.why:
            skipped.append(f"{path}: {cand.why}")
            continue
        files += 1
        try:
            source = read_source(path, max_file_bytes)
            tree = ast.parse(source, filename=str(path))
            matches = finder.find(tree, table)
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
            unreadable.append(f"{path}: {type(exc).__name__}: {exc}")
            continue
        except (RecursionError, MemoryError) as exc:  # CPython's parser overflows its own stack as MemoryError
            unreadable.append(f"{path}: {type(exc).__name__}: its syntax is nested deeper than the parser follows")
            continue
        except OSError as exc:
            skipped.append(f"{path}: {exc.strerror or exc}")
            continue
        lines = source.splitlines()
        for m in matches:
            text = lines[m.line - 1] if m.line <= len(lines) else ""
            if suppressed(text, m.rule.contract_id):
                continue
            crossed = scope.crossing(m.rule.contract_id, old, new, m.keys)
            if crossed is None:
                continue
            c = contract(m.rule.contract_id)
            findings.append(
                Finding(
                    str(path),
                    m.line,
                    m.column,
                    text.strip(),
                    c.id,
                    c.title,
                    c.section,
                    c.quote,
                    c.documented,
                    crossed.at,
                    crossed.what,
                    c.consequence,
                    m.rule.fix,
                )
            )
    return Scan(old, new, files, tuple(findings), tuple(unreadable), tuple(skipped))
