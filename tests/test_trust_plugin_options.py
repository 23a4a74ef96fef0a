"""Every ``--chroma-*`` option is checked once, at start-up: a bad value is one ``pytest.UsageError``
(exit 4) naming the option, the value and what is accepted, before a test runs (plugin/options.py).

Before, ``--chroma-examples=abc`` raised a raw ValueError in every round trip, and
``--chroma-to 0.1.0`` or ``--chroma-versions=1.5.9,garbage`` were accepted silently by a run that
did not need them. Real pytest sessions in subprocesses (pytester), a tiny suite each.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest

def test_plain():
    pass

@pytest.mark.chroma_versions()
def test_marked(chroma_version):
    pass
"""


@pytest.mark.parametrize(
    "args, says",
    [
        (["--chroma-examples=abc"], "--chroma-examples='abc' is not accepted: a whole number from 1 to 100000"),
        (["--chroma-examples=-1"], "--chroma-examples='-1' is not accepted: a whole number from 1 to 100000"),
        (["--chroma-examples=10000000"], "--chroma-examples='10000000' is not accepted"),
        (["--chroma-seed=xyz"], "--chroma-seed='xyz' is not accepted: a whole number from 0 to"),
        (["--chroma-profile=fast"], "--chroma-profile='fast' is not accepted: one of ci, dev, thorough"),
        (
            ["--chroma-versions=1.5.9,garbage"],
            "--chroma-versions='garbage' is not accepted: a release of the catalogue",
        ),
        (["--chroma-versions= , "], "--chroma-versions=' , ' is not accepted: one or more releases"),
        (["--chroma-to", "0.1.99"], "--chroma-to='0.1.99' is not accepted: a release of the catalogue"),
        (["--chroma-to", "0.1.0"], "no worker adapter covers chromadb 0.1.0"),
        (["--chroma-from", "0.3.0"], "--chroma-from='0.3.0' is not accepted: a release that installs on this Python"),
        (["--chroma-from", "9.9.9"], "unknown chromadb release '9.9.9'"),
        (
            ["--chroma-snapshot-endpoint-url", "minio:9000"],
            "--chroma-snapshot-endpoint-url='minio:9000' is not accepted: an http:// or https:// URL",
        ),
        (["--chroma-snapshot-collections", ","], "--chroma-snapshot-collections=',' is not accepted"),
        (
            ["--chroma-snapshot-filters", "no-such-filters.json"],
            "--chroma-snapshot-filters='no-such-filters.json' is not accepted",
        ),
    ],
)
def test_a_bad_option_value_is_one_usage_error_at_start_up(pytester, args, says):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    assert says in err and "Traceback" not in err + result.stdout.str(), err
    assert "passed" not in result.stdout.str()  # stopped before any test ran


def test_the_same_check_reads_the_ini_twin(pytester):
    pytester.makepyfile(SUITE)
    pytester.makeini("[pytest]\nchroma_compat_examples = many\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "chroma_compat_examples (ini)='many' is not accepted" in result.stderr.str()


def test_good_values_pass_the_check_and_the_suite_runs(pytester):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--chroma-examples=3",
        "--chroma-seed=random",
        "--chroma-profile=dev",
        "--chroma-versions=1.5,0.6.3",
        "--chroma-to=latest",
        "--chroma-from=auto",
        "--co",
        "-q",
    )
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(["*test_marked?chromadb-1.5.9?*", "*test_marked?chromadb-0.6.3?*"])
