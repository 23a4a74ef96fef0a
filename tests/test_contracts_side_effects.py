"""Side-effect contracts on real releases: what a session writes outside its store, which hosts it tries.

Issue 13: releases write outside the store even with telemetry off (onnxruntime's device id and
``~/.cache/chroma/telemetry_user_id`` on 0.x, SQLite temp files in TMPDIR on 1.x), and some look up
the telemetry host unless anonymized_telemetry=False. The expected values are what these releases
did when measured (docs/contracts.md), under strace and Python audit hooks, with the network refused.
Observations go to a private cache so the probes really run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest

from pytest_chroma_compat.contracts import cli, measure, side_effects
from pytest_chroma_compat.engine import envs

VERSIONS = ["0.4.24", "1.0.21", "1.5.9"]
PROBES = list(side_effects.PROBES)
CONTRACTS = ["writes-outside-store", "network-attempts", "unwritable-home"]
OFF, DEFAULT = "anonymized_telemetry=False", "anonymized_telemetry at its default"
HOME, ELSEWHERE = "in HOME/cwd", "outside HOME/cwd"

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed here")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("contracts-side-effects-cache")


@pytest.fixture(scope="module")
def observed(cache):
    # As on a CI service: onnxruntime writes nothing there unless the probe removes the variable
    # (the answer must not depend on where it was measured; CI's own run found no onnxruntime files)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CI", "true")
        mp.setenv("GITHUB_ACTIONS", "true")
        obs = measure.observe_many(VERSIONS, PROBES, cache=cache, jobs=2)
    for version in VERSIONS:
        assert obs[version].failures == {}, obs[version].failures
    return {v: o.values for v, o in obs.items()}


@pytest.mark.slow
@needs_strace
def test_every_release_is_seen_by_strace_and_the_hooks(observed):
    for version in VERSIONS:
        for probe in ("file_writes", "network_attempts"):
            assert observed[version][probe]["seen by"] == "strace and audit hooks", (version, probe)


@needs_strace
def test_0_4_writes_under_home_at_import_and_at_client_start_even_with_telemetry_off(observed):
    off = observed["0.4.24"]["file_writes"][OFF]
    assert off[HOME]["~/.cache/chroma/telemetry_user_id"] == "client"
    onnx = {p: w for p, w in off[HOME].items() if p.startswith("~/.cache/Microsoft/DeveloperTools/.onnxruntime/")}
    assert onnx and set(onnx.values()) == {"import"}  # onnxruntime, native, at `import chromadb`
    assert off[ELSEWHERE] == {"$TMPDIR/.ses": "import"}
    assert observed["0.4.24"]["file_writes"][DEFAULT] == off  # the telemetry setting changes no file


@needs_strace
def test_1_x_writes_sqlite_temp_files_to_tmpdir_and_1_5_9_nothing_under_home(observed):
    for version in ("1.0.21", "1.5.9"):
        value = observed[version]["file_writes"]
        assert value[OFF][ELSEWHERE] == {"$TMPDIR/etilqs_<random>": "background"}, version  # the Rust core's thread
    assert observed["1.0.21"]["file_writes"][OFF][HOME] == {"~/.cache/chroma/telemetry_user_id": "client"}
    assert observed["1.5.9"]["file_writes"][OFF][HOME] == observed["1.5.9"]["file_writes"][DEFAULT][HOME] == "nothing"


def test_telemetry_host_is_looked_up_only_at_the_default_setting_and_not_by_1_5_9(observed):
    for version in ("0.4.24", "1.0.21"):
        value = observed[version]["network_attempts"]
        assert value[OFF] == "none", version
        assert value[DEFAULT] == {"lookup us.i.posthog.com:443": "background"}, version
    value = observed["1.5.9"]["network_attempts"]
    assert value[OFF] == value[DEFAULT] == "none"


def test_a_session_survives_an_unwritable_home(observed):
    for version in VERSIONS:
        assert observed[version]["unwritable_home"] == "ok", version


@needs_strace
def test_the_same_release_measured_again_answers_the_same(observed, cache):
    again = measure.observe("1.5.9", PROBES, cache=cache, fresh=True)
    assert again.failures == {} and not again.cached
    assert again.values == observed["1.5.9"]


def test_side_effect_answers_are_cached_under_their_own_hash(observed, cache):
    stored = json.loads(measure._cache_file("1.5.9", cache, kind="side-effects").read_text())
    assert stored["side_effects_sha256"] == measure.side_effect_hash()
    assert set(stored["values"]) == set(PROBES)
    assert not measure._cache_file("1.5.9", cache).exists()  # no probes.py answer was asked for


def _in_release(version: str, code: str, cwd, path: str) -> dict:
    """Run ``code`` with side_effects importable in ``version``'s own interpreter (as its worker would)."""
    env = envs.hermetic_environ(cwd)
    env["PATH"] = path
    proc = subprocess.run(
        [
            str(envs.ensure(version).interpreter),
            "-c",
            f"import sys, json; sys.path.insert(0, {str(measure.HERE)!r}); import side_effects; {code}",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_without_strace_the_answer_says_native_writes_were_not_measured(tmp_path):
    value = _in_release("0.4.24", "print(json.dumps(side_effects.file_writes()))", tmp_path, path=os.devnull)
    assert value["seen by"].endswith("native writes and connects not measured: strace unavailable")
    # the hooks still see the Python-level write; onnxruntime's native ones are not claimed absent
    assert value[OFF][HOME] == {"~/.cache/chroma/telemetry_user_id": "client"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("side-effects-")] == []  # sandbox removed


def test_python_lookups_and_connects_are_refused_and_recorded(tmp_path):
    meta = tmp_path / "meta"
    meta.mkdir()
    code = f"""
import os, socket, json
from side_effect_session import Recorder
fd = os.open({str(meta / "events.jsonl")!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
sys.addaudithook(Recorder(fd, {str(meta)!r}))
out = {{}}
for label, call in (("lookup", lambda: socket.getaddrinfo("pypi.org", 443)),
                    ("connect", lambda: socket.socket().connect(("203.0.113.9", 443)))):
    try:
        call()
        out[label] = "went through"
    except OSError as exc:
        out[label] = type(exc).__name__
print(json.dumps(out))
"""
    got = _in_release("1.5.9", code, tmp_path, path=os.environ.get("PATH", ""))
    assert got == {"lookup": "gaierror", "connect": "OSError"}
    events = [json.loads(line) for line in (meta / "events.jsonl").read_text().splitlines()]
    assert [e["what"] for e in events] == ["lookup pypi.org:443", "connect 203.0.113.9:443"]


@needs_strace
def test_native_connects_are_refused_by_strace_and_recorded(tmp_path):
    log = tmp_path / "strace.log"
    code = (
        "import socket\ns = socket.socket()\ntry:\n    s.connect(('203.0.113.9', 443)); print('connected')\n"
        "except OSError as exc:\n    print(exc.errno)"
    )
    cmd = side_effects.strace_command(shutil.which("strace"), str(log), [sys.executable, "-c", code])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.stdout.strip() == "101"  # ENETUNREACH: injected, the packet never left
    events = side_effects.traced(log.read_text(), str(tmp_path), str(tmp_path / "meta"))
    assert {"kind": "net", "what": "native connect 203.0.113.9:443", "when": "start"} in events


def argparse_args(*argv: str):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["contracts", *argv])


@needs_strace
def test_pair_output_and_markdown_show_the_side_effects_in_words(observed, cache, monkeypatch, capsys):
    monkeypatch.setattr(measure, "default_cache", lambda: cache)  # the answers measured above
    chosen = tuple(measure.contract(c) for c in CONTRACTS)
    monkeypatch.setattr(measure, "load_table", lambda: chosen)
    args = argparse_args("--from", "0.4.24", "--to", "1.5.9")
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "CROSSED  writes-outside-store" in out and "CROSSED  network-attempts" in out
    assert f"0.4.24: {OFF}: {ELSEWHERE}: $TMPDIR/.ses (import); {HOME}: " in out
    assert "~/.cache/chroma/telemetry_user_id (client)" in out
    assert f"1.5.9:  {DEFAULT}: none" in out
    assert "same     unwritable-home" in out
    hist = measure.histories(VERSIONS, {v: measure.Observation(v, observed[v]) for v in VERSIONS}, chosen)
    doc = {
        "generated": "-",
        "range": "-",
        "versions": VERSIONS,
        "probes_sha256": "-",
        "contracts": [h.as_dict() for h in hist],
        "failures": {},
    }
    text = cli.markdown(doc)
    assert f"  - in words: {DEFAULT}: lookup us.i.posthog.com:443 (background)" in text
    assert f"  - in words: {OFF}: {ELSEWHERE}: $TMPDIR/etilqs_<random> (background); {HOME}: nothing" in text
