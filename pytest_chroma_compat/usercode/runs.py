"""The user's own command, once per release, in that release's project environment.

What a run is: ``command`` started in the user's directory with the project
environment's ``bin`` first on PATH, so ``pytest``, ``python`` and anything the
project installs are that environment's, under the same hermetic environment the
workers get (own HOME and cwd-independent caches, telemetry off, no credentials
unless ``pass_env`` names them). A pytest command also writes a JUnit file the
harness reads for counts and failing node ids, and runs without its cache
provider (parallel releases would share the project's .pytest_cache).

What a result says: ``passed`` (exit 0), ``failed`` (pytest's exit 1, any
non-zero exit of another command, or ``--timeout`` reached: "timed out after N
s"), ``error`` (pytest's 2-5: could not collect or interrupted, internal,
usage, nothing collected; or the environment could not be built),
``excluded`` (the project's own requirements rule the release out). Only
``failed`` and ``error`` fail a run; ``bisect`` skips ``error`` and ``excluded``
(a collection error counts as a failure with ``--count-errors``).

The command lives and dies with its run (usercode/process.py: its own process
group under the parent-death reaper, output to a file, the group stopped when
it ends, times out, or chroma-compat is signalled or killed), and its project
environment is checked against what was installed before every run
(engine/project_envs.py).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.engine import cache_dirs, envs, leftovers, project_envs, project_options
from pytest_chroma_compat.usercode import process

PYTEST_ERRORS = {
    2: "could not collect (or interrupted)",
    3: "pytest internal error",
    4: "pytest usage error",
    5: "no tests collected",
}
OUTPUT_TAIL = 30


@dataclass
class RunResult:
    version: str
    status: str  # passed | failed | error | excluded
    exit_code: int | None = None
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    reason: str = ""
    log: str = ""
    timed_out: bool = False  # a failure of this release: "timed out after N s"
    cannot_collect: bool = False  # pytest could not collect (an import failed): bisect counts it on --count-errors
    bound_ignored: str = ""  # the project's requirements exclude this release; run anyway (--ignore-chromadb-bound)
    server: str = ""  # the release's own server the command was given (--server): its URL

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "excluded")

    def as_dict(self) -> dict:
        return asdict(self)


def is_pytest(command: list[str]) -> bool:
    name = Path(command[0]).name if command else ""
    return name in ("pytest", "py.test") or (name.startswith("python") and command[1:3] == ["-m", "pytest"])


def node_ids(junit: Path, root: Path | list[Path]) -> tuple[dict[str, int], list[str]]:
    """(counts, failing node ids) from a pytest JUnit file; a classname ``tests.test_x.TestY`` and name
    ``test_z[a]`` become ``tests/test_x.py::TestY::test_z[a]`` when that file exists under ``root``."""
    tree = ET.parse(junit)
    suites = [tree.getroot()] if tree.getroot().tag == "testsuite" else list(tree.getroot())
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failing: list[str] = []
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0) or 0)
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failing.append(_node_id(case.get("classname", ""), case.get("name", ""), root))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts, failing


def _node_id(classname: str, name: str, root: Path | list[Path]) -> str:
    """A runnable node id. A collection error has no classname and the module as a dotted name
    (``tests.test_x``): that becomes ``tests/test_x.py`` (``tests/pkg/__init__.py`` for a package)."""
    roots = list(root) if isinstance(root, (list, tuple)) else [root]  # pytest names from its rootdir

    def here(path: Path) -> str | None:  # the file, relative to the first root (the command's cwd)
        for base in roots:
            if (base / path).is_file():
                return Path(os.path.relpath(base / path, roots[0])).as_posix()
        return None

    if not classname and "." in name and "::" not in name and "[" not in name and "/" not in name:
        parts = name.split(".")
        for candidate in (Path(*parts).with_suffix(".py"), Path(*parts) / "__init__.py"):
            found = here(candidate)
            if found:
                return found
    parts = classname.split(".") if classname else []
    for cut in range(len(parts), 0, -1):
        found = here(Path(*parts[:cut]).with_suffix(".py"))
        if found:
            return "::".join([found, *parts[cut:], name])
    return "::".join([*parts, name]) if parts else name


def environment(project_env: project_envs.ProjectEnv, scratch: Path, pass_env: list[str]) -> dict[str, str]:
    env = envs.hermetic_environ(scratch)
    env["PATH"] = f"{project_env.bin}{os.pathsep}{os.environ.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(project_env.path)
    for name in pass_env:  # the user's explicit choice, secrets included
        if name in os.environ:
            env[name] = os.environ[name]
    env["CHROMA_COMPAT_UNDER"] = project_env.version  # what a nested plugin sees: run the tests, do not fan out
    # a TMPDIR of its own, removed with the run: pytest's tmp_path stores land there, not in /tmp, and
    # releases run side by side (-j) never share a pytest-of-<user> directory
    tmp = scratch / "tmp"
    tmp.mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp)
    return env


def run_one(
    version: str,
    command: list[str],
    *,
    project: Path,
    cwd: Path,
    extras: list[str] | None = None,
    pass_env: list[str] | None = None,
    timeout: float | None = None,
    logs: Path | None = None,
    note: Callable[[str], None] = lambda s: None,
    options: project_options.ProjectOptions | None = None,
    server: str | None = None,
    server_port: int | None = None,
) -> RunResult:
    """``command`` under ``version``; never raises for what the release or the command does.

    ``server`` (None, "plain" or "token"): the release's own server runs for the duration of the
    command and its address is in the command's environment (usercode/run_server.py). ``options``: groups,
    ``--with``, ``--no-sources``, ``--python``, ``--ignore-chromadb-bound`` (engine/project_options.py); a
    release run although the project excludes it carries ``bound_ignored``."""
    started = time.monotonic()
    additions = ["pytest"] if is_pytest(command) else []
    try:
        penv = project_envs.ensure(version, project, extras=extras, additions=additions, note=note, options=options)
    except project_envs.ProjectExcludesRelease as exc:
        return RunResult(version, "excluded", reason=str(exc))
    except CompatError as exc:
        return RunResult(version, "error", reason=f"environment: {exc}", seconds=time.monotonic() - started)
    scratch = Path(tempfile.mkdtemp(prefix=f"{leftovers.prefix('run')}{version}-", dir=cache_dirs.scratch_dir()))
    stack = contextlib.ExitStack()
    try:
        server_env: dict[str, str] = {}
        if server:
            from pytest_chroma_compat.usercode import run_server

            try:
                server_env = stack.enter_context(run_server.serving(version, server, server_port))
            except CompatError as exc:
                return RunResult(
                    version,
                    "error",
                    reason=f"server: {exc}",
                    seconds=time.monotonic() - started,
                    bound_ignored=penv.bound_ignored,
                )
        argv = list(command)
        junit = scratch / "junit.xml"
        if is_pytest(command):
            argv += [f"--junitxml={junit}", "-p", "no:cacheprovider"]
        env = {**environment(penv, scratch, pass_env or []), **server_env}
        program = process.resolve(argv, env["PATH"], cwd)
        if program is None:
            return RunResult(
                version,
                "error",
                reason=f"command not found: {command[0]} (in the project environment or on PATH)",
                seconds=time.monotonic() - started,
            )
        out_file = scratch / "output.log"
        try:
            done = process.run(program, env=env, cwd=cwd, output=out_file, timeout=timeout)
        except OSError as exc:  # could not be started (the reaper is our own Python; this is off Linux)
            return RunResult(
                version,
                "error",
                reason=f"could not start {command[0]}: {exc.strerror or exc}",
                seconds=time.monotonic() - started,
            )
        seconds = time.monotonic() - started
        output = process.tail(out_file)
        log = ""
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            log_path = logs / f"chromadb-{version}.log"
            with open(log_path, "wb") as fh:
                fh.write(f"$ {shlex.join(argv)}\n".encode())
                with open(out_file, "rb") as src:
                    shutil.copyfileobj(src, fh)
                if done.left_behind:
                    fh.write(
                        f"\nchroma-compat: the command left {done.left_behind} process(es) running; "
                        "killed them\n".encode()
                    )
            log = str(log_path)
        if done.timed_out:
            return RunResult(
                version,
                "failed",
                None,
                seconds,
                reason=f"timed out after {timeout:g} s",
                log=log,
                timed_out=True,
                bound_ignored=penv.bound_ignored,
                server=server_env.get("CHROMA_URL", ""),
            )
        result = RunResult(
            version,
            "passed" if done.returncode == 0 else "failed",
            done.returncode,
            seconds,
            log=log,
            bound_ignored=penv.bound_ignored,
            server=server_env.get("CHROMA_URL", ""),
        )
        if is_pytest(command):
            if junit.is_file():
                try:
                    roots = [cwd, *[p for p in cwd.resolve().parents if project.resolve() in (p, *p.parents)]]
                    result.counts, result.failures = node_ids(junit, roots)
                except ET.ParseError:
                    pass
            if done.returncode in PYTEST_ERRORS:
                result.status, result.reason = "error", PYTEST_ERRORS[done.returncode]
                result.cannot_collect = done.returncode == 2
        if result.status != "passed" and not result.reason:
            result.reason = _tail(output)
        elif result.status == "error":
            result.reason += f": {_tail(output)}"
        return result
    finally:
        stack.close()  # the server (if any) stops with the run
        shutil.rmtree(scratch, ignore_errors=True)


def _tail(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def run_many(
    versions: list[str],
    command: list[str],
    *,
    jobs: int = 1,
    on_result: Callable[[RunResult], None] | None = None,
    **kwargs: object,
) -> list[RunResult]:
    """Each release in turn (or ``jobs`` at a time), results in the order of ``versions``."""

    def one(version: str) -> RunResult:
        result = run_one(version, command, **kwargs)  # type: ignore[arg-type]
        if on_result:
            on_result(result)
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        return list(pool.map(one, versions))
    finally:  # interrupted: releases not started yet are not started at all
        pool.shutdown(wait=True, cancel_futures=True)
