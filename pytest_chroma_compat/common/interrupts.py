"""Interruptions: SIGINT, SIGTERM and SIGHUP unwind like Ctrl-C, and take every child process along.

Why it is built this way:
- CI cancellation and ``timeout`` send SIGTERM, whose default action ends the
  process on the spot: no ``finally:`` runs, private copies of the user's store
  stay in the scratch space, workers keep running. The handler turns the signal
  into :class:`Interrupted`, a ``KeyboardInterrupt``, so every clean-up path
  written for Ctrl-C runs for SIGTERM too.
- Workers, servers and installers run in process groups of their own (Ctrl-C on
  the host must not hit a release mid-write), so nothing kills them when the CLI
  dies. Each is registered here while it runs; the handler kills the process
  groups of all of them *before* it raises, which also unblocks threads that
  wait on them (a worker starting in a pool thread sees its pipe close). A
  process registered after that is killed on the spot.
- SIGKILL cannot be caught. Workers watch their parent themselves (a thread in
  engine/worker/main.py): PR_SET_PDEATHSIG would fire when the *thread* that started
  them exits, and workers are started from short-lived pool threads. Installers
  and servers are waited for by the thread that starts them, so for them the
  kernel does it: they run under a small reaper process that asks for
  PR_SET_PDEATHSIG (Linux only) and then kills its whole process group, the
  installer's own children (uv's interpreter queries, build backends) included.
  A reaper rather than ``preexec_fn``, which is unsafe once threads exist.
- Only the first signal raises; later ones (an impatient second Ctrl-C) only
  kill the children again, so the clean-up already under way is not cut short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

# The reaper, run by the host's Python: argv = expected-parent-pid program args... It asks the kernel
# for SIGUSR2 when the thread that started it exits (PR_SET_PDEATHSIG = 1), starts the program in its
# own process group, forwards SIGTERM/SIGINT/SIGHUP to it, and exits the way it exited. On SIGUSR2 (or
# a parent already gone) it SIGKILLs the whole group, itself included: uv's own children go too.
# It is also a child subreaper (PR_SET_CHILD_SUBREAPER = 36): a descendant that leaves the group
# (setsid, a daemon's double fork) is re-parented to the reaper, not to init, when its parent dies,
# and is killed when the program ends or the reaper's parent dies, so nothing outlives the run.
_REAPER = """
import os, signal, sys, time
def adopted():
    me = str(os.getpid()).encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/" + name + "/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[-1].split()
            except OSError:
                continue
            if len(fields) > 1 and fields[1] == me:
                found.append(int(name))
    return found
def kill_adopted():
    for _ in range(200):
        kids = adopted()
        if not kids:
            return
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.01)
def gone(*_):
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    me = os.getpid()
    try:
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != me:
                try:
                    if os.getpgid(int(name)) == me:
                        os.kill(int(name), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        kill_adopted()
    finally:
        os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGUSR2, gone)
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, int(signal.SIGUSR2), 0, 0, 0)
    libc.prctl(36, 1, 0, 0, 0)
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    gone()
pid = os.fork()
if pid == 0:
    try:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
