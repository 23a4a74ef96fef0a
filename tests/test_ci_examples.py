"""The CI examples in examples/ci are valid for their CI systems and are driven by a real plan.

Nobody runs a GitHub or GitLab pipeline on this machine, so an example would rot unnoticed: a
renamed plan key, a matrix field the plan does not have, a snippet reading the wrong shard. Each
file is checked against its CI system's published schema (vendored by check-jsonschema, so no
network), by actionlint where it is installed, and by running its own shell steps against a plan
written by the real ``chroma-compat matrix --plan``. Every check is also shown rejecting a broken
copy, so none of them passes by default.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "ci"
GITHUB = EXAMPLES / "github-actions.yml"
GITLAB = EXAMPLES / "gitlab-ci.yml"
# two releases, three shards: shards 1 and 2 get one pair each, shard 3 none, so reading the
# wrong shard gives other releases
PLAN_ENV = {"VERSIONS": "1.0.21,1.5.9", "SHARDS": "3"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def broken_copy(tmp_path: Path, original: Path, old: str, new: str) -> Path:
    """The example with one deliberate mistake (the text must be there: a stale break proves nothing)."""
    text = original.read_text()
    assert old in text, f"{original.name} no longer contains {old!r}: update this test's break"
    copy = tmp_path / f"broken-{original.name}"
    copy.write_text(text.replace(old, new, 1))
    return copy


def shell(script: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """A step's script as its runner does (GitHub's default ``bash -eo pipefail``), with this Python's
    ``chroma-compat`` first on PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PATH": path, **env},
    )


# -- schemas and linters ---------------------------------------------------------------------------------


def schema_errors(path: Path, schema: str) -> str:
    """check-jsonschema's complaint about ``path`` ("" when valid); its schemas are vendored."""
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


SCHEMAS = [
    # file, schema, a break the schema must reject
    pytest.param(
        GITHUB,
        "vendor.github-workflows",
        ("    runs-on: ubuntu-latest\n    timeout-minutes", "    timeout-minutes"),
        id="github",
    ),
    pytest.param(
        EXAMPLES.parent.parent / ".github" / "workflows" / "tests.yml",
        "vendor.github-workflows",
        ("    runs-on: ubuntu-latest\n    timeout-minutes: 60", "    timeout-minutes: 60"),
        id="own-ci",
    ),
    pytest.param(
        GITLAB,
        "vendor.gitlab-ci",
        ("merge:\n  stage: merge\n  when: always", "merge:\n  stage: merge\n  when: later"),
        id="gitlab",
    ),
]


@pytest.mark.parametrize("path, schema, mistake", SCHEMAS)
def test_the_example_matches_its_ci_schema(path, schema, mistake, tmp_path):
    assert schema_errors(path, schema) == ""
    assert schema_errors(broken_copy(tmp_path, path, *mistake), schema) != ""


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not on PATH (no PyPI wheel carries it)")
def test_the_github_workflow_passes_actionlint(tmp_path):
    def lint(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["actionlint", "-no-color", str(path)], capture_output=True, text=True, timeout=120)

    done = lint(GITHUB)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = broken_copy(tmp_path, GITHUB, "needs.plan.outputs.matrix", "needs.plann.outputs.matrix")
    assert lint(broken).returncode != 0


# -- the real plan drives the pipelines ---------------------------------------------------------------------


def github_jobs(path: Path = GITHUB) -> dict:
    return yaml.safe_load(path.read_text())["jobs"]


def step(job: dict, step_id: str) -> dict:
    found = [s for s in job["steps"] if s.get("id") == step_id]
    assert found, f"no step with id {step_id!r}"
    return found[0]


def run_plan_step(jobs: dict, cwd: Path) -> tuple[dict, dict]:
    """The plan job's plan step, run for real: the plan it wrote, and the outputs it set."""
    script = step(jobs["plan"], "plan")["run"]
    assert "${{" not in script, "the plan step's script must read its inputs from the environment"
    outputs = cwd / "github-output"
    done = shell(script, cwd, {**PLAN_ENV, "GITHUB_OUTPUT": str(outputs)})
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return json.loads((cwd / "plan.json").read_text()), lines


def workflow_problems(jobs: dict, plan: dict, outputs: dict) -> list[str]:
    """What in the shard and merge jobs the plan and the plan job's outputs do not back up."""
    problems = []
    if jobs["plan"].get("outputs", {}).get("matrix", "").replace(" ", "") != "${{steps.plan.outputs.matrix}}":
        problems.append("the plan job's output `matrix` is not the plan step's")
    shard = jobs["shard"]
    if str(shard["strategy"]["matrix"]).replace(" ", "") != "${{fromJSON(needs.plan.outputs.matrix)}}":
        problems.append("the shard job's matrix is not fromJSON of the plan job's output")
    try:
        matrix = json.loads(outputs.get("matrix", ""))
    except json.JSONDecodeError:
        return problems + [f"the plan step's output `matrix` is not JSON: {outputs.get('matrix')!r}"]
    if not isinstance(matrix, dict) or matrix.get("include") != plan["matrix"]["include"]:
        return problems + [f"the plan step's output `matrix` is not the plan's .matrix: {matrix!r}"]
    used = {key for expr in EXPRESSION.findall(json.dumps(shard)) for key in re.findall(r"\bmatrix\.([\w-]+)", expr)}
    for entry in matrix["include"]:
        problems += [f"shard {entry['shard']}: matrix.{key} is not in the plan" for key in sorted(used - entry.keys())]
    uploaded = step_with(shard, "actions/upload-artifact")["with"]
    pattern = step_with(jobs["merge"], "actions/download-artifact")["with"].get("pattern", "")
    for entry in matrix["include"]:
        name = EXPRESSION.sub(lambda m: str(entry[m.group(1).strip().split(".")[1]]), uploaded["name"])  # noqa: B023
        if not fnmatch.fnmatch(name, pattern):
            problems.append(f"merge downloads {pattern!r}, shard {entry['shard']} uploads {name!r}")
    return problems


