"""Keep the harness's own frames out of pytest's failure reports.

Why: a failing round trip or a refused call goes through the plugin, the round
trip driver, Hypothesis and the worker client before it reaches pytest; thirty
frames of our code bury the one thing the user needs, which is the failure's
own message (a :class:`ChromaCompatFailure` has sections: pair, path, check,
evidence, reproduce) and, when the user's test made the call, the user's line.

Rule: everything from the first frame of this package onward is dropped, since
below it runs only code the harness drives (Hypothesis, the client). The user's
frames above it stay. If nothing of the user's is left (a built-in check, a
fixture of ours), the last frame of ours, where the failure was raised, stays.
``--full-trace`` shows everything, for debugging the harness itself.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import pluggy
import pytest

PACKAGE = Path(__file__).resolve().parent.parent
#: pytest's and pluggy's own frames (the runner above every test): never the user's
_RUNNER = tuple(Path(m.__file__).resolve().parent for m in (pytest, pluggy)) + (
    Path(pytest.__file__).resolve().parent.parent / "_pytest",
)


def _under(filename: str, roots: tuple[Path, ...]) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return any(path.is_relative_to(root) for root in roots)


def ours(tb: TracebackType) -> bool:
    return _under(tb.tb_frame.f_code.co_filename, (PACKAGE,))


def _runner(tb: TracebackType) -> bool:
    return _under(tb.tb_frame.f_code.co_filename, _RUNNER)


def _walk(tb: TracebackType | None) -> list[TracebackType]:
    out = []
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out


def kept(tb: TracebackType | None) -> list[TracebackType] | None:
    """The entries of ``tb`` to show, or None when it never enters the harness (left as it is)."""
    entries = _walk(tb)
    first = next((i for i, e in enumerate(entries) if ours(e)), None)
    if first is None:
        return None
    shown = entries[:first]
    if not any(not _runner(e) for e in shown):  # nothing of the user's: show where we raised
        shown.append([e for e in entries if ours(e)][-1])
    return shown


def _relink(entries: list[TracebackType]) -> TracebackType | None:
    for a, b in zip(entries, entries[1:]):
        a.tb_next = b
    if entries:
        entries[-1].tb_next = None
    return entries[0] if entries else None


def trim(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Drop the harness's frames from a failure and from the exceptions chained to it."""
    keep = kept(excinfo.tb)
    if keep is not None:
        # relinked, not filtered: pytest re-walks ``tb_next`` from the test's own frame (Traceback.cut)
        head = _relink(keep)
        excinfo.traceback = type(excinfo.traceback)(head)
    seen = {id(excinfo.value)}
    exc: BaseException | None = _chained(excinfo.value)
    while exc is not None and id(exc) not in seen:  # pytest renders the chain from each __traceback__
        seen.add(id(exc))
        chain_keep = kept(exc.__traceback__)
        if chain_keep is not None:
            exc.__traceback__ = _relink(chain_keep)
        exc = _chained(exc)


def _chained(exc: BaseException) -> BaseException | None:
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def message_is_enough(excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    """True for a failure the harness raises by design, whose message says everything: a
    :class:`ChromaCompatFailure` (its sections), or a one-line :class:`CompatError` / :class:`ChromaError`
    reached from no line of the user's. A bug of ours (any other type) keeps the frame that raised it."""
    from pytest_chroma_compat.common.errors import ChromaCompatFailure, ChromaError, CompatError

    entries = _walk(excinfo.tb)
    if not entries or not ours(entries[-1]):
        return False
    if excinfo.errisinstance(ChromaCompatFailure):
        return True
    first = next(i for i, e in enumerate(entries) if ours(e))
    return excinfo.errisinstance((CompatError, ChromaError)) and all(_runner(e) for e in entries[:first])


def message_only(excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
    """The failure as its type and its own message (sections included), no source lines: what
    ``pytest.fail(pytrace=False)`` shows, plus the type. Keeps the crash line for the short summary."""
    rendered = excinfo.getrepr(style="value")
    try:
        rendered.reprtraceback.reprentries[-1].lines[:] = excinfo.exconly().split("\n")
    except (AttributeError, IndexError, TypeError):  # another pytest's layout: the plain value style
        pass
    return rendered
