"""Issue 24, "the user's command lives and dies with the run": real commands, real grandchildren, real
signals and a real ``kill -9`` of chroma-compat; the project environment checked before every run;
nothing written into the user's project.

One tiny project (no test suite: the commands are ``python -c``) under chromadb 1.5.9, in a private
CHROMA_COMPAT_HOME removed with the module, so nothing piles up in the user's cache.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_chroma_compat.engine import project_envs

VERSION = "1.5.9"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proc-control") / "proc-demo"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        textwrap.dedent("""
        [project]
        name = "proc-demo"
        version = "0.1"
        [tool.setuptools]
        py-modules = ["procdemo"]
    """)
    )
    (root / "procdemo.py").write_text("ANSWER = 42\n")
    home = root.parent / "compat-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHROMA_COMPAT_HOME", str(home))
        project_envs.ensure(VERSION, root)  # warm before any test times a run
        yield root


def cli(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=timeout,
        env=dict(os.environ),
    )


def start_cli(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=project,
        env=dict(os.environ),
    )


def gone(pid: int) -> bool:
    """No such process, or a zombie (dead, waiting for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def sleeper(pids: Path) -> str:
    """A command that starts a grandchild (a `sleep`), writes both pids, and sleeps itself."""
    return textwrap.dedent(f"""
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "300"])
        open({str(pids)!r} + ".tmp", "w").write(f"{{os.getpid()}} {{child.pid}}")
        os.rename({str(pids)!r} + ".tmp", {str(pids)!r})
        time.sleep(300)
    """)


def test_a_timed_out_command_is_that_release_failing_not_an_internal_error(project, tmp_path):
    pids = tmp_path / "pids"
    started = time.monotonic()
    proc = cli(
        project,
        "run",
        "--versions",
        VERSION,
        "--timeout",
        "3",
        "--json",
        str(tmp_path / "r.json"),
        "--",
        "python",
        "-c",
        sleeper(pids),
    )
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"chromadb {VERSION}    FAILED   timed out after 3 s" in proc.stdout
    assert "internal error" not in proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())["results"][0]
    assert (result["status"], result["timed_out"], result["reason"]) == ("failed", True, "timed out after 3 s")
    assert took < 60, took
    assert all(gone(int(p)) for p in pids.read_text().split())  # the command and its grandchild


def test_a_command_that_leaves_a_child_behind_does_not_hold_the_run(project, tmp_path):
    pid_file = tmp_path / "child"
    script = (
        "import subprocess; c = subprocess.Popen(['sleep', '300']); "
        f"open({str(pid_file)!r}, 'w').write(str(c.pid)); print('done')"
    )
    started = time.monotonic()
    proc = cli(project, "run", "--versions", VERSION, "--", "python", "-c", script, timeout=200)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert took < 60, took  # before: the run waited for the pipe its grandchild held (300 s)
    assert gone(int(pid_file.read_text()))  # and nothing it started outlives the run


