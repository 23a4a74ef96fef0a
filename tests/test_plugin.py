"""The plugin as a user suite sees it, through pytester, against real releases."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MID, NEW, OLD

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]


def test_loads_in_a_suite_without_chromadb_and_imports_nothing_heavy(pytester):
    pytester.makepyfile("""
        import sys
        def test_nothing_heavy_loaded():
            assert not {"chromadb", "numpy", "hypothesis"} & set(sys.modules)
    """)
    # third-party plugins of the machine are not ours to judge: pytest-benchmark, where installed, warns
    # that xdist disables it when this suite itself runs under -n
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:randomly", "-p", "no:benchmark")
    result.assert_outcomes(passed=1)
    assert "warning" not in result.stdout.str().lower()


def test_chroma_versions_parametrizes_and_fails_per_release_with_the_real_reason(pytester):
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.chroma_versions("{MID}", "{NEW}")
        def test_list_metadata_on_a_collection(chroma_release):
            with chroma_release.ephemeral() as client:
                client.create_collection("tagged").add(ids=["a"], embeddings=[[1.0, 0.0]],
                                                       metadatas=[{{"tags": ["x", "y"]}}])
    """)
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert f"test_list_metadata_on_a_collection[chromadb-{NEW}] PASSED" in out
    assert f"test_list_metadata_on_a_collection[chromadb-{MID}] FAILED" in out
    assert "Expected metadata value to be a str, int, float" in out
    assert f"releases used: chromadb {MID}, chromadb {NEW}" in out


@pytest.mark.slow
def test_store_from_an_old_release_is_a_private_copy(pytester):
    pytester.makepyfile(f"""
        DATA = {{"docs": {{"ids": ["a", "b"], "embeddings": [[1.0, 0.0], [0.0, 1.0]],
                          "documents": ["one", "two"], "metadatas": [{{"n": 1}}, {{"n": 2}}],
                          "metadata": {{"hnsw:space": "cosine"}}}}}}

        def test_read_with_a_newer_release(chroma_store_from, chroma_releases):
            first, second = chroma_store_from("{OLD}", data=DATA), chroma_store_from("{OLD}", data=DATA)
            assert first != second
            with chroma_releases.get("{NEW}").persistent(first) as client:
                col = client.get_collection("docs")
                assert col.metadata == {{"hnsw:space": "cosine"}}
                assert sorted(col.get(where={{"n": {{"$gte": 2}}}})["ids"]) == ["b"]
                col.delete(ids=["a"])
            with chroma_releases.get("{NEW}").persistent(second) as client:
                assert client.get_collection("docs").count() == 2  # the first copy's change did not leak
    """)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


@pytest.mark.slow
def test_a_seed_that_does_not_import_in_the_old_release_fails_in_one_line(pytester):
    pytester.makepyfile(f"""
        def test_seeded(chroma_store_from):
            chroma_store_from("{OLD}", seed="no_such_module:seed")
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*seed 'no_such_module:seed' does not import in chromadb {OLD}*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    "args, says",
    [
        (["--chroma-compat", "--chroma-from", "9.9.9", "--chroma-to", NEW], "unknown chromadb release '9.9.9'"),
        (["--chroma-compat", "--chroma-from", OLD], "--chroma-to is not given and no chromadb is installed here"),
    ],
)
def test_bad_configuration_is_one_line_at_startup(pytester, args, says):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert says in result.stderr.str() and "Traceback" not in result.stderr.str()


def test_unknown_release_in_a_marker_is_a_usage_error(pytester):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.chroma_versions("0.4.99")
        def test_x(chroma_release): pass
    """)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    out = result.stdout.str()
    assert "chroma_versions on test_x: unknown chromadb release '0.4.99'" in out and "Traceback" not in out


@pytest.mark.slow
def test_built_in_checks_are_collected_with_chroma_compat(pytester):
    pytester.makepyfile("def test_users_own(): pass")
    result = pytester.runpytest_subprocess(
        "--chroma-compat",
        "--chroma-from",
        MID,
        "--chroma-to",
        "1.0.21",
        "--chroma-examples",
        "2",
        "--chroma-seed",
        "1",
        "-v",
    )
    result.assert_outcomes(passed=5)
    out = result.stdout.str()
    for name in ("round_trip_in_place", "round_trip_export_import", "round_trip_unflushed_log", "contracts_crossed"):
        assert f"test_chroma_{name} PASSED" in out
    assert f"pair under test: chromadb {MID} -> 1.0.21" in out
    assert "contracts this upgrade crosses" in out and "list-collections-objects" in out


def test_a_failing_check_raises_one_failure_type_with_sections(pytester):
    pytester.makepyfile("from pytest_chroma_compat.plugin.pair_checks import test_chroma_round_trip_in_place  # noqa")
    result = pytester.runpytest_subprocess(
        "--chroma-from", NEW, "--chroma-to", OLD, "--chroma-examples", "1", "--chroma-seed", "1"
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "ChromaCompatFailure" in out
    for section in (f"pair: chromadb {NEW} -> {OLD}", "path: in-place", "check: ", "reproduce: chroma-compat"):
        assert section in out, section
    # the check line names the failing check (a known shape runs first, so it may be named too) and its evidence
    checks = [ln for ln in out.splitlines() if ln.startswith("check: ")]
    assert checks and all("open: chromadb" in c and "could not read the migrated store" in c for c in checks), checks


@pytest.mark.slow
def test_works_under_xdist(pytester):
    pytester.makepyfile(f"""
        import pytest
        DATA = {{"docs": {{"ids": ["a"], "embeddings": [[1.0, 0.0]]}}}}

        @pytest.mark.parametrize("n", range(4))
        def test_each_worker_gets_its_copy(chroma_store_from, chroma_releases, n):
            path = chroma_store_from("{MID}", data=DATA)
            with chroma_releases.get("{MID}").persistent(path) as client:
                client.get_collection("docs").add(ids=[f"w{{n}}"], embeddings=[[0.0, 1.0]])
                assert client.get_collection("docs").count() == 2
    """)
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=4)


@pytest.mark.slow
def test_the_example_receipt_app_suite_passes_with_todays_chromadb(tmp_path):
    """A user's virtualenv: pip install pytest-chroma-compat chromadb==<current>; the example suite."""
    from pytest_chroma_compat.engine import envs

    venv = tmp_path / "venv"
    uv = envs._uv()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            f"chromadb=={NEW}",
            "pytest",
            "-e",
            str(ROOT),
        ],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV"))}
    # its stores under our tmp_path, removed with it: the example's own pytest would keep them in /tmp
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-v",
            "--basetemp",
            str(tmp_path / "basetemp"),
        ],
        cwd=ROOT / "examples" / "receipt_app",
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for version in (OLD, MID, "1.0.21"):
        assert f"test_old_receipts_answer_the_same_queries[chromadb-{version}] PASSED" in proc.stdout