def forward(signum, _frame):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # the child is already gone and reaped: nothing to forward to
        pass
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, forward)
status = os.waitpid(pid, 0)[1]
code = os.waitstatus_to_exitcode(status)
kill_adopted()
if code < 0:
    try:
        signal.signal(-code, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL/SIGSTOP have no handler to reset: it ends us all the same
        pass
    os.kill(os.getpid(), -code)
os._exit(code & 255)
"""


class Interrupted(KeyboardInterrupt):
    """A signal that asks us to stop; a KeyboardInterrupt, so Ctrl-C clean-up paths run for it."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(self.name)

    @property
    def name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process the signal ended."""
        return 128 + self.signum


_lock = threading.RLock()  # re-entrant: the handler may run while the main thread holds it
_tracked: dict[int, subprocess.Popen] = {}
# "interrupted" stays True once a signal arrived, after the handlers are gone too: what runs at exit
# (a pool thread reading its next page) must not start processes for a command that was stopped
_state: dict = {"stopping": False, "raise": False, "signum": None, "interrupted": False}


def track(proc: subprocess.Popen) -> None:
    """Register a child started in a process group of its own (``start_new_session=True``)."""
    with _lock:
        _tracked[proc.pid] = proc
        stopping = _state["stopping"] or _state["interrupted"]
    if stopping:  # started while we unwind (a pool thread racing the signal): it must not outlive us
        kill_group(proc)


def untrack(proc: subprocess.Popen) -> None:
    with _lock:
        _tracked.pop(proc.pid, None)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group; never a pid already reaped (it may belong to someone else now)."""
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except OSError:
            pass


def kill_all() -> None:
    """Kill the process group of every registered child."""
    with _lock:
        procs = list(_tracked.values())
    for proc in procs:
        kill_group(proc)


def live() -> list[int]:
    """Pids of registered children not yet reaped."""
    with _lock:
        return [pid for pid, proc in _tracked.items() if proc.returncode is None]


def stopping() -> bool:
    """True once a signal arrived: long loops that cannot take an exception (an SQLite progress
    handler) poll this, stop, and then call :func:`raise_if_stopping`."""
    return bool(_state["stopping"])


def raise_if_stopping() -> None:
    if _state["stopping"] and _state["raise"]:
        raise Interrupted(int(_state.get("signum") or signal.SIGINT))


def interrupted() -> bool:
    """True for the rest of the process once a signal stopped a command (never reset)."""
    return bool(_state["interrupted"])


def _on_signal(signum: int, frame: object) -> None:
    first = not _state["stopping"]
    _state["stopping"] = True
    _state["interrupted"] = True
    _state["signum"] = signum
    kill_all()
    if first and _state["raise"]:
        raise Interrupted(signum)


def exit_on_signal(code: int) -> None:
    """For a process whose command is over (main thread only): a signal from now on exits at once with
    ``code``, the outcome already told, after flushing what was written (stdout may hold the report)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def done(signum: int, frame: object) -> None:
        kill_all()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe: nothing more to tell
                pass
        os._exit(code)

    for s in SIGNALS:
        signal.signal(s, done)


def hold() -> None:
    """From now on a signal only kills children: the outcome is being reported, let it finish."""
    _state["raise"] = False


@contextmanager
def handling() -> Iterator[None]:
    """Install the handlers for the duration of a command (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _state.update(stopping=False, **{"raise": True})
    for s in SIGNALS:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        _state.update(stopping=False, **{"raise": False})


def with_parent_death_signal(cmd: Sequence[str]) -> list[str]:
    """``cmd`` under the reaper: when the thread that starts it exits (this process SIGKILLed, say),
    the kernel signals the reaper, which kills ``cmd`` and everything it started (Linux only).

    Only for children the starting thread waits for: PR_SET_PDEATHSIG follows
    the starting *thread*, not the process. Start it with ``start_new_session=True``.
    """
    cmd = [os.fspath(c) for c in cmd]
    if not sys.platform.startswith("linux") or not cmd or not os.path.isabs(cmd[0]):
        return cmd
    return [sys.executable, "-I", "-S", "-c", _REAPER, str(os.getpid()), *cmd]


def run(
    cmd: Sequence[str], *, env: dict | None = None, cwd: str | os.PathLike | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)`` for a child that must not outlive us.

    The child gets a process group of its own (registered, so a signal kills it
    with everything it started) and a parent-death signal (so SIGKILL of this
    process kills it too). Any exception here, an interruption included, kills
    the group before it propagates.
    """
    proc = subprocess.Popen(
        with_parent_death_signal(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    track(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        kill_group(proc)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        raise
    finally:
        untrack(proc)
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)
