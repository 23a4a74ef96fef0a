"""A chromadb release in your own nox session, installed as the harness installs it.

```python
from pytest_chroma_compat.usercode.nox import install_chromadb

@nox.session
@nox.parametrize("chromadb", ["0.5.23", "1.0.21", "1.5.9"])
def tests(session, chromadb):
    install_chromadb(session, chromadb)
    session.install("-e", ".")
    session.run("pytest")
```

Why: a plain ``session.install("chromadb==0.4.24")`` resolves today's
dependencies, and the release then fails to import (numpy 2) or buries its
errors under telemetry tracebacks (posthog 6). The pin rules of ``engine/pins.toml``,
measured by the sweep, are what make each release work; this module applies
the same rules through the same function (``pins.install_args``) as the
harness's own environments. With nox's uv backend the install comes from uv's
cache, which those environments have already filled.

Nox is never imported: the session is only called (``install``, ``create_tmp``,
``error``, ``log``), so importing this module costs nothing and works where nox
is absent. Nor is chromadb: it is installed into the session, not here.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import nox

    from pytest_chroma_compat.engine.pins import PinRule

__all__ = ["install_chromadb"]


def install_chromadb(session: nox.Session, version: str, *, kind: str = "full") -> str:
    """Install chromadb ``version`` (exact, a series such as ``0.5``, ``first:0.6`` or ``latest``)
    with the pin rules that apply to it and the session's Python; returns the exact release.

    ``kind="client"`` installs the release's thin ``chromadb-client`` package instead.
    An unknown, yanked or impossible release ends the session with one line (``session.error``).
    Install your own package after this call, without ``--upgrade``, so the pins stay.
    """
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.engine import pins

    python = session_python(session)
    try:
        package, exact, applied = plan(version, kind=kind, python=python)
    except CompatError as exc:
        session.error(str(exc))
        raise  # unreachable: session.error raises; kept for stand-ins that do not
    requirements, constraints = pins.install_args(exact, applied, package)
    args: list[str] = []
    if constraints:
        cfile = Path(session.create_tmp()) / f"{package}-{exact}-constraints.txt"
        cfile.write_text("\n".join(constraints) + "\n")
        args += ["-c", str(cfile)]
    session.log(f"{package} {exact} on Python {python}: pins {', '.join(r.id for r in applied) or 'none'}")
    session.install(*args, *requirements)
    return exact


def plan(version: str, *, kind: str = "full", python: str | None = None) -> tuple[str, str, list[PinRule]]:
    """(package, exact release, pin rules) for ``version`` on ``python``; CompatError with one line if none.

    The checks are those of ``envs.ensure``, so a release the harness refuses is refused here too."""
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.engine import envs, pins, releases

    if kind not in envs.PACKAGES:
        raise CompatError(f"unknown chromadb package kind {kind!r} (one of {', '.join(envs.PACKAGES)})")
    package = envs.PACKAGES[kind]
    exact = releases.resolve(version) if kind == "full" else releases.resolve_thin(version)
    python = python or platform.python_version()
    why = pins.unavailable(exact, python, kind)
    if why:
        raise CompatError(f"{package} {exact} cannot be installed on Python {python}: {why}")
    return package, exact, pins.for_version(exact, python, kind)


_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")


def session_python(session: nox.Session) -> str:
    """The session interpreter's version, which pin rules keyed by Python (and refusals) are decided on.

    Why not this process's: nox may run sessions on other Pythons (``python=["3.9", "3.12"]``).
    Read from the virtualenv's ``pyvenv.cfg`` (no subprocess: nox's own ``--no-install`` reuse
    skips commands); else the session's ``python=`` when it names one; else nox's own Python,
    which is what a session without ``python=`` runs on."""
    try:
        cfg = Path(session.virtualenv.location) / "pyvenv.cfg"
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            found = _VERSION.match(value.strip())
            if key.strip() in ("version_info", "version") and found:
                return found.group(0)
    except Exception:  # no virtualenv (a stand-in, a passthrough session), no pyvenv.cfg
        pass
    wanted = getattr(session, "python", None)
    if isinstance(wanted, str) and _VERSION.fullmatch(wanted):
        return wanted
    return platform.python_version()
