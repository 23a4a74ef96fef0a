"""Interruptions leave nothing behind, and killing the CLI kills its whole process tree.

Real commands, real releases, real signals. Processes are found through /proc
(Linux): a worker names its host with ``--host-pid``, an installer names the
private cache home it builds in, so each test finds exactly the processes of
the command it started, not those of other tests running next to it.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures import stores
from pytest_chroma_compat.common import interrupts
from pytest_chroma_compat.engine import envs, leftovers
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot.sources import tree_hash

from .trust import Canary, cli, one_line, readonly_dir

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

NEW = "1.5.9"
SIGNALS = [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]


# -- helpers ------------------------------------------------------------------------------------


def _processes() -> dict[int, tuple[str, list[str]]]:
    """pid -> (state, argv) of every process; zombies count as gone."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0].decode()
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
        except OSError:
            continue
        if state not in ("Z", "X"):
            out[int(name)] = (state, argv)
    return out


def _workers_of(host: int) -> list[int]:
    """Live workers started by the process ``host`` (they carry ``--host-pid HOST``)."""
    found = []
    for pid, (_state, argv) in _processes().items():
        if any(a.endswith("engine/worker/main.py") for a in argv) and "--host-pid" in argv:
            i = argv.index("--host-pid")
            if i + 1 < len(argv) and argv[i + 1] == str(host):
                found.append(pid)
    return found


def _mentioning(text: str) -> list[int]:
    """Live processes (other than us) whose command line mentions ``text``."""
    return [pid for pid, (_s, argv) in _processes().items() if pid != os.getpid() and any(text in a for a in argv)]


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    environ = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


def _finish(proc: subprocess.Popen, timeout: float = 30) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not leftovers.alive(proc.pid)
    return proc.pid


