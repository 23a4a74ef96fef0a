"""What the plugin reads from pytest's configuration: its options (command line, then ini), the
upgrade pair, the releases to build, and the run's progress writer.

Why a module of its own: the plugin's entry point and its importable built-in checks (round trips,
snapshots, scans) all read the same options the same way; kept here, below all of them, the checks
need not import the entry point that collects them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

CHECKS_MODULE = Path(__file__).with_name("pair_checks.py")
SNAPSHOT_CHECKS_MODULE = Path(__file__).with_name("snapshot_checks.py")
SCAN_CHECKS_MODULE = Path(__file__).with_name("scan_checks.py")


def option(config: pytest.Config, name: str) -> Any:
    """Command line first, then the ini file."""
    value = config.getoption(name, default=None)
    return value if value not in (None, "") else (config.getini(name) or None)


def installed_chromadb() -> str | None:
    """The chromadb of the test environment, read from its metadata: never imported here."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chromadb")
    except PackageNotFoundError:
        return None


def _resolve(version: str, what: str) -> str:
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.engine.releases import resolve

    try:
        return resolve(version)
    except CompatError as exc:
        raise pytest.UsageError(f"chroma-compat: {what}: {exc}") from None


def progress_every(config: pytest.Config) -> float | None:
    """--chroma-progress as seconds, or None for "off"."""
    from pytest_chroma_compat.common.progress import EVERY

    raw = option(config, "chroma_compat_progress")
    if raw is None:
        return EVERY
    if str(raw).strip().lower() in ("off", "no", "false", "none"):
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise pytest.UsageError(f"chroma-compat: --chroma-progress must be a number of seconds or 'off', not {raw!r}")
    return seconds


_PROGRESS = pytest.StashKey[Any]()


def live(config: pytest.Config) -> Any:
    """The run's progress writer (``terminal_progress.TerminalProgress``), or None; made on first use,
    after pytest's terminal reporter exists."""
    if _PROGRESS not in config.stash:
        from pytest_chroma_compat.plugin import terminal_progress

        every = progress_every(config)
        config.stash[_PROGRESS] = None if every is None else terminal_progress.for_config(config, every)
    return config.stash[_PROGRESS]


def install_note(config: pytest.Config) -> Callable[[str], None] | None:
    writer = live(config)
    return writer.note if writer is not None else None


def ensure_releases(config: pytest.Config, *versions: str) -> None:
    """Build missing environments before a worker needs them, with a line on the terminal; a release
    that cannot be installed fails the test in one line (the verdict: could not be checked)."""
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.plugin.terminal_progress import ensure_releases as build

    __tracebackhide__ = True
    try:
        build(list(versions), install_note(config))
    except CompatError as exc:
        pytest.fail(f"chroma-compat: {exc}", pytrace=False)


def pair_from_config(config: pytest.Config) -> tuple[str, str]:
    old = option(config, "chroma_compat_from")
    new = option(config, "chroma_compat_to") or installed_chromadb()
    if not old:
        raise pytest.UsageError("chroma-compat: --chroma-from (or chroma_compat_from) is required for this")
    if not new:
        raise pytest.UsageError("chroma-compat: --chroma-to is not given and no chromadb is installed here")
    return _resolve(old, "--chroma-from"), _resolve(new, "--chroma-to")


def listed(raw: Any) -> list[str]:
    """An option or ini value as a list: given as a list, or as one string separated by commas or spaces."""
    items = raw if isinstance(raw, (list, tuple)) else str(raw or "").replace(",", " ").split()
    return [v for v in items if v]
