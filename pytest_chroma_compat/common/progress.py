"""Live progress for long waits, in one shape everywhere: ``progress(label, done, total)``.

Why one callable: the code that waits (a download, a page stream, Hypothesis
examples) should not know whether a person watches a terminal, a CI log keeps
lines, or pytest owns the screen. On a terminal it is a rich bar on stderr that
disappears when done; anywhere else (CI, a pipe, a nox log) it is a plain line per
label that has been going for ``every`` seconds, then at most one per ``every``
seconds, so a 20-minute run is never silent, a log is never flooded, and a short
run prints nothing. ``total`` 0 means "unknown": a line that says what is
happening (an S3 retry, a release being installed).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable, Optional, TextIO

Progress = Callable[[str, int, int], None]

EVERY = 10.0  # seconds between two plain lines for one label


def lines(
    write: Callable[[str], None], *, every: float = EVERY, clock: Callable[[], float] = time.monotonic
) -> Progress:
    """Plain lines through ``write``, only for what takes long: a label reported for ``every``
    seconds gets a line, then at most one per ``every`` seconds (per label: a page stream does not
    mute an install), and its completion. A short run prints nothing, so a one-line error stays one line."""
    started: dict[str, float] = {}
    last: dict[str, float] = {}
    lock = threading.Lock()

    def update(label: str, done: int, total: int) -> None:
        now = clock()
        with lock:
            started.setdefault(label, now)
            shown = label in last
            finished = bool(total) and done >= total
            due = now - last.get(label, started[label]) >= every
            if not (due or (finished and shown)):
                return
            last[label] = now
        write(f"{label}: {done}/{total}" if total else f"{label}: {done}" if done else label)

    return update


@contextmanager
def bar(enabled: bool = True, *, stream: Optional[TextIO] = None, every: float = EVERY) -> Iterator[Progress | None]:
    """A progress callable for the duration of a command, or None when ``enabled`` is false.

    A terminal gets a transient rich bar; anything else gets :func:`lines` on ``stream``
    (stderr by default: stdout is for reports that may be piped into a file).
    """
    out = stream or sys.stderr
    if not enabled:
        yield None
        return
    if not out.isatty():

        def write(text: str) -> None:
            from pytest_chroma_compat.common.redact import redact  # a label may name an S3 URL

            print(redact(text), file=out, flush=True)

        yield lines(write, every=every)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=out),
        transient=True,
    ) as live:
        tasks: dict[str, object] = {}
        lock = threading.Lock()

        def update(label: str, done: int, total: int) -> None:  # called from download threads too
            from pytest_chroma_compat.common.redact import redact

            with lock:
                if label not in tasks:
                    tasks[label] = live.add_task(redact(label), total=total or None)
                live.update(tasks[label], completed=done, total=total or None)

        yield update
