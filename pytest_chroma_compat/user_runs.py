"""The user's own command, once per release, in that release's project environment.

What a run is: ``command`` started in the user's directory with the project
environment's ``bin`` first on PATH, so ``pytest``, ``python`` and anything the
project installs are that environment's, under the same hermetic environment the
workers get (own HOME and cwd-independent caches, telemetry off, no credentials
unless ``pass_env`` names them). A pytest command also writes a JUnit file the
harness reads for counts and failing node ids, and runs without its cache
provider (parallel releases would share the project's .pytest_cache).

What a result says: ``passed`` (exit 0), ``failed`` (pytest's exit 1, or any
non-zero exit of another command), ``error`` (pytest's 2-5: interrupted,
internal, usage, nothing collected; or the environment could not be built),
``excluded`` (the project's own requirements rule the release out). Only
``failed`` and ``error`` fail a run; ``bisect`` skips ``error`` and ``excluded``.
"""

from __future__ import annotations

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

from . import envs, interrupts, paths, project_envs
from .errors import CompatError

PYTEST_ERRORS = {2: "interrupted", 3: "pytest internal error", 4: "pytest usage error", 5: "no tests collected"}
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

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "excluded")

    def as_dict(self) -> dict:
        return asdict(self)


def is_pytest(command: list[str]) -> bool:
    name = Path(command[0]).name if command else ""
    return name in ("pytest", "py.test") or (name.startswith("python") and command[1:3] == ["-m", "pytest"])


def node_ids(junit: Path, root: Path) -> tuple[dict[str, int], list[str]]:
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


def _node_id(classname: str, name: str, root: Path) -> str:
    parts = classname.split(".") if classname else []
    for cut in range(len(parts), 0, -1):
        module = Path(*parts[:cut]).with_suffix(".py")
        if (root / module).is_file():
            return "::".join([module.as_posix(), *parts[cut:], name])
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


def run_one(version: str, command: list[str], *, project: Path, cwd: Path, extras: list[str] | None = None,
            pass_env: list[str] | None = None, timeout: float | None = None, logs: Path | None = None,
            note: Callable[[str], None] = lambda s: None) -> RunResult:
    """``command`` under ``version``; never raises for what the release or the command does."""
    started = time.monotonic()
    additions = ["pytest"] if is_pytest(command) else []
    try:
        penv = project_envs.ensure(version, project, extras=extras, additions=additions, note=note)
    except project_envs.ProjectExcludesRelease as exc:
        return RunResult(version, "excluded", reason=str(exc))
    except CompatError as exc:
        return RunResult(version, "error", reason=f"environment: {exc}", seconds=time.monotonic() - started)
    scratch = Path(tempfile.mkdtemp(prefix=f"run-{version}-", dir=paths.scratch_dir()))
    try:
        argv = list(command)
        junit = scratch / "junit.xml"
        if is_pytest(command):
            argv += [f"--junitxml={junit}", "-p", "no:cacheprovider"]
        proc = interrupts.run(argv, env=environment(penv, scratch, pass_env or []), cwd=cwd, timeout=timeout)
        seconds = time.monotonic() - started
        output = (proc.stdout or "") + (proc.stderr or "")
        log = ""
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            log_path = logs / f"chromadb-{version}.log"
            log_path.write_text(f"$ {shlex.join(argv)}\n{output}", "utf-8")
            log = str(log_path)
        result = RunResult(version, "passed" if proc.returncode == 0 else "failed", proc.returncode, seconds, log=log)
        if is_pytest(command):
            if junit.is_file():
                try:
                    result.counts, result.failures = node_ids(junit, cwd)
                except ET.ParseError:
                    pass
            if proc.returncode in PYTEST_ERRORS:
                result.status, result.reason = "error", PYTEST_ERRORS[proc.returncode]
        if result.status != "passed" and not result.reason:
            result.reason = _tail(output)
        elif result.status == "error":
            result.reason += f": {_tail(output)}"
        return result
    except FileNotFoundError:
        return RunResult(version, "error", reason=f"command not found: {command[0]} (in the project environment "
                                                  f"or on PATH)", seconds=time.monotonic() - started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _tail(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def run_many(versions: list[str], command: list[str], *, jobs: int = 1, on_result: Callable[[RunResult], None] | None
             = None, **kwargs: object) -> list[RunResult]:
    """Each release in turn (or ``jobs`` at a time), results in the order of ``versions``."""
    def one(version: str) -> RunResult:
        result = run_one(version, command, **kwargs)  # type: ignore[arg-type]
        if on_result:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, versions))
