"""Sessions: the project's tests, the release sweep, and (with the round-trip
harness) one compat-X-to-Y session per release pair. `nox --list` says which
releases each session runs."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own test suite (what CI runs)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def sweep(session: nox.Session) -> None:
    """Install every release from 0.4.0 up and drive each through a worker; writes docs/sweep.json.

    `nox -s sweep -- --without-pins` shows the error each pin rule prevents.
    """
    session.install("-e", ".")
    args = session.posargs or ["--versions", ">=0.4.0", "--json", "docs/sweep.json"]
    session.run("chroma-compat", "sweep", *args)
