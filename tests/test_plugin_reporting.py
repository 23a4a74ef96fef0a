"""What a pytest run of the harness shows: live progress past capture, one verdict line derived
from the harness tests' outcomes, failures without the harness's frames, nothing left in the suite.

Every run is a real pytest subprocess (pytester, or a pseudo-terminal) on real releases.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_chroma_compat.engine import cache_dirs, envs, pins

from .conftest import NEW, OLD

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]
FIRST_RUST = "1.0.21"
SCENARIO = (ROOT / "scenarios" / "test_round_trip.py").read_text()
VERDICT = re.compile(r"^chroma-compat verdict: (.*)$", re.M)


def _verdicts(out: str) -> list[str]:
    return VERDICT.findall(out)


def _progress_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith("chroma-compat: ")]


def _outcomes(out: str) -> dict[str, str]:
    """``-v`` lines: test id parameter -> PASSED/FAILED/SKIPPED/ERROR, read independently of the verdict."""
    found = {}
    for m in re.finditer(r"::\w+\[([\w-]+)\] (PASSED|FAILED|SKIPPED|ERROR)", out):
        found[m.group(1)] = m.group(2)
    return found


@pytest.mark.slow
def test_round_trip_verdict_is_derived_from_the_outcomes_and_failures_hide_harness_frames(pytester):
    """0.4.24 -> 1.0.21 in place fails fast on a known shape: the verdict line must name exactly the
    paths whose tests failed and held, the failure must be the sections of ChromaCompatFailure with no
    line of the harness's own modules, and a run leaves no .hypothesis in the suite."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_round_trip=SCENARIO)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        f"--chroma-from={OLD}",
        f"--chroma-to={FIRST_RUST}",
        "--chroma-seed=0",
        "--chroma-examples=1",
        "--chroma-progress=off",
        "-v",
    )
    out = result.stdout.str()
    outcomes = _outcomes(out)
    assert set(outcomes) == {"in-place", "export-import", "unflushed-wal"}, out[-3000:]
    assert outcomes["in-place"] == "FAILED"  # the known shape: 1.x refuses writes after a deleted document
    failed = [p for p, o in outcomes.items() if o == "FAILED"]
    held = [p for p, o in outcomes.items() if o == "PASSED"]
    (line,) = _verdicts(out)
    # the paths whose tests failed and held, and the failing check with its first evidence (issue 23)
    assert line.startswith(f"chromadb {OLD} -> {FIRST_RUST}: NOT SAFE ({', '.join(failed)} failed ["), line
    assert "writable: " in line and "add with a document" in line, line
    assert not held or line.endswith(f"; {', '.join(held)} held)"), line
    assert out.rstrip().splitlines()[-1].startswith("=")  # pytest's own tally stays the last line
    assert out.index("chroma-compat verdict:") > out.index("= FAILURES =")
    failures = out[out.index("= FAILURES =") : out.index("= chroma-compat =")]
    for section in (
        f"pair: chromadb {OLD} -> {FIRST_RUST}",
        "path: in-place",
        "check: known shape 'deleted-document': writable:",
        "reproduce: chroma-compat replay",
    ):
        assert section in failures, section
    assert "ChromaCompatFailure" in failures
    for module in ("roundtrip/pair.py", "engine/client.py", "checks.py", "roundtrip/paths.py", "hypothesis"):
        assert module not in failures, module
    assert "Traceback" not in out and "_pytest" not in failures
    assert not _progress_lines(out), "--chroma-progress=off prints no progress"
    early = out.index("chroma-compat round trip [in-place] NOT SAFE: known shape 'deleted-document': writable:")
    assert early < out.index("= FAILURES ="), "the reason comes as soon as the check fails, not only at the end"
    assert not (pytester.path / ".hypothesis").exists(), sorted(p.name for p in pytester.path.iterdir())
    assert result.ret == 1


