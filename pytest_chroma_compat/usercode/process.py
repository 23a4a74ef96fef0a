"""The user's command as a process that lives and dies with the run (``run``, ``bisect``, ``--chroma-under``).

Why it is built this way:
- The command starts under the parent-death reaper of ``interrupts`` (the one
  the servers and installers run under) in a process group of its own,
  registered with ``interrupts``: a signal to chroma-compat kills the group
  before the CLI unwinds, and SIGKILL of chroma-compat makes the kernel signal
  the reaper, which kills the group. The reaper needs an absolute program, so
  the command's first word is resolved on the run's own PATH first (a bare
  ``pytest`` used to run without the reaper and outlived a ``kill -9``).
- Its output goes to a file, never to a pipe: a pipe stays open as long as any
  process the command started holds it, so a command that left a child behind
  made the run wait for that child. The process we wait for is the command.
- When the command ends (or its time is up) its whole group is stopped: a
  SIGTERM so pytest can still say what it was doing, then SIGKILL, until no
  process of the group is left (``servers.group_members``). Nothing the command
  started outlives its run, short of a process that leaves the group on purpose
  (``setsid``, a daemon's double fork): only a cgroup would hold those.
- A timeout is an outcome of the run, not an exception: the caller reports it
  for that release.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_chroma_compat.common import interrupts
from pytest_chroma_compat.servers.launcher import group_members

STOP_GRACE = 5.0  # seconds between the SIGTERM and the SIGKILL of a timed-out command's group
TAIL_BYTES = 64 * 1024


@dataclass
class Finished:
    returncode: int | None  # None when it timed out
    timed_out: bool
    left_behind: int  # processes of its group still running when the command itself ended (killed)


def resolve(argv: list[str], path: str, cwd: Path) -> list[str] | None:
    """``argv`` with its program made absolute (looked up on ``path``, or relative to ``cwd``), or
    None when there is no such program."""
    program = argv[0]
    if os.sep in program:
        candidate = Path(program) if os.path.isabs(program) else cwd / program
        return [str(candidate), *argv[1:]] if os.access(candidate, os.X_OK) and candidate.is_file() else None
    found = shutil.which(program, path=path)
    return [os.path.abspath(found), *argv[1:]] if found else None


def run(argv: list[str], *, env: dict[str, str], cwd: Path, output: Path, timeout: float | None) -> Finished:
    """Run ``argv`` (absolute program) with stdout and stderr into ``output``; wait for it alone."""
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            interrupts.with_parent_death_signal(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    interrupts.track(proc)
    timed_out = False
    left = 0
    try:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        else:
            left = len(group_members(proc.pid))
    finally:
        stop_group(proc)  # on the way out of an interruption too: nothing of the command outlives the run
        interrupts.untrack(proc)
    return Finished(None if timed_out else proc.returncode, timed_out, left)


def stop_group(proc: subprocess.Popen, grace: float = STOP_GRACE) -> None:
    """SIGTERM then SIGKILL to ``proc``'s process group until none of it is left. A group id cannot be
    reused while a member lives, so signalling it after the leader is reaped reaches only its own."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    deadline = time.monotonic() + max(grace, 1.0)
    while True:
        if proc.returncode is None or group_members(proc.pid):  # never a group id that may be free again
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        if not group_members(proc.pid) or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def tail(output: Path, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of the output file as text (a command may print gigabytes)."""
    try:
        with open(output, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
