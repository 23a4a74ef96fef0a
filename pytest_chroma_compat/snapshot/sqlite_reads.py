"""Reading a store's SQLite in the host without letting it hang us or act on us.

Why a module of its own: the inventory and the recovery of a hot journal (store_state) both open
the user's database in this process, outside any worker, so both need the same time bound, signal
check and ``trusted_schema = off``; neither should import the other for it.
"""

from __future__ import annotations

import sqlite3
import time

from pytest_chroma_compat.common.errors import CompatError

SQLITE_FILE = "chroma.sqlite3"

#: the longest the host spends reading a store's SQLite: a crafted database (a recursive view, a
#: huge cross join) must not hang the validator, which reads it in the host, outside any worker
READ_SECONDS = 300.0


class StoreUnreadable(CompatError):
    """The path is not a Chroma store we can read at all (exit 2: could not validate)."""


def guard(conn: sqlite3.Connection, seconds: float = READ_SECONDS) -> sqlite3.Connection:
    """Bound every query on ``conn`` in time and let a signal stop it (see :func:`check_stopped`).

    Why a progress handler: SQLite runs a query without returning to Python, so neither a
    timeout nor SIGTERM could stop one before; the handler is called every few thousand
    steps, and whatever it raises is swallowed by sqlite3, hence the polling.
    """
    from pytest_chroma_compat.common import interrupts

    deadline = time.monotonic() + seconds

    def tick() -> int:
        try:
            return int(time.monotonic() > deadline or interrupts.stopping())
        except BaseException:  # the signal handler's own exception lands here: stop the query
            return 1

    conn.set_progress_handler(tick, 20_000)
    conn.execute("pragma trusted_schema = off")  # no function with side effects from the store's schema
    return conn


def check_stopped(exc: sqlite3.DatabaseError) -> StoreUnreadable:
    """The error to raise for an aborted query: an interruption goes on as one, a deadline is named."""
    from pytest_chroma_compat.common import interrupts

    interrupts.raise_if_stopping()
    if "interrupted" in str(exc).lower():
        return StoreUnreadable(
            f"reading {SQLITE_FILE} took longer than {READ_SECONDS:.0f} s: a crafted or "
            "damaged database (e.g. a recursive view); refusing it"
        )
    return StoreUnreadable(
        f"{SQLITE_FILE} cannot be read as a Chroma database ({exc}); the store is damaged or not a Chroma store"
    )