DAEMON = """
import os, sys, time
pid = os.fork()
if pid == 0:
    os.setsid()  # leaves the run's process group and session, as a daemon does
    if os.fork():
        os._exit(0)  # the double fork: the daemon's parent is gone at once
    open(sys.argv[1], "w").write(str(os.getpid()))
    time.sleep(300)
    os._exit(0)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.parametrize("linger, timeout", [(0, None), (120, "3")], ids=["command-ends", "command-times-out"])
def test_a_daemon_that_leaves_the_process_group_does_not_outlive_the_run(project, tmp_path, linger, timeout):
    """setsid and a double fork leave the group the run kills; the reaper adopts the daemon instead."""
    pid_file = tmp_path / "daemon"
    extra = ["--timeout", timeout] if timeout else []
    proc = cli(
        project,
        "run",
        "--versions",
        VERSION,
        *extra,
        "--",
        "python",
        "-c",
        DAEMON,
        str(pid_file),
        str(linger),
        timeout=200,
    )
    assert proc.returncode == (1 if timeout else 0), proc.stdout + proc.stderr
    daemon = int(pid_file.read_text())
    try:
        assert wait_until(lambda: gone(daemon), 20), f"the daemon {daemon} outlived the run"
    finally:
        if not gone(daemon):
            os.kill(daemon, signal.SIGKILL)


def start_surface(project: Path, surface: str, pids: Path) -> subprocess.Popen:
    """The hanging command through ``run``, ``bisect`` (its first endpoint hangs) or ``pytest --chroma-under``
    (the inner pytest's test hangs)."""
    if surface == "chroma-under":
        test = project / "tests" / f"test_hang_{pids.parent.name[-12:].replace('-', '_')}.py"
        test.parent.mkdir(exist_ok=True)
        body = textwrap.indent(sleeper(pids), "    ")
        test.write_text(f"def test_hangs():\n{body}\n")
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--chroma-under",
                VERSION,
                str(test.relative_to(project)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=project,
            env=dict(os.environ),
        )
    if surface == "bisect":
        return start_cli(
            project,
            "bisect",
            "--good",
            "1.0.21",
            "--bad",
            VERSION,
            "--versions",
            "1.0.21",
            "--",
            "python",
            "-c",
            sleeper(pids),
        )
    return start_cli(project, "run", "--versions", VERSION, "--", "python", "-c", sleeper(pids))


@pytest.mark.parametrize(
    "surface, how", [("run", "SIGKILL"), ("run", "SIGTERM"), ("bisect", "SIGKILL"), ("chroma-under", "SIGKILL")]
)
def test_the_users_command_dies_with_chroma_compat(project, tmp_path, surface, how):
    """kill -9 of chroma-compat (the kernel tells the reaper) and SIGTERM (the handler kills the group)."""
    pids = tmp_path / "pids"
    proc = start_surface(project, surface, pids)
    try:
        assert wait_until(pids.exists, 180), "the command never started"
        command, grandchild = (int(p) for p in pids.read_text().split())
        proc.send_signal(getattr(signal, how))
        proc.wait(timeout=60)
        assert wait_until(lambda: gone(command) and gone(grandchild), 20), (
            f"after {how} of {surface}: command {command} gone={gone(command)}, "
            f"grandchild {grandchild} gone={gone(grandchild)}"
        )
        if how == "SIGTERM":
            assert proc.returncode == 143, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        if pids.exists():
            for pid in pids.read_text().split():
                if not gone(int(pid)):
                    os.kill(int(pid), signal.SIGKILL)


def test_a_command_that_writes_into_its_environment_does_not_change_the_next_run(project, tmp_path):
    poison = (
        "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'zz_poison.pth').write_text("
        "\"import os; os.environ['CHROMA_COMPAT_POISONED'] = '1'\\n\")"
    )
    check = "import os, sys; sys.exit(3 if os.environ.get('CHROMA_COMPAT_POISONED') else 0)"
    assert cli(project, "run", "--versions", VERSION, "--", "python", "-c", poison).returncode == 0
    after = cli(project, "run", "--versions", VERSION, "--", "python", "-c", check)
    assert after.returncode == 0, after.stdout + after.stderr  # before: the .pth ran in every later run
    assert "changed since it was built (1 added, e.g. lib/python" in after.stderr
    assert "zz_poison.pth); rebuilding it" in after.stderr


def test_a_run_writes_nothing_into_the_project(tmp_path):
    """A fresh project (its first build is the one that used to leave ``proc_demo2.egg-info/``)."""
    root = tmp_path / "proc-demo-two"
    (root / "src" / "procdemo2").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "proc-demo-two"\nversion = "0.1"\n')
    (root / "src" / "procdemo2" / "__init__.py").write_text("ANSWER = 42\n")
    (root / "flat.py").write_text("X = 1\n")
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    env = {**os.environ, "CHROMA_COMPAT_HOME": str(tmp_path / "compat-home")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chroma_compat",
            "run",
            "--versions",
            VERSION,
            "--",
            "python",
            "-c",
            "import procdemo2; assert procdemo2.ANSWER == 42",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # installed editable, importable
    after = sorted(str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts)
    assert after == before
