"""Everything the tool creates under its cache is in one registry (leftovers.REGISTRY), owned by a
pid, and `env prune` removes what dead runs left of every kind, saying how many bytes that freed;
a refusal cleans up what it made; a full disk is one short line, and prune survives what it left.

Real processes throughout: the entries are made by a child process through the same calls the
commands use, then the child is killed (SIGKILL); the full disk is a 1 MiB tmpfs (mount needs root:
skipped, with the reason, where it is not allowed).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pytest_chroma_compat.engine import leftovers

from .conftest import NEW
from .trust import cli, one_line, small_tmpfs


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def home(tmp_path) -> dict:
    """A private cache and fast scratch: prune sees only this test's entries."""
    (tmp_path / "fast").mkdir()
    return {"CHROMA_COMPAT_HOME": str(tmp_path / "home"), "CHROMA_COMPAT_SCRATCH": str(tmp_path / "fast")}


MAKER = r"""
import os, sys, tempfile, time
from pathlib import Path
from pytest_chroma_compat.engine import cache_dirs, leftovers

scratch = cache_dirs.scratch_dir()
(scratch / "validate").mkdir(exist_ok=True)
made = []
for n, (kind, root, label) in enumerate([("migrate", scratch, ""), ("run", scratch, "1.5.9-"),
                                         ("installer", scratch, ""), ("sweep", scratch, ""),
                                         ("import-check", scratch, ""), ("validate", scratch / "validate", ""),
                                         ("validate-kept", scratch / "validate", ""),
                                         ("pair", cache_dirs.fast_scratch_dir(), "0.6.3-1.5.9-")]):
    d = Path(tempfile.mkdtemp(prefix=leftovers.prefix(kind) + label, dir=root))
    (d / "sub").mkdir()
    (d / "sub" / "data").write_bytes(b"x" * 1000 * (n + 1))
    made.append(str(d))
probe = cache_dirs.envs_dir() / f".write-probe-{os.getpid()}-7"  # as a full disk left it before
probe.write_bytes(b"x" * 5)
made.append(str(probe))
print("\n".join(made), flush=True)
time.sleep(600)
"""


def make_entries(env: dict) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", MAKER], stdout=subprocess.PIPE, text=True, env={**os.environ, **env})
    made = [proc.stdout.readline().strip() for _ in range(9)]
    assert all(os.path.lexists(p) for p in made), made
    return proc, made


