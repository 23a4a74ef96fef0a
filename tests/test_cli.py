"""The command line: exit codes and one-line errors, as documented in the README."""

import pytest

from .conftest import run_cli


@pytest.mark.parametrize(
    "version, says", [("9.9.9", "unknown chromadb release"), ("1.5.3", "yanked"), ("0.2.0", "no worker adapter")]
)
def test_bad_versions_exit_2_with_one_line(version, says):
    proc = run_cli("env", "ensure", version)
    assert proc.returncode == 2
    assert says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_releases_lists_the_catalogue():
    proc = run_cli("releases")
    assert proc.returncode == 0
    assert "0.4.24\t" in proc.stdout and "latest-of-minor" in proc.stdout and "yanked" in proc.stdout


def test_import_never_loads_chromadb_or_numpy():
    import subprocess
    import sys

    code = (
        "import sys, pytest_chroma_compat, pytest_chroma_compat.plugin; "
        "print(sorted(m for m in ('chromadb','numpy','hypothesis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "command", [["check", "--from", "1.5.9", "--to", "1.5.9"], ["matrix", "--versions", "1.5.9,1.5.8"]]
)
def test_bad_examples_exit_2(command):
    """--examples 0 would run nothing and call it a pass: refused before any release starts."""
    proc = run_cli(*command, "--examples", "0")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "chroma-compat: error: --examples must be at least 1, not 0"