def step_with(job: dict, action: str) -> dict:
    return [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")][-1]


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> tuple[dict, dict]:
    return run_plan_step(github_jobs(), tmp_path_factory.mktemp("github-plan"))


def test_the_plan_drives_the_github_workflow(planned):
    plan, outputs = planned
    assert plan["shards"] == 3 and [e["shard"] for e in plan["matrix"]["include"]] == [1, 2, 3]
    assert workflow_problems(github_jobs(), plan, outputs) == []


@pytest.mark.parametrize(
    "old, new",
    [
        ("matrix.releases }}", "matrix.release }}"),  # a key the plan does not have
        ("jq -c .matrix plan.json", "jq -c .shards plan.json"),  # the output is not the matrix object
        ("matrix: ${{ steps.plan.outputs.matrix }}", "matrix: ${{ steps.plan.outputs.plan }}"),
        ("pattern: shard-*", "pattern: results-*"),  # merge would download nothing
    ],
)
def test_a_workflow_the_plan_does_not_drive_is_caught(old, new, tmp_path, planned):
    jobs = github_jobs(broken_copy(tmp_path, GITHUB, old, new))
    plan, outputs = run_plan_step(jobs, tmp_path) if "jq" in old else planned
    assert workflow_problems(jobs, plan, outputs) != []


def test_the_shard_cache_key_holds_no_comma(tmp_path):
    """actions/cache refuses a key with a comma, and a shard's releases are a comma list."""
    script = step(github_jobs()["shard"], "key")["run"]
    out = tmp_path / "github-output"
    done = shell(script, tmp_path, {"RELEASES": "1.0.0,1.0.21,1.5.9", "GITHUB_OUTPUT": str(out)})
    assert done.returncode == 0, done.stderr
    key = out.read_text().strip().split("=", 1)[1]
    assert "," not in key and len(key) < 200
    other = shell(script, tmp_path, {"RELEASES": "1.0.0,1.5.9", "GITHUB_OUTPUT": str(tmp_path / "other")})
    assert other.returncode == 0, other.stderr
    assert (tmp_path / "other").read_text().strip().split("=", 1)[1] != key  # keyed on the release set


def gitlab_releases_snippet(path: Path = GITLAB) -> str:
    lines = [s for s in yaml.safe_load(path.read_text())["shard"]["script"] if s.lstrip().startswith("RELEASES=")]
    assert len(lines) == 1, "the shard job must set RELEASES in one script item"
    return lines[0]


def gitlab_releases(snippet: str, cwd: Path, index: int, total: int) -> subprocess.CompletedProcess:
    return shell(snippet + '\nprintf "%s" "$RELEASES"', cwd, {"CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(total)})


@pytest.fixture
def gitlab_plan(tmp_path) -> dict:
    """plan.json as the GitLab plan job writes it, in tmp_path."""
    [script] = yaml.safe_load(GITLAB.read_text())["plan"]["script"]
    done = shell(script, tmp_path, PLAN_ENV)
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "plan.json").read_text())


def test_the_gitlab_shard_reads_its_own_releases(gitlab_plan, tmp_path, planned):
    # the two examples ask for the same plan (estimates, so the layout, follow timings that other runs update)
    assert gitlab_plan["plan_id"] == planned[0]["plan_id"]
    include = gitlab_plan["matrix"]["include"]
    assert len({e["releases"] for e in include}) > 1, "this plan cannot tell shards apart"
    snippet = gitlab_releases_snippet()
    second = gitlab_releases(snippet, tmp_path, 2, 3)
    assert second.returncode == 0, second.stderr
    assert second.stdout == include[1]["releases"] != ""
    every = [gitlab_releases(snippet, tmp_path, e["shard"], 3).stdout for e in include]
    assert every == [e["releases"] for e in include]


def test_a_gitlab_parallel_other_than_the_plans_shards_stops_the_shard(gitlab_plan, tmp_path):
    done = gitlab_releases(gitlab_releases_snippet(), tmp_path, 2, 20)
    assert done.returncode != 0 and "parallel: 20" in done.stderr


def test_a_gitlab_snippet_reading_the_wrong_shard_is_caught(gitlab_plan, tmp_path):
    broken = broken_copy(tmp_path, GITLAB, 's["shard"] == number', 's["shard"] == number + 1')
    done = gitlab_releases(gitlab_releases_snippet(broken), tmp_path, 2, 3)
    assert done.stdout != gitlab_plan["matrix"]["include"][1]["releases"]


def test_gitlab_parallel_equals_its_shards():
    doc = yaml.safe_load(GITLAB.read_text())
    assert doc["shard"]["parallel"] == int(doc["variables"]["SHARDS"])
