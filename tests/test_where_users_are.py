"""The pre-commit hook and the GitHub Action run the real scan and validate where users already are.

Nobody runs GitHub or pre-commit's own machinery in the default run, so both would rot unnoticed: a
hook entry that is not a command, args in the wrong order, a step that swallows the exit code, a
SARIF path the upload step does not read. The hook's manifest is run as pre-commit runs it (entry,
then the staged file names) and, in the slow run, through ``pre-commit try-repo`` itself; the action
is checked against GitHub's schema and its shell steps are run as its runner would run them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .test_ci_examples import broken_copy, schema_errors, shell

ROOT = Path(__file__).resolve().parent.parent
HOOKS = ROOT / ".pre-commit-hooks.yaml"
ACTION = ROOT / "action.yml"

PLANTED = """import chromadb

client = chromadb.PersistentClient(path="db")
receipts = client.get_or_create_collection("receipts")
rows = receipts.get(where={})
"""
CLEAN = """import chromadb

client = chromadb.PersistentClient(path="db")
receipts = client.get_or_create_collection("receipts")
rows = receipts.get()
"""


def sample_repo(root: Path, code: str, versions: tuple[str, str] | None = ("0.4.24", "1.0.0")) -> Path:
    """A user's repository: one module, and the releases in its pyproject.toml (or none)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(code)
    if versions:
        (root / "pyproject.toml").write_text(
            f'[project]\nname = "app"\nversion = "0"\n\n[tool.chroma-compat.scan]\nfrom = "{versions[0]}"\n'
            f'to = "{versions[1]}"\n'
        )
    return root


def hook() -> dict:
    [only] = yaml.safe_load(HOOKS.read_text())
    return only


def run_hook_as_pre_commit(repo: Path, args: list[str] = ()) -> subprocess.CompletedProcess:
    """What pre-commit executes for a `language: python` hook: entry, args, then the file names."""
    entry = shlex.split(hook()["entry"])
    assert entry[0] == "chroma-compat", "the hook's entry must be the console script pip installs"
    command = [str(Path(sys.executable).parent / entry[0]), *entry[1:], *args, "app.py"]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120)


# -- the pre-commit hook -----------------------------------------------------------------------------------


def test_the_hook_manifest_is_a_python_hook_on_python_files():
    only = hook()
    assert only["id"] == "chroma-compat-scan" and only["language"] == "python"
    assert only["types"] == ["python"] and "args" not in only  # the releases are the project's


def test_the_hook_flags_a_planted_empty_where_from_the_project_s_versions(tmp_path):
    done = run_hook_as_pre_commit(sample_repo(tmp_path / "repo", PLANTED))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "app.py:5:" in done.stdout and "empty-filters-rejected" in done.stdout


