"""Environments: built once, reused in a blink, safe under concurrency, honest when broken."""

import json
import os
import subprocess
import sys

import pytest

from pytest_chroma_compat.common.errors import CorruptEnvironment, InstallFailed
from pytest_chroma_compat.engine import envs

from .conftest import MID, NEW, OLD, run_cli


def test_ensure_builds_with_pins_and_records_them():
    env = envs.ensure(OLD)
    assert env.interpreter.exists()
    assert "numpy-1" in [p["id"] for p in env.pins]
    assert env.packages["chromadb"] == OLD
    assert env.packages["numpy"].startswith("1.")
    assert envs.ensure(OLD).path == env.path  # reused, not rebuilt


def test_concurrent_ensure_builds_once(private_home):
    cmd = [sys.executable, "-m", "pytest_chroma_compat", "env", "ensure", NEW]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    builds = sum(err.count("building an environment") for _, err in outs)
    assert builds == 1, outs
    names = os.listdir(private_home / "envs")
    assert len(names) == 1 and not names[0].startswith(".build-"), names


@pytest.mark.slow
def test_corrupt_environment_is_reported_then_rebuilt(private_home):
    env = envs.ensure(NEW)
    (env.path / envs.MANIFEST).unlink()
    with pytest.raises(CorruptEnvironment, match="interrupted build"):
        envs.ensure(NEW)
    proc = run_cli("env", "ensure", NEW)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "interrupted build" in proc.stderr and f"--rebuild {NEW}" in proc.stderr
    fixed = envs.ensure(NEW, rebuild=True)
    assert (fixed.path / envs.MANIFEST).exists()


@pytest.mark.slow
def test_prune_removes_corrupt_and_unused(private_home):
    env = envs.ensure(NEW)
    os.remove(env.path / envs.MANIFEST)
    assert envs.prune() == [str(env.path)]
    env = envs.ensure(NEW)
    assert envs.prune() == []
    os.utime(env.path / envs.LAST_USED, (0, 0))
    assert envs.prune(older_than_days=1) == [str(env.path)]
    assert not env.path.exists()


def test_install_failure_is_one_line(private_home, monkeypatch):
    from pytest_chroma_compat.engine import pins

    impossible = pins.PinRule(id="impossible", versions=">=0", constraints=("numpy<0.1",), prevents="test")
    monkeypatch.setattr(pins, "for_version", lambda v, python=None: [impossible])
    with pytest.raises(InstallFailed) as info:
        envs.ensure(NEW)
    message = str(info.value)
    assert "cannot be installed" in message and "numpy" in message and "\n" not in message
    assert not [p for p in os.listdir(private_home / "envs") if p.startswith(".build-")]


def test_env_list_json_describes_each_env():
    for v in (OLD, MID, NEW):
        envs.ensure(v)
    proc = run_cli("env", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["version"]: row for row in json.loads(proc.stdout) if "version" in row}
    for v in (OLD, MID, NEW):
        row = rows[v]
        assert row["python"] and row["path"] and row["size_bytes"] > 10_000_000 and row["created"]
        assert "pins" in row


@pytest.mark.slow
def test_pip_fallback_without_uv(private_home, monkeypatch):
    monkeypatch.setattr(envs, "_uv", lambda: None)
    notes = []
    env = envs.ensure(NEW, note=notes.append)
    assert env.installer == "pip"
    assert any("slower" in n for n in notes)
    assert env.packages["chromadb"] == NEW
