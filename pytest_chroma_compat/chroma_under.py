"""``pytest --chroma-under 0.5.23,1.5.9``: this very pytest invocation, re-run under each release.

The outer session needs no chromadb and collects nothing: it re-runs its own
arguments (minus ``--chroma-under``) as ``python -m pytest ...`` in each
release's project environment (``user_runs``: the release with its pin rules
and the project installed editable), one after the other, then reports one line
per release and every failure with its release in the node id
(``tests/test_store.py::test_filters@chromadb-0.6.3``), and exits 1 if any
release failed. ``-k``, ``-x``, markers and paths pass through unchanged. Inside
a re-run (``CHROMA_COMPAT_UNDER`` is set) the option does nothing, so a project
that keeps ``--chroma-under`` in its addopts does not fan out again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

FLAG = "--chroma-under"
EXTRAS = "--chroma-under-extras"


def strip_flags(args: list[str]) -> list[str]:
    """The invocation's arguments without ours (``--flag value`` and ``--flag=value``)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in (FLAG, EXTRAS):
            skip = True
            continue
        if arg.startswith((FLAG + "=", EXTRAS + "=")):
            continue
        out.append(arg)
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    raw = config.getoption("chroma_compat_under", default=None)
    if not raw or os.environ.get("CHROMA_COMPAT_UNDER"):
        return None
    from . import project_envs, releases, user_runs
    from .errors import CompatError
    from .user_cli import line

    write = lambda text: print(text, flush=True)  # noqa: E731
    try:
        versions = list(dict.fromkeys(releases.resolve(v) for v in raw.split(",") if v.strip()))
        cwd = Path(config.invocation_params.dir)
        project = project_envs.find_project(cwd)
    except CompatError as exc:
        write(f"chroma-compat: error: {exc}")
        return pytest.ExitCode.USAGE_ERROR
    extras = [e for e in (config.getoption("chroma_compat_under_extras", default=None) or "").split(",") if e]
    command = ["python", "-m", "pytest", *strip_flags(list(config.invocation_params.args))]
    write(f"chroma-compat: running this session under {', '.join(f'chromadb {v}' for v in versions)}")
    results = []
    for version in versions:
        result = user_runs.run_one(version, command, project=project, cwd=cwd, extras=extras,
                                   note=lambda s: print(s, file=sys.stderr, flush=True))
        write(line(result))
        results.append(result)
    failures = [f"{node}@chromadb-{r.version}" for r in results for node in r.failures]
    for node in failures:
        write(f"FAILED {node}")
    for r in results:
        if r.status == "error" or (r.status == "failed" and not r.failures):
            write(f"ERROR chromadb {r.version}: {r.reason}")
    bad = [r.version for r in results if not r.ok]
    write(f"chroma-compat: {len(results) - len(bad)} of {len(results)} release(s) passed"
          + (f"; not passing: {', '.join(bad)}" if bad else ""))
    return pytest.ExitCode.TESTS_FAILED if bad else pytest.ExitCode.OK