@pytest.mark.slow
def test_progress_reaches_the_terminal_past_capture_and_the_verdict_says_safe(pytester):
    """Progress goes through pytest's terminal reporter while the test runs under fd capture: it is on
    the screen before the test's result, never in a "Captured" section, and stderr stays clean."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        "from pytest_chroma_compat.plugin.pair_checks import test_chroma_round_trip_in_place  # noqa: F401\n"
        "def test_users_own():\n    print('the user prints this')\n"
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        f"--chroma-from={FIRST_RUST}",
        f"--chroma-to={NEW}",
        "--chroma-seed=1",
        "--chroma-examples=2",
        "--chroma-progress=0",
        "-rA",
    )
    out = result.stdout.str()
    result.assert_outcomes(passed=2)
    progress = _progress_lines(out)
    assert f"chroma-compat: {FIRST_RUST} -> {NEW} in-place known shapes: 3/3" in progress, out[:3000]
    assert any(re.match(rf"chroma-compat: {FIRST_RUST} -> {NEW} in-place: \d+/2$", ln) for ln in progress), progress
    live = out[: out.index("= PASSES =")]
    assert "known shapes: 3/3" in live  # shown while running, not replayed from a capture
    captured = re.findall(r"-+ Captured \w+ \w+ -+\n(.*?)(?=\n[-=_]{5})", out, re.S)
    assert any("the user prints this" in c for c in captured)  # capture itself still works
    assert not any("chroma-compat:" in c for c in captured), captured
    assert "chroma-compat" not in result.stderr.str()
    # the result letter still follows its file's name after progress lines interrupted it
    assert re.search(r"^test_progress_reaches_the_terminal\w*\.py \.+\s", out, re.M), out[:3000]
    assert _verdicts(out) == [f"chromadb {FIRST_RUST} -> {NEW}: SAFE (in-place held)"]
    assert not (pytester.path / ".hypothesis").exists()


def _run_in_terminal(args: list[str], cwd: Path, timeout: float = 600) -> tuple[int, str]:
    """pytest with a pseudo-terminal as its stdout, as a person running it in a shell sees it."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_on_a_terminal_progress_is_redrawn_in_place(pytester):
    """On a terminal a wait's line is redrawn (cursor up one line) instead of repeated."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        "from pytest_chroma_compat.plugin.pair_checks import test_chroma_round_trip_export_import  # noqa\n"
    )
    code, out = _run_in_terminal(
        [
            "-p",
            "no:cacheprovider",
            f"--chroma-from={FIRST_RUST}",
            f"--chroma-to={NEW}",
            "--chroma-seed=1",
            "--chroma-examples=2",
            "--chroma-progress=0",
        ],
        pytester.path,
    )
    assert code == 0, out[-3000:]
    label = f"chroma-compat: {FIRST_RUST} -> {NEW} export-import known shapes: "
    assert out.count(label) >= 2, out[:3000]
    assert "\r\x1b[1A" + label in out, "a later state of the same wait redraws the line above"
    assert f"chroma-compat verdict: chromadb {FIRST_RUST} -> {NEW}: SAFE (export-import held)" in out
    assert not (pytester.path / ".hypothesis").exists()


def test_a_release_being_built_is_shown_and_a_harness_fault_is_could_not_check(pytester, private_home):
    """In an empty cache the pair's first release is built with a line before and after; the second's
    environment is broken, so the check cannot run: one line, and the verdict says COULD NOT CHECK,
    never SAFE or NOT SAFE."""
    (cache_dirs.envs_dir() / envs.env_key(FIRST_RUST, pins.for_version(FIRST_RUST))).mkdir(parents=True)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        "from pytest_chroma_compat.plugin.pair_checks import test_chroma_round_trip_in_place  # noqa\n"
        "from pytest_chroma_compat.plugin.pair_checks import test_chroma_round_trip_export_import  # noqa\n"
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--chroma-from={NEW}", f"--chroma-to={FIRST_RUST}", "--chroma-examples=1", "-v"
    )
    out = result.stdout.str()
    result.assert_outcomes(errors=2)
    progress = _progress_lines(out)
    assert progress[0].startswith(f"chroma-compat: building an environment for chromadb {NEW}"), progress
    assert re.match(rf"chroma-compat: chromadb {NEW} environment ready \(\d+\.\d s\)$", progress[1]), progress
    assert "has no chroma-compat-env.json (an interrupted build?)" in out
    assert "Traceback" not in out and "engine/envs.py" not in out and "plugin/__init__.py" not in out
    (line,) = _verdicts(out)
    # with the reason (issue 23): the first line of what stopped the check
    assert line.startswith(
        f"chromadb {NEW} -> {FIRST_RUST}: COULD NOT CHECK (in-place, export-import could not be checked ["
    ), line
    assert result.ret == 1


USER_SUITE = f"""
import pytest

@pytest.mark.chroma_versions("{NEW}")
def test_reads_a_missing_collection(chroma_release):
    with chroma_release.ephemeral() as client:
        client.get_collection("never-created")

@pytest.mark.chroma_versions("{NEW}")
def test_counts_wrong(chroma_release):
    with chroma_release.ephemeral() as client:
        col = client.create_collection("docs")
        col.add(ids=["a"], embeddings=[[1.0, 0.0]])
        assert col.count() == 2, "the user's own expectation"

@pytest.mark.chroma_versions("{NEW}")
def test_counts_right(chroma_release):
    with chroma_release.ephemeral() as client:
        client.create_collection("docs").add(ids=["a"], embeddings=[[1.0, 0.0]])