def _validate_args(store: Path, *extra: str) -> list[str]:
    # --batch-size 1: the comparison takes seconds, so the signal lands mid-run
    return ["validate", str(store), "--to", NEW, "--no-contracts", "--batch-size", "1", *extra]


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A real 1.5.9 store, big enough that comparing it page by page takes a few seconds."""
    with Release(NEW) as release:
        return stores.sample(release, tmp_path_factory.mktemp("interrupts") / "store", records=1500)


@pytest.fixture
def home(tmp_path) -> dict:
    """A private cache home and fast scratch (so prune sees only this test's leftovers), whose
    envs/ links to the shared, already built 1.5.9 environment (nothing is rebuilt)."""
    env = envs.ensure(NEW)
    root = tmp_path / "home"
    (root / "envs").mkdir(parents=True)
    (root / "envs" / env.path.name).symlink_to(env.path)
    fast = tmp_path / "fast"
    fast.mkdir()
    return {"CHROMA_COMPAT_HOME": str(root), "CHROMA_COMPAT_SCRATCH": str(fast)}


# -- (a, b) a signal mid-validate ----------------------------------------------------------------


@pytest.mark.parametrize("signum,code", SIGNALS, ids=[s.name for s, _ in SIGNALS])
def test_signal_mid_validate_cleans_up_and_stops_workers(signum, code, store, tmp_path, canary: Canary):
    before = tree_hash(store)
    work = tmp_path / "W"
    proc = _start(*_validate_args(store, "--workdir", str(work)))
    try:
        workers = _wait_for(lambda: len(_workers_of(proc.pid)) == 2 and _workers_of(proc.pid), 60, "two workers")
        _wait_for(lambda: list(work.glob(f"validate-{proc.pid}-*/target-store")), 30, "the private copies")
        time.sleep(0.3)
        assert proc.poll() is None, "the run ended before the signal: the test proves nothing"
        proc.send_signal(signum)
        done = _finish(proc)
    finally:
        proc.kill()
    one_line(done, code, f"interrupted ({signum.name})")
    assert done.stdout == ""
    assert os.listdir(work) == [], "private copies left behind"
    assert not [w for w in workers if w in _processes()], "a worker outlived the command"
    assert _workers_of(proc.pid) == []
    assert tree_hash(store) == before
    canary.assert_untouched()


def test_two_signals_do_not_cut_the_clean_up_short(store, tmp_path):
    work = tmp_path / "W"
    proc = _start(*_validate_args(store, "--workdir", str(work)))
    try:
        _wait_for(lambda: len(_workers_of(proc.pid)) == 2, 60, "two workers")
        _wait_for(lambda: list(work.glob(f"validate-{proc.pid}-*/target-store")), 30, "the private copies")
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # an impatient operator: the second one must not abort the clean-up
        done = _finish(proc)
    finally:
        proc.kill()
    one_line(done, 130, "interrupted (SIGINT)")
    assert os.listdir(work) == []
    assert _workers_of(proc.pid) == []


# -- (c) SIGKILL: nothing of ours runs, the workers notice, prune removes the leftovers ------------


def test_sigkill_of_validate_workers_exit_and_prune_removes_exactly_the_leftovers(store, home, tmp_path):
    before = tree_hash(store)
    proc = _start(*_validate_args(store), env=home)
    validate_root = Path(home["CHROMA_COMPAT_HOME"]) / "scratch" / "validate"
    try:
        workers = _wait_for(lambda: len(_workers_of(proc.pid)) == 2 and _workers_of(proc.pid), 60, "two workers")
        _wait_for(lambda: list(validate_root.glob(f"validate-{proc.pid}-*/target-store")), 30, "the copies")
        assert proc.poll() is None
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    _wait_for(lambda: not [w for w in workers if w in _processes()], 10, "the orphaned workers to exit")
    scratch = Path(home["CHROMA_COMPAT_HOME"]) / "scratch"
    left = sorted(
        str(p) for root in (scratch, validate_root) for p in root.iterdir() if leftovers.owner(p.name) == proc.pid
    )
    copies = [p for p in left if Path(p).name.startswith(f"validate-{proc.pid}-")]
    assert len(copies) == 1 and len(left) == 3, left  # the copies and the two workers' HOMEs
    done = cli("env", "prune", env=home, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (
        sorted(line.removeprefix("removed ") for line in done.stdout.splitlines() if line.startswith("removed "))
        == left
    )
    assert done.stdout.splitlines()[-1].startswith("freed "), done.stdout
    assert not any(os.path.lexists(p) for p in left)
    again = cli("env", "prune", env=home, timeout=120)
    assert (again.returncode, again.stdout, again.stderr) == (0, "nothing to prune\n", "")
    assert tree_hash(store) == before


def _busy_sleeping(pid: int) -> bool:
    """True once the worker's main thread sleeps inside a call (x86_64: clock_nanosleep is 230)."""
    try:
        with open(f"/proc/{pid}/syscall") as fh:
            return fh.read().split()[0] == "230"
    except (OSError, IndexError):
        return False


def test_sigkill_of_the_host_mid_call_the_worker_exits_by_itself():
    """The worker is inside a minute-long call, so it reads no EOF: only its watchdog can notice."""
    code = (
        f"from pytest_chroma_compat.engine.client import Release; r = Release({NEW!r}); w = r.worker; "
        "print('ready', flush=True); w.call('debug', action='sleep', seconds=60, timeout=120)"
    )
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "ready"
        worker = _wait_for(lambda: _workers_of(host.pid), 30, "the worker")[0]
        if os.uname().machine == "x86_64":
            _wait_for(lambda: _busy_sleeping(worker), 10, "the worker to be inside the call")
        else:
            time.sleep(1)
        host.kill()
        host.wait()
        started = time.monotonic()
        _wait_for(lambda: worker not in _processes(), 10, "the orphaned worker to exit")
        assert time.monotonic() - started < 5
    finally:
        host.kill()


def test_signal_mid_call_kills_the_busy_worker_at_once():
    """A worker inside a minute-long call would hold up a polite shutdown (30 s); the handler kills it first."""
    code = (
        f"from pytest_chroma_compat.common import interrupts\n"
        f"from pytest_chroma_compat.engine.client import Release\n"
        f"with interrupts.handling():\n"
        f"    try:\n"
        f"        with Release({NEW!r}) as r:\n"
        f"            r.worker; print('ready', flush=True)\n"
        f"            r.call('debug', action='sleep', seconds=60)\n"
        f"    except interrupts.Interrupted as exc:\n"
        f"        print('interrupted', exc.exit_code, interrupts.live(), flush=True)\n"
    )
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "ready"
        worker = _wait_for(lambda: _workers_of(host.pid), 30, "the worker")[0]
        if os.uname().machine == "x86_64":
            _wait_for(lambda: _busy_sleeping(worker), 10, "the worker to be inside the call")
        started = time.monotonic()
        host.send_signal(signal.SIGTERM)
        out, err = host.communicate(timeout=60)
        assert time.monotonic() - started < 5, "the clean-up waited for the busy worker"
    finally:
        host.kill()
    assert (out, err, host.returncode) == ("interrupted 143 []\n", "", 0)
    assert worker not in _processes()


def test_next_validate_run_removes_copies_of_dead_runs_only(home, tmp_path):
    dead, live = _dead_pid(), os.getpid()
    scratch = Path(home["CHROMA_COMPAT_HOME"]) / "scratch"
    root = scratch / "validate"
    gone = [root / f"validate-{dead}-abc_123", scratch / f"{NEW}-{dead}-0123abcd"]
    kept = [
        root / f"validate-{live}-xyz",
        root / "validate-kept-12345678",
        root / "validate-abcd1234",
        scratch / f"{NEW}-{live}-0123abcd",
        scratch / f"server-{NEW}-1-0123abcd",
    ]
    for path in gone + kept:
        (path / "store").mkdir(parents=True)
        (path / "store" / "chroma.sqlite3").write_bytes(b"x" * 1024)
    done = cli("validate", str(tmp_path / "no-such-store"), "--to", NEW, env=home, timeout=120)
    assert done.returncode == 2, done.stderr
    assert not any(p.exists() for p in gone)
    assert all((p / "store" / "chroma.sqlite3").exists() for p in kept)


# -- (d) env prune reports only what it removed, and never follows a link -----------------------


def _populate(kind: str, home: dict, tmp_path: Path, canary: Canary) -> tuple[list[Path], list[Path]]:
    """Lay out one hostile or stale scratch entry; (expected removed, expected kept)."""
    dead = _dead_pid()
    scratch = Path(home["CHROMA_COMPAT_HOME"]) / "scratch"
    validate_root = scratch / "validate"
    validate_root.mkdir(parents=True, exist_ok=True)
    if kind == "plain file named like a dead worker's scratch":
        path = scratch / f"{NEW}-{dead}-0123abcd"
        path.write_text("not a directory")
        return [path], []
    if kind == "symlink named like a dead run's copy, pointing at the user's data":
        path = validate_root / f"validate-{dead}-abcdefgh"
        path.symlink_to(canary.root, target_is_directory=True)
        return [path], []
    if kind == "dead run's copy in scratch/validate":
        path = validate_root / f"validate-{dead}-abcdefgh"
        (path / "source").mkdir(parents=True)
        (path / "source" / "chroma.sqlite3").write_bytes(b"x" * 4096)
        return [path], []
    if kind == "dead round trip's store in the fast scratch":
        own = Path(home["CHROMA_COMPAT_SCRATCH"]) / f"pytest-chroma-compat-{os.getuid()}"  # paths.fast_scratch_dir
        path = own / f"pair-{dead}-0.4.24-{NEW}-abcdefgh"
        (path / "store").mkdir(parents=True)
        return [path], []
    if kind == "entries of live processes, kept copies and names without an owner":
        paths = [
            validate_root / f"validate-{os.getpid()}-abcdefgh",
            validate_root / "validate-kept-12345678",
            validate_root / "validate-abcdefgh",
            validate_root / "validate-99999999999-abcdefgh",
            scratch / f"{NEW}-1-0123abcd",
            scratch / "sweep-12345678",
            scratch / f"notes-{dead}-x",
        ]
        for p in paths:
            p.mkdir(parents=True)
        return [], paths
    if kind == "scratch/validate is a symlink to the user's data":
        victim = tmp_path / "users-dir"
        (victim / f"validate-{dead}-abcdefgh").mkdir(parents=True)
        validate_root.rmdir()
        validate_root.symlink_to(victim, target_is_directory=True)
        return [], [validate_root, victim / f"validate-{dead}-abcdefgh"]
    if kind == "interrupted build older than an hour":
        path = Path(home["CHROMA_COMPAT_HOME"]) / "envs" / f"{envs.BUILD_PREFIX}chromadb-{NEW}-x-0123abcd"
        (path / "bin").mkdir(parents=True)
        os.utime(path, (time.time() - 7200, time.time() - 7200))
        return [path], []
    raise AssertionError(kind)


def _listed(stdout: str) -> list[str]:
    """`env prune`'s lines without its last "freed N MiB" total (tests/test_trust_leftovers.py checks it)."""
    return [ln for ln in stdout.splitlines() if not ln.startswith("freed ")]


PRUNE_CASES = [
    "plain file named like a dead worker's scratch",
    "symlink named like a dead run's copy, pointing at the user's data",
    "dead run's copy in scratch/validate",
    "dead round trip's store in the fast scratch",
    "entries of live processes, kept copies and names without an owner",
    "scratch/validate is a symlink to the user's data",
    "interrupted build older than an hour",
]


@pytest.mark.parametrize("kind", PRUNE_CASES)
def test_env_prune_removes_dead_leftovers_and_reports_only_those(kind, home, tmp_path, canary: Canary):
    removed, kept = _populate(kind, home, tmp_path, canary)
    done = cli("env", "prune", env=home, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    expected = [f"removed {p}" for p in removed] or ["nothing to prune"]
    assert _listed(done.stdout) == expected
    assert not any(os.path.lexists(p) for p in removed)
    assert all(os.path.lexists(p) for p in kept)
    canary.assert_untouched()


def test_env_prune_names_what_it_could_not_remove_and_lists_only_the_rest(home, tmp_path, canary: Canary):
    dead = _dead_pid()
    root = Path(home["CHROMA_COMPAT_HOME"]) / "scratch" / "validate"
    stuck = root / f"validate-{dead}-stuck"
    stuck.mkdir(parents=True)
    fine = root / f"validate-{dead}-fine"
    fine.mkdir()
    with readonly_dir(stuck / "mounted"):  # a read-only mount inside: nobody, root included, removes it
        done = cli("env", "prune", env=home, timeout=120)
        assert stuck.exists()
    one_line(done, 2, "could not remove", str(stuck), "run `chroma-compat env prune` again")
    assert _listed(done.stdout) == [f"removed {fine}"]
    assert not fine.exists()
    canary.assert_untouched()
    again = cli("env", "prune", env=home, timeout=120)  # once it can go, it goes
    assert (again.returncode, _listed(again.stdout)) == (0, [f"removed {stuck}"]), again.stderr


# -- (e) installers ------------------------------------------------------------------------------


def _building(home: dict, version: str) -> tuple[subprocess.Popen, list[int]]:
    """``env ensure VERSION`` in a private home, caught while uv installs into its build dir."""
    proc = _start("env", "ensure", version, env={"CHROMA_COMPAT_HOME": home["CHROMA_COMPAT_HOME"]})
    ready, _, _ = select.select([proc.stderr], [], [], 60)
    assert ready, "no progress line"
    first = proc.stderr.readline()
    assert "building an environment" in first, first
    marker = str(Path(home["CHROMA_COMPAT_HOME"]) / "envs" / envs.BUILD_PREFIX)
    uv = _wait_for(
        lambda: [p for p in _mentioning(marker) if "install" in _processes().get(p, ("", []))[1]], 30, "uv pip install"
    )
    assert proc.poll() is None
    return proc, uv


@pytest.mark.parametrize("signum,code", SIGNALS[:2], ids=[s.name for s, _ in SIGNALS[:2]])
def test_signal_during_env_ensure_stops_the_installer_and_removes_the_build(signum, code, tmp_path):
    home = {"CHROMA_COMPAT_HOME": str(tmp_path / "home")}
    proc, uv = _building(home, "0.6.3")
    try:
        proc.send_signal(signum)
        done = _finish(proc)
    finally:
        proc.kill()
    one_line(done, code, f"interrupted ({signum.name})")  # the "building" progress line was read already
    assert done.stdout == ""
    assert not [p for p in uv if p in _processes()], "uv outlived the command"
    assert _mentioning(home["CHROMA_COMPAT_HOME"]) == []
    envs_dir = Path(home["CHROMA_COMPAT_HOME"]) / "envs"
    assert os.listdir(envs_dir) == [], "a build directory or constraints file was left behind"
    scratch = Path(home["CHROMA_COMPAT_HOME"]) / "scratch"
    assert not scratch.exists() or os.listdir(scratch) == [], "an import check's scratch was left behind"


def test_sigkill_during_env_ensure_takes_the_installer_along(tmp_path):
    home = {"CHROMA_COMPAT_HOME": str(tmp_path / "home")}
    proc, uv = _building(home, "0.6.3")
    proc.kill()
    proc.communicate(timeout=30)
    # the parent-death signal reaches uv's reaper, which kills uv's whole group (its own children too)
    _wait_for(lambda: not _mentioning(home["CHROMA_COMPAT_HOME"]), 5, "uv and its children to die with the CLI")
    assert not [p for p in uv if p in _processes()]


# -- the registry and the parent-death signal, on plain processes --------------------------------

SLEEPER = [sys.executable, "-c", "import time; time.sleep(30)"]


def test_run_kills_the_whole_process_group_when_it_gives_up(tmp_path):
    marker = str(tmp_path / "tree-marker")
    sleeper = " ".join(f"'{a}'" for a in SLEEPER)
    before = set(interrupts.live())  # workers of other tests in this process stay registered
    with pytest.raises(subprocess.TimeoutExpired):  # a child that started a grandchild, both asleep
        interrupts.run(["/bin/sh", "-c", f"{sleeper} {marker} & {sleeper} {marker}; wait"], timeout=2)
    _wait_for(lambda: _mentioning(marker) == [] or None, 5, "the grandchild to be killed with its group")
    assert set(interrupts.live()) <= before


def test_kill_of_the_parent_kills_a_child_started_by_run(tmp_path):
    marker = str(tmp_path / "orphan-marker")
    code = f"from pytest_chroma_compat.common import interrupts; interrupts.run({[*SLEEPER, marker]!r})"
    parent = subprocess.Popen([sys.executable, "-c", code])
    child = _wait_for(lambda: [p for p in _mentioning(marker) if p != parent.pid], 10, "the child")
    parent.kill()
    parent.wait()
    _wait_for(lambda: not [p for p in child if p in _processes()], 5, "the parent-death signal")


def test_an_entry_whose_lock_is_held_is_never_swept(tmp_path):
    """A cache shared across pid namespaces (containers on one runner) shows another container's live run as a
    dead pid here: the flock its owner holds keeps its copy from being swept; once the owner is gone, it goes."""
    root = tmp_path / "scratch"
    entry = root / f"validate-{_dead_pid()}-abcd1234"
    (entry / "store").mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
                "from pathlib import Path\n"
                "from pytest_chroma_compat.engine import leftovers\n"
                "lock = leftovers.hold(Path(sys.argv[1]))\n"
                "print('held', flush=True)\n"
                "time.sleep(60)\n"
            ),
            str(entry),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert leftovers.stale(root) == []
        assert leftovers.sweep([root]) == ([], [])
    finally:
        holder.kill()
        holder.wait()
    assert leftovers.stale(root) == [entry]
    assert leftovers.sweep([root]) == ([str(entry)], [])
