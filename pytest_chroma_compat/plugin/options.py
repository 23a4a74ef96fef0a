"""Every ``--chroma-*`` option (and its ini twin) checked once, at start-up, as a usage error.

Why here and not where each option is read: an option read by a fixture fails test by test
(``--chroma-examples=abc``: a raw ValueError in every round trip), or is never read at all in a run
that does not need it, so a typo (``--chroma-to 0.1.0``, ``--chroma-versions=1.5.9,garbage``) is
accepted silently. ``pytest_configure`` calls :func:`check` first: one ``pytest.UsageError``
(exit 4) naming the option, the bad value and what is accepted, before anything is collected.
Only values the user gave are checked; nothing is installed, and chromadb is never imported.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Callable

import pytest

#: upper bounds: every count read from an option has one (issue 24)
MAX_EXAMPLES = 100_000
MAX_SEED = 2**64 - 1
MAX_DATA_BUDGET = 100_000  # stored values kept per key in memory (data_checks.py): bounded
#: bool ini options: a value that is not true/false is refused here, not when a fixture reads it
FLAGS = ("chroma_compat_snapshot_refuse_downgrade", "chroma_compat_snapshot_allow_pre_existing")


def _given(config: pytest.Config, name: str) -> tuple[Any, str]:
    """(value, how to name it): the command line first, then the ini file, as ``plugin.option`` reads."""
    value = config.getoption(name, default=None)
    if value not in (None, ""):
        return value, "--" + name.replace("chroma_compat_", "chroma-").replace("_", "-")
    try:
        value = config.getini(name)
    except ValueError:  # not an ini option of ours (an older plugin layout)
        return None, name
    return (value or None), f"{name} (ini)"


def _refuse(flag: str, value: Any, accepted: str) -> pytest.UsageError:
    return pytest.UsageError(f"chroma-compat: {flag}={value!r} is not accepted: {accepted}")


def _whole(value: Any, flag: str, low: int, high: int, extra: tuple[str, ...] = ()) -> None:
    text = str(value).strip()
    if text in extra:
        return
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        also = "".join(f" or {e!r}" for e in extra)
        raise _refuse(flag, value, f"a whole number from {low} to {high}{also}")


def _release(value: Any, flag: str, extra: tuple[str, ...] = ()) -> None:
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.engine.releases import family, resolve

    for item in _items(value):
        if item in extra:
            continue
        try:
            exact = resolve(item)
            family(exact)  # engine/adapters.toml: a release no worker adapter covers is never driven
        except CompatError as exc:
            raise _refuse(
                flag,
                item if item != value else value,
                f"a release of the catalogue (an exact version, a series such as 1.5, first:0.5 or "
                f"latest{''.join(', ' + e for e in extra)}): {exc}",
            ) from None
        from pytest_chroma_compat.engine.pins import unavailable

        why = unavailable(exact)  # engine/pins.toml: releases no pin makes work on this Python, measured
        if why:
            raise _refuse(
                flag,
                item if item != value else value,
                f"a release that installs on this Python; chromadb {exact} cannot: {why}",
            )


def _items(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
    return [str(v).strip() for v in items if str(v).strip()]


def _profile(value: Any, flag: str) -> None:
    from pytest_chroma_compat.roundtrip.profiles import PROFILES

    if str(value) not in PROFILES:
        raise _refuse(flag, value, f"one of {', '.join(PROFILES)}")


def _versions(value: Any, flag: str) -> None:
    if not _items(value):
        raise _refuse(flag, value, "one or more releases, comma-separated")
    _release(value, flag)


def _url(value: Any, flag: str) -> None:
    try:
        parts = urllib.parse.urlsplit(str(value))
    except ValueError:  # "http://[::1": before, an INTERNALERROR traceback
        raise _refuse(flag, value, "an http(s)://host[:port] URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(flag, value, "an http:// or https:// URL of an S3-compatible endpoint")


def _names(value: Any, flag: str) -> None:
    if not _items(value):
        raise _refuse(flag, value, "one or more collection names, comma-separated")


def _filters(value: Any, flag: str) -> None:
    """The user's filters file or code, read now: a missing or malformed one is said once."""
    from pytest_chroma_compat.common.errors import CompatError

    try:
        from pytest_chroma_compat.snapshot.user_filters import from_option
    except ImportError:
        return
    try:
        found = from_option(str(value))[0]
    except CompatError as exc:
        raise _refuse(
            flag,
            value,
            f"a JSON list of {{where, where_document, collection}} or Python code (a .py "
            f"file or a directory) with literal filters: {exc}",
        ) from None
    if not found:
        raise _refuse(flag, value, "a file or code with at least one literal filter (none found)")


def _one_of(value: Any, flag: str, accepted: tuple[str, ...]) -> None:
    if str(value) not in accepted:
        raise _refuse(flag, value, f"one of {', '.join(accepted)}")


def _fail(error: Exception) -> None:
    raise error


_PYTHON = re.compile(r"^\d\.\d{1,2}$")


#: option dest -> its check; --chroma-progress is checked by plugin.progress_every, --chroma-under by
#: chroma_under (which runs before configure), --chroma-snapshot and --chroma-scan paths where they are used
CHECKS: dict[str, Callable[[Any, str], None]] = {
    "chroma_compat_examples": lambda v, f: _whole(v, f, 1, MAX_EXAMPLES),
    "chroma_compat_seed": lambda v, f: _whole(v, f, 0, MAX_SEED, extra=("random",)),
    "chroma_compat_profile": _profile,
    "chroma_compat_versions": _versions,
    "chroma_compat_from": lambda v, f: _release(v, f, extra=("auto",)),
    "chroma_compat_to": _release,
    "chroma_compat_snapshot_endpoint_url": _url,
    "chroma_compat_snapshot_collections": _names,
    "chroma_compat_snapshot_filters": _filters,
    "chroma_compat_snapshot_data_budget": lambda v, f: _whole(v, f, 0, MAX_DATA_BUDGET),
    "chroma_compat_under_server": lambda v, f: _one_of(
        v, f, ("plain", "token")
    ),  # usercode/chroma_under.py checks them
    "chroma_compat_under_python": lambda v, f: None if _PYTHON.match(str(v)) else _fail(_refuse(f, v, "X.Y")),
}


def check(config: pytest.Config) -> None:
    """Raise one ``pytest.UsageError`` for the first option whose value is not accepted."""
    for name, checker in CHECKS.items():
        value, flag = _given(config, name)
        if value is not None:
            checker(value, flag)
    for name in FLAGS:
        try:
            config.getini(name)
        except ValueError:  # pytest's bool ini: not a truth value (or not registered: nothing to check)
            raw = config.inicfg.get(name)
            if raw is not None:
                raise _refuse(f"{name} (ini)", getattr(raw, "value", raw), "true or false") from None
    if _given(config, "chroma_compat_snapshot")[0] is not None and _given(config, "chroma_compat_to")[0] is None:
        from pytest_chroma_compat.plugin.config import (
            installed_chromadb,
        )  # read from metadata: chromadb is not imported

        if not installed_chromadb():  # before: raised in collection, a traceback and exit 2, not a usage error
            raise pytest.UsageError(
                "chroma-compat: --chroma-snapshot needs --chroma-to (no chromadb is installed here)"
            )
