"""A matrix's plan and shard result files are input from elsewhere (a repository, a fork's CI job):
nothing in them decides where the merge writes, an edit is refused, every count has a bound.

One real plan of 1.0.21 -> 1.5.9 (export-import, one example) in two shards, shard 1 run for real
(about 7 s on warm environments), shard 2 empty; every attack edits a copy of those files, as an
attacker would, and runs the real `chroma-compat` in a subprocess.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chroma_compat.common import plain_names
from pytest_chroma_compat.roundtrip import timings


def cli(*args: str, cwd: Path, env: dict | None = None, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    def cap() -> None:  # a bound the OS enforces: an unbounded allocation dies here instead of swapping
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
        preexec_fn=cap if limit_bytes else None,
    )


def one_line_exit_2(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    base = tmp_path_factory.mktemp("matrix-trust")
    env = {"CHROMA_COMPAT_TIMINGS": str(base / "timings.json")}
    made = cli("matrix", *plan_args(), cwd=base, env=env)
    assert made.returncode == 0, made.stderr
    for k in (1, 2):
        ran = cli("matrix", "--plan-file", "plan.json", "--shard", str(k), "--json", f"r{k}.json", cwd=base, env=env)
        assert ran.returncode == 0, ran.stderr
    return base, env


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def save(path: Path, doc: dict, reseal: bool = True) -> Path:
    """An attacker recomputes the digest (it is no signature): the checks behind it must hold too."""
    path.write_text(json.dumps(plain_names.sealed(doc) if reseal else doc))
    return path


def evil_case(name: str, npy: str) -> dict:
    return {
        "path": "/somewhere/case.json",
        "name": name,
        "json_b64": base64.b64encode(b"{}").decode(),
        "npy": npy,
        "npy_b64": base64.b64encode(b"owned").decode(),
    }


@pytest.mark.parametrize(
    "name,npy",
    [
        ("../../escape.json", "ok.npy"),
        ("ok.json", "../../escape.npy"),
        ("ABS.json", "ok.npy"),
        ("ok.json", "sub/ok.npy"),
        ("..", "ok.npy"),
    ],
    ids=["dotdot-case", "dotdot-npy", "absolute-case", "folder-npy", "dotdot-alone"],
)
def test_a_result_naming_a_case_outside_its_folder_writes_nothing(shards, tmp_path, name, npy):
    base, env = shards
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    escape_abs = tmp_path / "abs-escape.json"
    name = str(escape_abs) if name == "ABS.json" else name
    doc = load(base / "r1.json")
    doc["pairs"][0]["cases"].append(evil_case(name, npy))
    save(work / "r1.json", doc)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = cli("matrix", "--merge", "r1.json", "--markdown", "out/m.md", cwd=work, env=env)
    line = one_line_exit_2(proc)
    assert "not a plain file name" in line, line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing at all was written
    assert not escape_abs.exists()


def test_an_edited_result_is_refused(shards, tmp_path):
    base, env = shards
    doc = load(base / "r1.json")
    doc["pairs"][0]["cell"]["safe"] = not doc["pairs"][0]["cell"]["safe"]
    save(tmp_path / "r1.json", doc, reseal=False)
    shutil.copy(base / "r2.json", tmp_path / "r2.json")
    line = one_line_exit_2(cli("matrix", "--merge", "r1.json", "r2.json", "--json", "m.json", cwd=tmp_path, env=env))
    assert "was edited" in line and not (tmp_path / "m.json").exists(), line


def test_a_resealed_result_with_a_foreign_pair_or_shard_is_refused(shards, tmp_path):
    base, env = shards
    doc = load(base / "r1.json")
    doc["pairs"][0]["cell"]["old"] = "0.4.24"  # a pair the plan never had
    save(tmp_path / "r1.json", doc)
    shutil.copy(base / "r2.json", tmp_path / "r2.json")
    assert "not in its layout" in one_line_exit_2(
        cli("matrix", "--merge", "r1.json", "r2.json", "--json", "m.json", cwd=tmp_path, env=env)
    )
    doc = load(base / "r1.json")
    doc["shard"], doc["shards"] = 100000000, 100000000
    save(tmp_path / "r1.json", doc)
    assert "shards must be a whole number from 1 to 256" in one_line_exit_2(
        cli("matrix", "--merge", "r1.json", "--json", "m.json", cwd=tmp_path, env=env)
    )


def test_an_edited_plan_is_refused_not_an_index_error(shards, tmp_path):
    base, env = shards
    plan = load(base / "plan.json")
    plan["shards"] = 3  # before: --shard 3 passed the bound and indexed by_shard[2] (IndexError, exit 3)
    save(tmp_path / "plan.json", plan, reseal=False)
    line = one_line_exit_2(
        cli("matrix", "--plan-file", "plan.json", "--shard", "3", "--json", "r.json", cwd=tmp_path, env=env)
    )
    assert "was edited" in line and not (tmp_path / "r.json").exists(), line
    save(tmp_path / "plan.json", plan)  # the digest recomputed: the layout check still holds
    line = one_line_exit_2(
        cli("matrix", "--plan-file", "plan.json", "--shard", "3", "--json", "r.json", cwd=tmp_path, env=env)
    )
    assert "by_shard must list 3 shard(s)" in line, line
    plan = load(base / "plan.json")
    plan["by_shard"][1]["pairs"] = list(plan["by_shard"][0]["pairs"])  # the pair run twice
    save(tmp_path / "plan.json", plan)
    assert "listed twice" in one_line_exit_2(
        cli("matrix", "--plan-file", "plan.json", "--shard", "2", "--json", "r.json", cwd=tmp_path, env=env)
    )
    plan = load(base / "plan.json")
    plan["inputs"]["versions"] = ["1.0.21", "../../x"]
    plan["plan_id"] = "0"
    save(tmp_path / "plan.json", plan)
    assert "unknown chromadb release '../../x'" in one_line_exit_2(
        cli("matrix", "--plan-file", "plan.json", "--shard", "1", "--json", "r.json", cwd=tmp_path, env=env)
    )


def plan_args(**override: str) -> list[str]:
    given = {
        "--versions": "1.0.21,1.5.9",
        "--paths": "export-import",
        "--examples": "1",
        "--seed": "0",
        "--shards": "2",
        **{"--" + k.replace("_", "-"): v for k, v in override.items()},
    }
    return ["--upgrades-only", "--plan", "--json", "plan.json", *[x for kv in given.items() for x in kv]]


@pytest.mark.parametrize(
    "option,value",
    [("shards", "100000000"), ("shards", "0"), ("examples", "1000000000"), ("max_shrinks", "1000000000")],
)
def test_counts_from_options_have_an_upper_bound(tmp_path, option, value):
    """Before: --shards 100000000 allocated a list per shard until the memory ran out. Capped at 1 GB
    of address space here, the refusal must come first."""
    proc = cli(
        "matrix",
        *plan_args(**{option: value}),
        cwd=tmp_path,
        env={"CHROMA_COMPAT_TIMINGS": str(tmp_path / "t.json")},
        limit_bytes=2**30,
    )
    line = one_line_exit_2(proc)
    flag = "--" + option.replace("_", "-")
    assert f"{flag} must be a whole number" in line and not (tmp_path / "plan.json").exists(), line


def test_a_damaged_timings_cache_never_steers_or_stops_a_plan(tmp_path):
    cache = tmp_path / "timings.json"
    cache.write_text(
        json.dumps(
            {
                "format": 1,
                "timings": {
                    "1.0.21": {"1.5.9": {"export-import": ["x", 1e300, -5, True]}, "junk": 7},
                    "0.4.24": [1, 2],
                },
            }
        )
    )
    assert timings.load(cache) == {}  # nothing there is a duration
    proc = cli("matrix", *plan_args(), cwd=tmp_path, env={"CHROMA_COMPAT_TIMINGS": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert timings.record([("1.0.21", "1.5.9", "export-import", 2.0)], cache) == 1
    assert timings.load(cache)[("1.0.21", "1.5.9", "export-import")] == 2.0


def test_a_case_file_whose_npy_names_another_folder_is_not_read(tmp_path):
    """pack_cases reads a case's .npy by the name inside the case file: a name with a folder would
    pack any file on the runner into a result artifact."""
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.roundtrip.matrix import shard_run

    secret = tmp_path / "secret.npy"
    secret.write_bytes(b"private")
    cases = tmp_path / "cases"
    cases.mkdir()
    case = cases / "case-x.json"
    case.write_text(json.dumps({"npy": "../secret.npy"}))
    with pytest.raises(CompatError, match="not a plain file name"):
        shard_run.pack_cases([str(case)])


def test_replay_of_a_case_whose_npy_names_another_folder_reads_nothing_there(tmp_path):
    """`chroma-compat replay` of a case file from an issue: its .npy is read beside it, or refused."""
    (tmp_path / "secret.npy").write_bytes(b"private")
    cases = tmp_path / "cases"
    cases.mkdir()
    case = cases / "case-x.json"
    case.write_text(
        json.dumps(
            {
                "npy": "../secret.npy",
                "arrays": [],
                "ops": [],
                "queries": [],
                "filters": [],
                "old": "1.0.21",
                "new": "1.5.9",
                "path": "export-import",
            }
        )
    )
    line = one_line_exit_2(cli("replay", str(case), cwd=tmp_path))
    assert "not a plain file name" in line, line


def test_check_and_env_prune_bound_their_numbers_too(tmp_path):
    """`check --examples 1000000000` would run for days; `env prune --older-than -1` removed every
    environment (all were unused for more than -1 days), and nan removed none without a word."""
    line = one_line_exit_2(cli("check", "--from", "1.0.21", "--to", "1.5.9", "--examples", "1000000000", cwd=tmp_path))
    assert "--examples must be a whole number from 1 to 100000" in line, line
    home = {"CHROMA_COMPAT_HOME": str(tmp_path / "home")}
    for bad in ("-1", "nan", "inf"):
        line = one_line_exit_2(cli("env", "prune", "--older-than", bad, cwd=tmp_path, env=home))
        assert "--older-than must be a number of days, 0 or more" in line, line