def test_env_prune_removes_every_kind_a_killed_run_left_and_reports_the_bytes(home):
    """Before: migrate-*, run-*, installer-*, sweep-*, validate-kept-* and envs/.write-probe-* were in
    nothing prune owned ("nothing to prune", 453 MB of migrate copies after a dozen killed runs)."""
    killed, made = make_entries(home)
    live, kept = make_entries(home)  # a run still going: none of its entries may go
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        done = cli("env", "prune", env=home, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        lines = done.stdout.splitlines()
        assert sorted(ln.removeprefix("removed ") for ln in lines[:-1]) == sorted(made), lines
        want = sum(1000 * (n + 1) for n in range(8)) + 5
        assert lines[-1] == f"freed {want / 2**20:.1f} MiB ({want} bytes) in 9 entries", lines[-1]
        assert not any(os.path.lexists(p) for p in made)
        assert all(os.path.lexists(p) for p in kept)
    finally:
        live.kill()
        live.wait(timeout=30)
    again = cli("env", "prune", env=home, timeout=120)  # its owner is gone now: all of it goes
    assert sorted(ln.removeprefix("removed ") for ln in again.stdout.splitlines()[:-1]) == sorted(kept)


def test_every_entry_a_command_creates_is_in_the_registry():
    """A new kind of entry cannot be created without prune owning it: prefix() refuses it."""
    named = [
        k
        for k in leftovers.REGISTRY
        if k.prefix not in ("worker", "write-probe", "server", "run-kept", "transfer-lock")
    ]  # by hand
    for kind in named:
        name = leftovers.prefix(kind.prefix) + "abcd1234"
        assert leftovers.kind_of(name) is kind and leftovers.owner(name) == os.getpid(), name
    with pytest.raises(KeyError, match="not in leftovers.REGISTRY"):
        leftovers.prefix("scratch-of-a-new-command")
    source = Path(leftovers.__file__).parent
    creators = {p.relative_to(source).as_posix(): p.read_text() for p in source.rglob("*.py")}
    loose = [
        f"{name}: {m.group(0)}"
        for name, text in creators.items()
        for m in re.finditer(r"(?:mkdtemp|TemporaryDirectory)\(prefix=f?\"[^\"{]*\"[^)]*scratch_dir\(\)", text)
    ]
    assert loose == [], "a scratch entry named without leftovers.prefix (no owner pid): " + "; ".join(loose)


def test_a_kept_copy_stays_through_the_quiet_sweep_and_goes_on_an_explicit_prune(home, tmp_path):
    root = Path(home["CHROMA_COMPAT_HOME"]) / "scratch" / "validate"
    kept = root / f"validate-kept-{dead_pid()}-abcd1234"
    (kept / "copy").mkdir(parents=True)
    quiet = cli("validate", str(tmp_path / "no-such-store"), "--to", NEW, env=home, timeout=120)
    assert quiet.returncode == 2 and kept.exists()  # validate's own sweep at start leaves kept copies alone
    done = cli("env", "prune", env=home, timeout=120)
    assert done.returncode == 0 and f"removed {kept}" in done.stdout.splitlines() and not kept.exists()


def test_a_refused_migrate_leaves_no_private_copy(home, tmp_path):
    """Before: a refusal inside the mover's constructor never ran its clean-up, and the private copy
    of the source stayed in scratch/ (113 MB for a 40k-record store)."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "chroma.sqlite3").write_bytes(b"not a database" * 1000)
    target = tmp_path / "target-is-a-file"
    target.write_text("x")
    proc = cli("migrate", str(source), str(target), env=home, timeout=300)
    one_line(proc, 2, str(source))
    scratch = Path(home["CHROMA_COMPAT_HOME"]) / "scratch"
    assert [p.name for p in scratch.iterdir() if p.name.startswith("migrate-")] == []


def test_env_ensure_of_an_empty_name_is_exit_2(home):
    """Before: `env ensure ''` (a variable that was never set) built nothing, said nothing, exit 0."""
    for args in ([""], [" , "], [NEW, ""]):
        one_line(cli("env", "ensure", *args, env=home, timeout=120), 2, "not an empty name")


def test_the_suite_shares_environments_but_keeps_scratch_private(private_scratch, tmp_path):
    """What a test run makes goes to the session's folder; the release environments stay shared."""
    code = (
        "from pytest_chroma_compat.engine import cache_dirs; "
        "print(cache_dirs.scratch_dir()); print(cache_dirs.home() / 'envs')"
    )
    env = {k: v for k, v in os.environ.items() if k != "CHROMA_COMPAT_HOME"}
    scratch, envs_dir = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert Path(scratch) == Path(private_scratch).resolve()
    assert not Path(envs_dir).resolve().is_relative_to(Path(private_scratch).resolve())
    own = {**env, "CHROMA_COMPAT_HOME": str(tmp_path / "own")}  # a cache of its own keeps everything inside
    scratch, _ = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=own, check=True
    ).stdout.split()
    assert Path(scratch) == (tmp_path / "own" / "scratch").resolve()


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs, filled; unmounted afterwards."""
    with small_tmpfs(tmp_path / "full", "1m") as mnt:
        yield mnt


def fill(mnt: Path) -> None:
    with open(mnt / f"fill-{uuid.uuid4().hex}", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_a_full_disk_is_one_short_line_and_prune_survives_what_it_left(full_disk, tmp_path):
    """Before: the cache's write probe stayed behind on a full disk (`envs/.write-probe-*`), and the next
    `env prune` crashed on it (NotADirectoryError, exit 3) until it was deleted by hand."""
    home = {"CHROMA_COMPAT_HOME": str(full_disk), "CHROMA_COMPAT_SCRATCH": str(tmp_path / "fast")}
    dead = dead_pid()
    (full_disk / "envs").mkdir()
    (full_disk / "envs" / f".write-probe-{dead}-140000").write_bytes(b"x")  # what a full disk left before
    copy = full_disk / "scratch" / f"migrate-{dead}-abcd1234"
    copy.mkdir(parents=True)
    (copy / "chroma.sqlite3").write_bytes(b"y" * 100_000)
    fill(full_disk)
    proc = cli("env", "ensure", NEW, env=home, timeout=120)
    line = one_line(proc, 2, "No space left on device", str(full_disk / "envs"), "bytes free")
    assert len(line) < 300, line
    assert sorted(p.name for p in (full_disk / "envs").iterdir()) == [f".write-probe-{dead}-140000"]
    done = cli("env", "prune", env=home, timeout=120)  # still full: prune writes nothing before it frees
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert sorted(done.stdout.splitlines()[:-1]) == sorted(
        [f"removed {copy}", f"removed {full_disk}/envs/.write-probe-{dead}-140000"]
    )
    assert done.stdout.splitlines()[-1].startswith("freed 0.1 MiB (100001 bytes) in 2 entries"), done.stdout
    assert list((full_disk / "envs").iterdir()) == [] and not copy.exists()


def test_validate_keep_says_where_it_kept_the_copy_and_prune_removes_it_after(tmp_path):
    """Before: `--keep` ("keep the private copies and print where they are") printed nothing."""
    from pytest_chroma_compat.engine import envs
    from pytest_chroma_compat.engine.client import Release

    env = envs.ensure(NEW)
    home = tmp_path / "home"
    (home / "envs").mkdir(parents=True)
    (home / "envs" / env.path.name).symlink_to(env.path)  # the shared, built release: nothing is rebuilt
    store = tmp_path / "store"
    with Release(NEW) as release, release.persistent(store) as client:
        client.create_collection("kept").upsert(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])
    given = {"CHROMA_COMPAT_HOME": str(home), "CHROMA_COMPAT_SCRATCH": str(tmp_path / "fast")}
    proc = cli("validate", str(store), "--to", NEW, "--no-contracts", "--keep", env=given, timeout=600)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stdout.splitlines() if ln.startswith("chroma-compat: kept the private copies in ")]
    assert len(said) == 1, proc.stdout
    kept = Path(said[0].split(" in ", 1)[1].split(" (")[0])
    assert kept.is_dir() and kept.name.startswith("validate-kept-") and any(kept.iterdir())
    done = cli("env", "prune", env=given, timeout=120)  # its validate is over: an explicit prune takes it
    assert f"removed {kept}" in done.stdout.splitlines() and not kept.exists(), done.stdout
