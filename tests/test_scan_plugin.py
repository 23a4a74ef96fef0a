"""pytest --chroma-scan: each finding a failing test (or a warning with --chroma-scan-warn)."""

from __future__ import annotations

pytest_plugins = ["pytester"]

APP = """
import chromadb

client = chromadb.PersistentClient(path="store")
col = client.get_collection("docs")
size = client.max_batch_size
rows = col.get(where={})
"""


def test_chroma_scan_makes_each_finding_a_failing_test(pytester):
    pytester.makepyfile(app=APP)
    result = pytester.runpytest_subprocess(
        "--chroma-scan", "app.py", "--chroma-from", "0.4.24", "--chroma-to", "1.5.9", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*test_scan*app.py:5:max-batch-size-method*", "*test_scan*app.py:6:empty-filters-rejected*"]
    )
    result.stdout.fnmatch_lines(["*fix: Call client.get_max_batch_size()*"])


def test_chroma_scan_warn_reports_findings_as_warnings(pytester):
    pytester.makepyfile(app=APP)
    result = pytester.runpytest_subprocess(
        "--chroma-scan",
        "app.py",
        "--chroma-from",
        "0.4.24",
        "--chroma-to",
        "1.5.9",
        "--chroma-scan-warn",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines(["*ChromaUpgradeWarning*max-batch-size-method*"])


def test_chroma_scan_with_no_findings_passes_one_test(pytester):
    pytester.makepyfile(app=APP)
    result = pytester.runpytest_subprocess(
        "--chroma-scan", "app.py", "--chroma-from", "0.5.17", "--chroma-to", "1.5.9", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 passed*"])


def test_chroma_scan_of_a_missing_path_is_a_usage_error(pytester):
    result = pytester.runpytest_subprocess(
        "--chroma-scan", "nowhere", "--chroma-from", "0.4.24", "--chroma-to", "1.5.9", "-p", "no:cacheprovider"
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--chroma-scan: scan: no such file or directory: nowhere*"])
