"""Progress and install notes under pytest, written through pytest's terminal reporter.

Why not ``progress.bar``: under pytest the screen belongs to pytest. A rich bar
or a bare ``print`` would either be swallowed by output capture (a round trip
runs inside a test, where stdout is a temporary file) or tear pytest's own
lines apart. So every line goes through the terminal reporter, with capture
suspended for the write, as pytest's own live logging does. The throttling is
``progress.lines``': nothing for a short wait, then one line per label per
``every`` seconds, and its completion. On a terminal the progress line is
rewritten in place instead of repeated; pytest's next output starts below it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from pytest_chroma_compat.common.progress import EVERY, Progress, lines

PREFIX = "chroma-compat: "
TTY_REFRESH = 0.25  # seconds between two redraws of the progress line on a terminal
UP = "\r\x1b[1A"  # to the start of the line above


class TerminalProgress:
    """A ``progress(label, done, total)`` callable plus :meth:`note`, bound to one pytest run.

    Each line is written between pytest's own: the line pytest was writing (a file's
    result letters, a test id waiting for PASSED) is ended, ours follows, and pytest's
    prefix is written again so its next letter lands after it, not after ours. On a
    terminal, a later update of the same wait redraws our line in place (cursor up one
    line) as long as pytest has written nothing since.
    """

    def __init__(
        self, reporter: Any, capture: Any, *, every: float = EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._reporter = reporter
        self._capture = capture
        self._lock = threading.RLock()
        self._clock = clock
        self._tty = bool(reporter.isatty())
        self._after: tuple[Any, int] | None = None  # pytest's line state right after our last line
        self._update: Progress = self._redrawing(every) if self._tty else lines(self._line, every=every, clock=clock)

    def __call__(self, label: str, done: int, total: int) -> None:
        self._update(label, done, total)

    def note(self, text: str) -> None:
        """An event worth a line at once (a release environment being built): shown whatever its length."""
        self._line(text)

    @contextlib.contextmanager
    def _screen(self) -> Iterator[None]:
        """Capture suspended, so the line reaches the terminal even from inside a test."""
        with self._lock:
            suspended = self._capture.global_and_fixture_disabled() if self._capture else contextlib.nullcontext()
            with suspended:
                yield
                self._reporter.flush()

    def _line(self, text: str, *, redraw: bool = False) -> None:
        from pytest_chroma_compat.common.redact import redact  # a label may name an S3 URL

        text = PREFIX + redact(text)
        rep = self._reporter
        with self._screen():
            tw = getattr(rep, "_tw", None)  # pytest's TerminalWriter: how much of the current line is written
            if redraw and tw is not None and self._after == (rep.currentfspath, tw.width_of_current_line):
                width = max(tw.fullwidth - 1, 20)
                rep.write(UP + text[:width].ljust(width) + "\n")
                self._resume(self._after[0])
            else:
                prior = rep.currentfspath
                rep.write_line(text)
                self._resume(prior)
            self._after = (rep.currentfspath, tw.width_of_current_line) if tw is not None else None

    def _resume(self, prior: Any) -> None:
        """Write pytest's interrupted prefix again: a file's path (then its letters) or a test's id."""
        rep = self._reporter
        if isinstance(prior, os.PathLike):
            try:
                shown = os.path.relpath(prior, rep.startpath)
            except ValueError:
                shown = str(prior)
            rep.write(shown + " ")
        elif isinstance(prior, str):
            rep.write(prior)
        else:
            return
        rep.currentfspath = prior

    def _redrawing(self, every: float) -> Progress:
        """A label shows once it has lasted ``every`` seconds, then is redrawn in place."""
        started: dict[str, float] = {}
        drawn: set[str] = set()
        last = [float("-inf")]

        def update(label: str, done: int, total: int) -> None:
            now = self._clock()
            with self._lock:
                started.setdefault(label, now)
                finished = bool(total) and done >= total
                if now - started[label] < every and not (finished and label in drawn):
                    return
                if now - last[0] < TTY_REFRESH and not finished:
                    return
                drawn.add(label)
                last[0] = now
                self._line(f"{label}: {done}/{total}" if total else label, redraw=True)

        return update


def for_config(config: pytest.Config, every: float = EVERY) -> TerminalProgress | None:
    """The run's progress writer, or None where nobody would see it (an xdist worker, no terminal
    reporter, ``--chroma-progress off``)."""
    if hasattr(config, "workerinput"):
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return None
    return TerminalProgress(reporter, config.pluginmanager.get_plugin("capturemanager"), every=every)


def ensure_releases(versions: list[str], note: Callable[[str], None] | None) -> None:
    """Build the environments of ``versions`` now, saying so: otherwise the first worker builds one
    silently inside a test, and a 4-minute install looks like a hung run."""
    from pytest_chroma_compat.engine import envs

    for version in versions:
        said: list[str] = []

        def tell(text: str) -> None:
            said.append(text)  # noqa: B023  (tell is used within this iteration only)
            if note:
                note(text)

        started = time.monotonic()
        envs.ensure(version, note=tell)
        if said and note:
            note(f"chromadb {version} environment ready ({time.monotonic() - started:.1f} s)")
