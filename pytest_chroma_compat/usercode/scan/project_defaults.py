"""The scan's ``--from``/``--to`` read from the project's own pyproject.toml.

Hooks that run on every commit (pre-commit, an editor, ``pre-commit try-repo``) call ``chroma-compat
scan FILES`` with the files only: the releases a project runs and targets belong to the project, in
one place, like a linter's settings::

    [tool.chroma-compat.scan]
    from = "0.4.24"
    to = "1.0.0"

Options on the command line win. The nearest pyproject.toml at or above the working directory is
read; a malformed one is a one-line error (exit 2), never a silent fallback to no versions.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from pytest_chroma_compat.common.errors import CompatError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

TABLE = ("tool", "chroma-compat", "scan")
# a pyproject.toml is a few kilobytes; a larger one is not a project file we should parse whole
MAX_BYTES = 1 << 20


def nearest_pyproject(start: Path) -> Optional[Path]:
    """The pyproject.toml a tool run from ``start`` belongs to (the nearest one above it)."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def scan_defaults(start: Optional[Path] = None) -> dict[str, str]:
    """``{"from": ..., "to": ...}`` as the project sets them (either may be absent)."""
    path = nearest_pyproject((start or Path.cwd()).resolve())
    if path is None:
        return {}
    try:
        if path.stat().st_size > MAX_BYTES:
            raise CompatError(f"scan: {path} is larger than {MAX_BYTES} bytes; pass --from and --to")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CompatError(f"scan: cannot read {path}: {exc}; pass --from and --to") from None
    table: object = data
    for key in TABLE:
        table = table.get(key, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise CompatError(f"scan: [{'.'.join(TABLE)}] in {path} is not a table")
    found = {}
    for key in ("from", "to"):
        if key in table:
            if not isinstance(table[key], str) or not table[key].strip():
                raise CompatError(f'scan: [{".".join(TABLE)}] {key} in {path} must be a release such as "1.0.0"')
            found[key] = table[key].strip()
    return found


def fill_versions(old: Optional[str], new: Optional[str], start: Optional[Path] = None) -> tuple[str, str]:
    """The two releases to scan between: the command line's, else the project's; both are needed."""
    if old and new:
        return old, new
    defaults = scan_defaults(start)
    old, new = old or defaults.get("from"), new or defaults.get("to")
    missing = [flag for flag, value in (("--from", old), ("--to", new)) if not value]
    if missing:
        raise CompatError(
            f"scan: {' and '.join(missing)} needed (or set them under [{'.'.join(TABLE)}] in your pyproject.toml)"
        )
    return old, new  # type: ignore[return-value]