"""


def test_a_users_failure_shows_the_users_frame_not_the_client(pytester):
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_user=USER_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    out = result.stdout.str()
    result.assert_outcomes(failed=2, passed=1)
    failures = out[out.index("= FAILURES =") : out.index("= chroma-compat =")]
    assert '>           client.get_collection("never-created")' in failures
    assert "NotFoundError" in failures and re.search(r"^test_user.py:\d+: ChromaError$", failures, re.M)
    assert '>           assert col.count() == 2, "the user\'s own expectation"' in failures
    assert re.search(r"^test_user.py:\d+: AssertionError$", failures, re.M)
    assert "engine/client.py" not in failures and "pytest_chroma_compat" not in failures.replace(
        "pytest_chroma_compat.common.errors.ChromaError", ""
    )
    assert _verdicts(out) == [f"your tests using the chroma fixtures: chromadb {NEW}: 2 failed, 1 passed"]
    full = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--full-trace", "-k", "missing")
    assert "engine/client.py" in full.stdout.str()  # the frames are hidden by the plugin, and only by it


@pytest.mark.slow
def test_the_verdict_is_the_same_under_xdist(pytester):
    """xdist's controller never runs the tests: the verdict comes from the reports the workers send."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_user=USER_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(failed=2, passed=1)
    assert _verdicts(result.stdout.str()) == [
        f"your tests using the chroma fixtures: chromadb {NEW}: 2 failed, 1 passed"
    ]


@pytest.mark.slow
def test_snapshot_run_shows_progress_and_a_verdict_from_its_checks(pytester, tmp_path):
    from fixtures import stores
    from pytest_chroma_compat.engine.client import Release

    with Release(OLD) as release:
        store = stores.orphaned_fulltext_row(release, tmp_path / "orphan")
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chroma-snapshot", str(store), "--chroma-to", NEW, "--chroma-progress=0", "-v"
    )
    out = result.stdout.str()
    outcomes = dict(re.findall(r"::test_snapshot\[([^\]]+)\] (PASSED|FAILED|SKIPPED|ERROR)", out))
    failed = sorted(k for k, v in outcomes.items() if v == "FAILED")
    assert failed == ["writable-notes"], outcomes  # the finding: 1.x refuses writes after the delete
    assert any(ln.startswith("chroma-compat: compare notes") for ln in _progress_lines(out)), out[:3000]
    assert out.index("chroma-compat: compare notes") < out.index("collected")  # shown during collection
    held = [k for k, v in outcomes.items() if v == "PASSED"]
    skipped = [k for k, v in outcomes.items() if v == "SKIPPED"]
    assert len(held) > 4  # so the line counts them instead of naming them
    (line,) = _verdicts(out)
    assert re.match(
        rf"snapshot {re.escape(str(store))} \(chromadb [\d.-]+ -> {NEW}\): NOT SAFE "
        rf"\(writable-notes failed \[writable in collection 'notes'.*\]; {len(held)} held",
        line,
    ), line
    if skipped:
        assert line.endswith(f"; {', '.join(skipped) if len(skipped) <= 4 else len(skipped)} skipped)"), line
    else:
        assert line.endswith(" held)"), line
    failure = out[out.index("= FAILURES =") : out.index("= chroma-compat validate =")]
    assert "check: writable in collection 'notes'" in failure and "validate.py" not in failure
    assert result.ret == 1


def test_a_bad_progress_setting_is_one_line(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--chroma-progress", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--chroma-progress must be a number of seconds or 'off', not 'soon'" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_nox_session_shows_progress_and_ends_with_the_verdict(tmp_path):
    """`nox -s compat` is a pytest run of scenarios/: its progress and its verdict come through nox."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "-f",
            str(ROOT / "noxfile.py"),
            "--envdir",
            str(tmp_path / "nox"),
            "-s",
            "compat",
            "--",
            "--from",
            OLD,
            "--to",
            FIRST_RUST,
            "--chroma-examples=1",
            "--chroma-progress=0",
            "-k",
            "round_trip and in-place",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # uv's build locks stay out of /tmp
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]  # the session fails because the upgrade does
    assert f"chroma-compat: {OLD} -> {FIRST_RUST} in-place known shapes: 0/3" in out, out[-3000:]
    (line,) = _verdicts(out)
    assert line.startswith(f"chromadb {OLD} -> {FIRST_RUST}: NOT SAFE (in-place failed [known shape "), line
    # the reason is on the first screen too, as soon as the check fails (issue 23)
    assert out.index("chroma-compat round trip [in-place] NOT SAFE: ") < out.index("= FAILURES =")
    assert "pair: chromadb" in out and "path: in-place" in out  # the failure's own sections
    assert "roundtrip/pair.py" not in out and "engine/client.py" not in out
    assert out.index("chroma-compat verdict:") < out.index("Session compat failed")