def test_the_hook_passes_clean_code_and_older_targets(tmp_path):
    assert run_hook_as_pre_commit(sample_repo(tmp_path / "clean", CLEAN)).returncode == 0
    # where={} is refused from 0.5.17 on: an upgrade that stays below it touches nothing
    done = run_hook_as_pre_commit(sample_repo(tmp_path / "older", PLANTED, ("0.4.24", "0.5.0")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_hook_args_win_over_the_project_s_versions(tmp_path):
    repo = sample_repo(tmp_path / "repo", PLANTED, ("0.4.24", "0.5.0"))
    assert run_hook_as_pre_commit(repo, ["--to", "1.0.0"]).returncode == 1


def test_the_hook_without_versions_is_one_line_exit_2(tmp_path):
    done = run_hook_as_pre_commit(sample_repo(tmp_path / "repo", PLANTED, versions=None))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "[tool.chroma-compat.scan]" in done.stderr


def test_a_malformed_pyproject_is_one_line_exit_2(tmp_path):
    repo = sample_repo(tmp_path / "repo", PLANTED, versions=None)
    (repo / "pyproject.toml").write_text("[tool.chroma-compat.scan]\nfrom = 0.4\n")
    done = run_hook_as_pre_commit(repo)
    assert done.returncode == 2 and "pyproject.toml" in done.stderr
    assert "Traceback" not in done.stderr


def hook_repository(destination: Path) -> Path:
    """This repository as pre-commit clones it: its tracked and new files, committed."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            (destination / name).write_bytes((ROOT / name).read_bytes())
    git_commit(destination)
    return destination


def git_commit(repo: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "snapshot"]):
        subprocess.run(command, cwd=repo, check=True, capture_output=True, env=env)


@pytest.mark.slow
def test_pre_commit_try_repo_flags_a_planted_empty_where(tmp_path):
    """pre-commit itself installs this repository's hook in its own environment and runs it (~40 s)."""
    repo = sample_repo(tmp_path / "user", PLANTED)
    git_commit(repo)
    hooks = hook_repository(tmp_path / "hooks")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "chroma-compat-scan", "--all-files"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "app.py:5:" in done.stdout and "empty-filters-rejected" in done.stdout
    (repo / "app.py").write_text(CLEAN)
    git_commit(repo)
    again = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "chroma-compat-scan", "--all-files"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert again.returncode == 0, again.stdout + again.stderr


# -- the GitHub Action -------------------------------------------------------------------------------------


def action_steps(path: Path = ACTION) -> dict[str, dict]:
    return {s["id"]: s for s in yaml.safe_load(path.read_text())["runs"]["steps"] if "id" in s}


def test_the_action_matches_github_s_schema(tmp_path):
    assert schema_errors(ACTION, "vendor.github-actions") == ""
    broken = broken_copy(tmp_path, ACTION, "  using: composite", "  using: compost")
    assert schema_errors(broken, "vendor.github-actions") != ""


def step_env(step: dict, inputs: dict[str, str], outputs: Path, **extra: str) -> dict[str, str]:
    """A step's env block with `${{ inputs.X }}` as the runner would expand it."""
    env = {}
    for key, value in step.get("env", {}).items():
        value = str(value).strip()
        if value.startswith("${{ inputs.") and value.endswith("}}"):
            value = inputs.get(value[len("${{ inputs.") : -2].strip(), "")
        env[key] = value
    return {**env, "GITHUB_OUTPUT": str(outputs), **extra}


def outputs_of(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()) if path.exists() else {}


def test_the_action_scan_step_writes_sarif_and_the_verdict_step_fails(tmp_path):
    repo = sample_repo(tmp_path / "repo", PLANTED, versions=None)
    steps = action_steps()
    inputs = {"from": "0.4.24", "to": "1.0.0", "paths": "app.py", "sarif-file": "out.sarif", "extra-args": ""}
    out = tmp_path / "scan-output"
    script = steps["scan"]["run"]
    assert "${{" not in script, "the scan step must read its inputs from the environment"
    done = shell(script, repo, step_env(steps["scan"], inputs, out))
    assert done.returncode == 0, done.stderr  # findings are the verdict step's to fail on
    assert outputs_of(out) == {"exit-code": "1"}
    sarif = json.loads((repo / "out.sarif").read_text())
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "empty-filters-rejected"
    assert "app.py:5:" in done.stdout  # the text report in the log, for a reader of the job
    verdict = steps["verdict"]
    assert shell(verdict["run"], repo, {"CODE": "1", "FAIL": "true"}).returncode == 1
    assert shell(verdict["run"], repo, {"CODE": "1", "FAIL": "false"}).returncode == 0
    assert shell(verdict["run"], repo, {"CODE": "0", "FAIL": "true"}).returncode == 0


def test_the_action_scan_step_stops_on_bad_input(tmp_path):
    repo = sample_repo(tmp_path / "repo", PLANTED, versions=None)
    steps = action_steps()
    out = tmp_path / "scan-output"
    done = shell(steps["scan"]["run"], repo, step_env(steps["scan"], {"paths": "app.py", "sarif-file": "o.sarif"}, out))
    assert done.returncode == 2 and outputs_of(out) == {"exit-code": "2"}


def test_the_action_upload_reads_the_file_the_scan_wrote():
    doc = yaml.safe_load(ACTION.read_text())
    upload = [s for s in doc["runs"]["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    assert [u["with"]["sarif_file"] for u in upload] == ["${{ inputs.sarif-file }}"]
    assert action_steps()["scan"]["env"]["SARIF"] == "${{ inputs.sarif-file }}"


def test_the_action_validate_step_needs_a_snapshot(tmp_path):
    steps = action_steps()
    out = tmp_path / "validate-output"
    done = shell(steps["validate"]["run"], tmp_path, step_env(steps["validate"], {"to": "1.0.0"}, out))
    assert done.returncode == 2 and outputs_of(out) == {"exit-code": "2"}
    assert "snapshot" in done.stderr


def test_the_action_validate_step_fails_on_a_store_the_upgrade_breaks(tmp_path):
    """finding 1 on a real 0.4.24 store: validate's exit 1 reaches the output and fails the verdict step."""
    from fixtures import stores
    from pytest_chroma_compat.engine.client import Release

    with Release("0.4.24") as release:
        store = stores.orphaned_fulltext_row(release, tmp_path / "store")
    steps = action_steps()
    out = tmp_path / "validate-output"
    done = shell(
        steps["validate"]["run"],
        tmp_path,
        step_env(steps["validate"], {"to": "1.5.9", "snapshot": str(store), "extra-args": "--quiet"}, out),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr  # the verdict step fails, not the validate step
    assert outputs_of(out) == {"exit-code": "1"}, done.stdout + done.stderr
    assert shell(steps["verdict"]["run"], tmp_path, {"CODE": "1", "FAIL": "true"}).returncode == 1


def test_the_action_validate_step_passes_refusals_through(tmp_path):
    """A snapshot that is not a store: validate's own one-line refusal and exit 2 reach the output."""
    steps = action_steps()
    (tmp_path / "not-a-store").mkdir()
    (tmp_path / "not-a-store" / "notes.txt").write_text("hello")
    out = tmp_path / "validate-output"
    done = shell(
        steps["validate"]["run"], tmp_path, step_env(steps["validate"], {"to": "1.0.0", "snapshot": "not-a-store"}, out)
    )
    assert done.returncode == 2 and outputs_of(out) == {"exit-code": "2"}
    assert "Traceback" not in done.stderr
