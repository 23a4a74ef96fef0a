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
#: the options of `chroma-compat run` (engine/project_options.py), each with an ini twin: flag -> (dest, kind, help)
UNDER_OPTIONS: dict[str, tuple[str, str, str]] = {
    "--chroma-under-group": (
        "chroma_compat_under_group",
        "list",
        "a PEP 735 dependency group to install (repeatable; ini: one per line)",
    ),
    "--chroma-under-with": (
        "chroma_compat_under_with",
        "list",
        "an extra requirement to install (repeatable; ini: one per line)",
    ),
    "--chroma-under-no-sources": ("chroma_compat_under_no_sources", "bool", "ignore [tool.uv.sources]"),
    "--chroma-under-python": ("chroma_compat_under_python", "value", "the environments' interpreter (X.Y)"),
    "--chroma-under-ignore-chromadb-bound": (
        "chroma_compat_under_ignore_chromadb_bound",
        "bool",
        "install each release even where the project's requirements exclude it (rows marked)",
    ),
    "--chroma-under-server": (
        "chroma_compat_under_server",
        "value",
        "plain or token: each release's own server runs beside the session (CHROMA_HOST, CHROMA_PORT, CHROMA_URL)",
    ),
}
_VALUED = (FLAG, EXTRAS, *(f for f, (_, kind, _h) in UNDER_OPTIONS.items() if kind != "bool"))
_BOOLS = tuple(f for f, (_, kind, _h) in UNDER_OPTIONS.items() if kind == "bool")


def add_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    parser.addini(
        "chroma_compat_under_extras", "with --chroma-under: the project's extras (comma-separated)", default=None
    )
    for flag, (dest, kind, help_text) in UNDER_OPTIONS.items():
        text = f"with --chroma-under: {help_text}"
        if kind == "bool":
            group.addoption(flag, dest=dest, action="store_true", default=None, help=text)
            parser.addini(dest, text, type="bool", default=False)
        elif kind == "list":
            group.addoption(flag, dest=dest, action="append", default=None, help=text)
            parser.addini(dest, text, type="linelist", default=[])
        else:
            group.addoption(flag, dest=dest, default=None, help=text)
            parser.addini(dest, text, default=None)


def _value(config: pytest.Config, dest: str) -> object:
    """The command line first, then the ini twin."""
    value = config.getoption(dest, default=None)
    return value if value not in (None, "", []) else (config.getini(dest) or None)


def options_from(config: pytest.Config) -> tuple[object, str | None]:
    """(project_options.ProjectOptions, server mode) from the flags and their ini twins."""
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.engine.project_options import ProjectOptions

    server = _value(config, "chroma_compat_under_server")
    if server not in (None, "plain", "token"):
        raise CompatError(f"--chroma-under-server={server!r}: one of plain, token")
    extras = str(_value(config, "chroma_compat_under_extras") or "")
    return ProjectOptions.make(
        extras=[e for e in extras.split(",") if e.strip()],
        groups=list(_value(config, "chroma_compat_under_group") or []),
        with_=list(_value(config, "chroma_compat_under_with") or []),
        no_sources=bool(_value(config, "chroma_compat_under_no_sources")),
        python=_value(config, "chroma_compat_under_python"),  # type: ignore[arg-type]
        ignore_bound=bool(_value(config, "chroma_compat_under_ignore_chromadb_bound")),
    ), server  # type: ignore


def strip_flags(args: list[str]) -> list[str]:
    """The invocation's arguments without ours (``--flag value`` and ``--flag=value``)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _VALUED:
            skip = True
            continue
        if arg in _BOOLS or arg.startswith(tuple(f + "=" for f in _VALUED)):
            continue
        out.append(arg)
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    raw = config.getoption("chroma_compat_under", default=None)
    if not raw or os.environ.get("CHROMA_COMPAT_UNDER"):
        return None
    if config.getoption("help", default=False) or config.getoption("version", default=False):
        return None  # `pytest --chroma-under X --help` asks for the help, not for the runs
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.engine import project_envs, releases
    from pytest_chroma_compat.usercode import runs
    from pytest_chroma_compat.usercode.cli import line

    write = lambda text: print(text, flush=True)  # noqa: E731
    from pytest_chroma_compat.engine import project_options
    from pytest_chroma_compat.usercode import run_history

    try:
        versions = list(dict.fromkeys(releases.resolve(v) for v in raw.split(",") if v.strip()))
        cwd = Path(config.invocation_params.dir)
        project = project_envs.find_project(cwd)
        options, server = options_from(config)
        project_options.check(project, options)  # type: ignore[arg-type]
        project_options.check_python(project, options)  # type: ignore[arg-type]
    except CompatError as exc:
        write(f"chroma-compat: error: {exc}")
        return pytest.ExitCode.USAGE_ERROR
    command = ["python", "-m", "pytest", *strip_flags(list(config.invocation_params.args))]
    write(f"chroma-compat: running this session under {', '.join(f'chromadb {v}' for v in versions)}")
    logs = run_history.start(project, command, "chroma-under", versions=versions, options=options.flags())  # type: ignore[attr-defined]
    results = []
    for version in versions:
        result = runs.run_one(
            version,
            command,
            project=project,
            cwd=cwd,
            options=options,  # type: ignore
            server=server,
            logs=logs,
            note=lambda s: print(s, file=sys.stderr, flush=True),
        )
        write(line(result))
        results.append(result)
    run_history.finish(logs, results)
    failures = [f"{node}@chromadb-{r.version}" for r in results for node in r.failures]
    for node in failures:
        write(f"FAILED {node}")
    for r in results:
        if r.status == "error" or (r.status == "failed" and not r.failures):
            write(f"ERROR chromadb {r.version}: {r.reason}")
    bad = [r.version for r in results if not r.ok]
    write(
        f"chroma-compat: {len(results) - len(bad)} of {len(results)} release(s) passed"
        + (f"; not passing: {', '.join(bad)}" if bad else "")
        + f" (logs: {logs})"
    )
    return pytest.ExitCode.TESTS_FAILED if bad else pytest.ExitCode.OK
