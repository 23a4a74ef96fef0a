"""The fresh attack pass of issue 24: what it found open, each proved with real files and processes.

- A migrate's resume journal is input like any other: a crafted or corrupted one (an offset past what
  the target holds, a count that is not a number, a release name that is not a release) must never
  make a rerun skip records silently, nor end in exit 3.
- ``transfer/*.lock`` files a killed migrate left, and a journal's half-written temporary file, are
  ``env prune``'s to remove (a live migrate's lock never is).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.transfer import endpoints, journal

from .conftest import MID
from .trust import cli, one_line

N = 300


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("attack-pass") / "store"
    rng = np.random.default_rng(3)
    with Release(MID) as rel:
        client = rel.persistent(path)
        big = client.create_collection("big")
        big.add(
            ids=[f"r{i:04d}" for i in range(N)], embeddings=rng.random((N, 4)), documents=[f"d{i}" for i in range(N)]
        )
        client.create_collection("small").add(ids=["a", "b"], embeddings=[[1.0] * 4, [0.5] * 4])
        client.close()
    return path


def _count(path: Path, name: str) -> int:
    with Release(MID) as rel:
        client = rel.persistent(path)
        n = client.get_collection(name).count()
        client.close()
    return n


def _journal_of(source: Path, target: Path) -> Path:
    return journal.location(endpoints.identity(str(source)), endpoints.identity(str(target)))


def _write_journal(source: Path, target: Path, collections: dict, **extra) -> Path:
    where = _journal_of(source, target)
    where.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "source": endpoints.identity(str(source)),
        "target": endpoints.identity(str(target)),
        "started": time.time(),
        "target_version": MID,
        "collections": collections,
        **extra,
    }
    where.write_text(json.dumps(data))
    return where


def test_a_journal_offset_past_what_the_target_holds_is_copied_again_never_skipped(store, tmp_path):
    """Before: a journal saying 250 of 300 copied, over a target holding 100, resumed at 250:
    exit 0 and 150 records silently missing (only --verify would have seen it)."""
    target = tmp_path / "target"
    first = cli("migrate", str(store), str(target), "--batch-size", "100", timeout=300)
    assert first.returncode == 0, first.stderr
    with Release(MID) as rel:  # the target as a kill after the first batch leaves it
        client = rel.persistent(target)
        client.get_collection("big").delete(ids=[f"r{i:04d}" for i in range(100, N)])
        client.close()
    _write_journal(
        store,
        target,
        {"big": {"copied": 250, "total": N, "done": False}, "small": {"copied": 2, "total": 2, "done": True}},
    )
    again = cli("migrate", str(store), str(target), "--batch-size", "100", timeout=300)
    assert again.returncode == 0, again.stderr
    assert "copying it again from the start" in again.stderr, again.stderr
    assert _count(target, "big") == N
    # a "done" the target contradicts is not trusted either
    with Release(MID) as rel:
        client = rel.persistent(target)
        client.get_collection("big").delete(ids=["r0000", "r0001"])
        client.close()
    _write_journal(
        store,
        target,
        {"big": {"copied": N, "total": N, "done": True}, "small": {"copied": 2, "total": 2, "done": True}},
    )
    third = cli("migrate", str(store), str(target), "--verify", timeout=300)
    assert third.returncode == 0, third.stderr
    assert "verified" in third.stdout and _count(target, "big") == N, third.stdout + third.stderr


@pytest.fixture(scope="module")
def small_target(store, tmp_path_factory):
    """A target that one real ``migrate --collection small`` wrote, migrated once for the module; each test gets
    a copy of its own at a path of its own (a journal is keyed by the target's resolved path), as the
    test's own first migrate used to leave it: the damaged journals are written over it afterwards."""
    migrated = tmp_path_factory.mktemp("attack-pass-small") / "target"
    first = cli("migrate", str(store), str(migrated), "--collection", "small", timeout=300)
    assert first.returncode == 0, first.stderr
    _journal_of(store, migrated).unlink(missing_ok=True)  # the copies' journals are the tests' own

    def copy(tmp_path: Path) -> Path:
        target = tmp_path / "target"
        shutil.copytree(migrated, target, symlinks=True)
        return target

    return copy


@pytest.mark.parametrize(
    "damage",
    [
        {"collections": {"small": {"copied": "abc", "total": 2, "done": False}}},
        {"collections": {"small": {"copied": -5, "total": 2, "done": False}}},
        {"collections": {"small": ["not", "an", "entry"]}},
        {"collections": ["small"]},
        {"started": "yesterday"},
        {"started": 1e300},
    ],
    ids=["copied-text", "copied-negative", "entry-list", "collections-list", "started-text", "started-huge"],
)
def test_a_damaged_journal_is_one_line_exit_2_never_3(store, small_target, tmp_path, damage):
    """Before: ValueError, TypeError or OverflowError out of the resume, exit 3."""
    target = small_target(tmp_path)
    collections = damage.get("collections", {"small": {"copied": 0, "total": 2, "done": False}})
    where = _write_journal(store, target, collections, **{k: v for k, v in damage.items() if k != "collections"})
    try:
        again = cli("migrate", str(store), str(target), timeout=300)
        one_line(again, 2, "journal", "damaged")
    finally:
        where.unlink(missing_ok=True)


def test_a_journal_naming_a_release_that_is_not_one_is_not_installed(store, small_target, tmp_path):
    """The journal's target release decides what the rerun installs: a name that is not a catalogued
    release (here a path) is not used; the store is then an existing one (exit 2, one line)."""
    target = small_target(tmp_path)
    where = _write_journal(
        store, target, {"small": {"copied": 0, "total": 2, "done": False}}, target_version="../../../../tmp/evil"
    )
    try:
        again = cli("migrate", str(store), str(target), timeout=300)
        one_line(again, 2, "--target-version")
    finally:
        where.unlink(missing_ok=True)


HOLDER = """
import os, sys, time
from pytest_chroma_compat.transfer import lock
lock.hold(sys.argv[1], "t")
print(lock.location(sys.argv[1]), flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), 9)
time.sleep(600)
"""


def test_a_killed_migrates_lock_is_pruned_and_a_live_ones_is_kept(tmp_path):
    """Before: scratch/transfers/<key>.lock of a migrate killed with kill -9 stayed for ever and
    was in nothing `env prune` owned."""
    env = {**os.environ, "CHROMA_COMPAT_HOME": str(tmp_path / "home")}
    dead = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "/some/target", "die"], stdout=subprocess.PIPE, text=True, env=env
    )
    out, _ = dead.communicate(timeout=60)
    assert dead.returncode == -signal.SIGKILL, out
    dead_lock = Path(out.strip())
    live = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "/other/target", "live"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        live_lock = Path(live.stdout.readline().strip())
        tmp = dead_lock.parent / f".journal-{dead.pid}-abc123"  # a journal write a kill cut short
        tmp.write_text("{")
        assert dead_lock.exists() and live_lock.exists()
        done = cli("env", "prune", env={"CHROMA_COMPAT_HOME": env["CHROMA_COMPAT_HOME"]}, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"removed {dead_lock}" in done.stdout and f"removed {tmp}" in done.stdout, done.stdout
        assert not dead_lock.exists() and not tmp.exists()
        assert live_lock.exists(), "a live migrate's lock was removed"
    finally:
        live.kill()
        live.wait(timeout=30)
    again = cli("env", "prune", env={"CHROMA_COMPAT_HOME": env["CHROMA_COMPAT_HOME"]}, timeout=120)
    assert f"removed {live_lock}" in again.stdout, again.stdout


def _limited(limit: int = 2 * 2**30):
    import resource

    def cap() -> None:  # an unbounded read dies here instead of taking the machine's memory
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return cap


@pytest.fixture
def hostile_inputs(tmp_path) -> Path:
    """A FIFO (a read of it hangs) and a link to /dev/zero (size 0, endless) where input files go, as a
    downloaded CI artifact (a tar holds FIFOs and links) or a careless path puts them."""
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "arrays.npy")
    (tmp_path / "case.json").write_text(json.dumps({"npy": "arrays.npy", "arrays": {}, "ops": [], "queries": []}))
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chroma_compat",
            "matrix",
            "--upgrades-only",
            "--plan",
            "--json",
            "plan.json",
            "--versions",
            "1.0.21,1.5.9",
            "--paths",
            "export-import",
            "--examples",
            "1",
            "--seed",
            "0",
            "--shards",
            "2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CHROMA_COMPAT_TIMINGS": str(tmp_path / "t.json")},
    )
    assert made.returncode == 0, made.stderr
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ("matrix", "--merge", "fifo.json", "--json", "out.json"),
        ("matrix", "--merge", "zero.json", "--json", "out.json"),
        ("matrix", "--plan-file", "fifo.json", "--shard", "1", "--json", "r.json"),
        ("matrix", "--plan-file", "zero.json", "--shard", "1", "--json", "r.json"),
        ("matrix", "--plan-file", "plan.json", "--shard", "1", "--json", "fifo.json"),
        ("matrix", "--plan-file", "plan.json", "--shard", "1", "--json", "zero.json"),
        ("replay", "fifo.json"),
        ("replay", "zero.json"),
        ("replay", "case.json"),
        ("validate", ".", "--to", "1.5.9", "--filters", "fifo.json"),
        ("validate", ".", "--to", "1.5.9", "--filters", "zero.json"),
    ],
    ids=[
        "merge-fifo",
        "merge-zero",
        "plan-fifo",
        "plan-zero",
        "resume-fifo",
        "resume-zero",
        "replay-fifo",
        "replay-zero",
        "replay-npy-fifo",
        "filters-fifo",
        "filters-zero",
    ],
)
def test_a_fifo_or_a_device_given_as_an_input_file_is_one_line_not_a_hang(hostile_inputs, args):
    """Before: a FIFO hung the command (killed by `timeout`); a link to /dev/zero read until the
    kernel killed it (exit 137), for a plan, a shard's result (merged or resumed) and a case file."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        cwd=hostile_inputs,
        timeout=60,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limited(),
        env={**os.environ, "CHROMA_COMPAT_TIMINGS": str(hostile_inputs / "t.json")},
    )
    one_line(proc, 2, "not a regular file")


APP = "import chromadb\n\nclient = chromadb.Client()\nclient.persist()\n"  # persist-removed: 0.3.29 -> 0.4.0


def test_a_lambda_chain_that_overflows_the_parser_is_not_scanned_and_the_rest_stands(tmp_path):
    """Before: CPython's parser overflows its own stack on `lambda:lambda:...` (40 kB, under
    --max-file-bytes) as MemoryError, not RecursionError: exit 3, every finding lost."""
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "lam.py").write_text("x = " + "lambda:" * 5000 + "1\n")
    proc = cli("scan", str(tmp_path), "--from", "0.3.29", "--to", "1.5.9", timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "lam.py: MemoryError: its syntax is nested deeper than the parser follows" in proc.stdout, proc.stdout
    assert "app.py:4:1: persist-removed" in proc.stdout and "1 finding(s)" in proc.stdout


def test_a_file_name_with_a_newline_or_an_escape_cannot_forge_report_lines(tmp_path):
    """Before: the text report printed names raw: a file named 'x\\nchroma-compat: 0 finding(s)...'
    put a forged line in a CI log, and an escape sequence drove the terminal."""
    (tmp_path / "x\nchroma-compat: 0 finding(s), all clear.py").write_text(APP)
    (tmp_path / "esc\x1b[2J.py").write_text(APP)
    proc = cli("scan", str(tmp_path), "--from", "0.3.29", "--to", "1.5.9", timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "\x1b" not in proc.stdout and not any(ln.startswith("chroma-compat:") for ln in proc.stdout.splitlines())
    assert "x\\x0achroma-compat: 0 finding(s), all clear.py:4:1: persist-removed" in proc.stdout, proc.stdout
    assert "esc\\x1b[2J.py:4:1" in proc.stdout and "2 finding(s)" in proc.stdout


def test_a_snapshot_without_a_target_release_is_a_usage_error_at_start_up(tmp_path):
    """Before: raised inside collection (pytest_generate_tests): a traceback and exit 2 ("Interrupted:
    1 error during collection"), not the one usage error every other bad option is."""
    from pytest_chroma_compat.plugin.config import installed_chromadb

    if installed_chromadb():
        pytest.skip("chromadb is installed here: --chroma-to defaults to it")
    (tmp_path / "test_a.py").write_text("def test_x():\n    pass\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--chroma-snapshot",
            str(tmp_path / "store"),
            "test_a.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--chroma-snapshot needs --chroma-to" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr


def test_an_unclosed_ipv6_bracket_in_a_server_url_is_one_line_exit_2(store, tmp_path):
    """Before: urllib's ValueError "Invalid IPv6 URL", exit 3 (migrate) or an INTERNALERROR traceback
    (--chroma-snapshot-endpoint-url)."""
    one_line(cli("migrate", str(store), "http://[::1", timeout=120), 2, "not a server URL")
    (tmp_path / "test_a.py").write_text("def test_x():\n    pass\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--chroma-snapshot-endpoint-url=http://[::1",
            "test_a.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4 and "INTERNALERROR" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "--chroma-snapshot-endpoint-url='http://[::1' is not accepted" in proc.stderr, proc.stderr


def test_a_report_to_a_full_disk_is_exit_2_not_an_internal_error(store, tmp_path):
    """Before: `migrate ... --json /dev/full` (and `run --json`) ended exit 3 "internal error: OSError:
    [Errno 28] No space left on device" after the work was done."""
    proc = cli(
        "migrate", str(store), str(tmp_path / "target"), "--collection", "small", "--json", "/dev/full", timeout=300
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("chroma-compat: error: No space left on device while writing an output"), last
