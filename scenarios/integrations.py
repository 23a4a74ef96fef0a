"""``nox -s integrations``: the integrations people use, their own unit tests, under chromadb releases;
writes docs/integrations.md.

For each package (langchain-chroma, llama-index-vector-stores-chroma): the latest sdist from the package
index (``pip download --no-deps --no-binary :all:``), unpacked and never edited; its own tests run by
``chroma-compat run`` under each release with ``--ignore-chromadb-bound`` (the page shows where the
declared range is right), ``--group test`` when the package keeps its test dependencies in
``[dependency-groups]`` and ``--no-sources`` when it has ``[tool.uv.sources]`` (a monorepo path); then,
where a release fails below one that passes, ``bisect --first-good`` over the catalogue between them
names the first release that works. Every command is written on the page as it was run.

    python scenarios/integrations.py [--versions 1.0.21,1.1.0,1.5.9] [--packages langchain-chroma] [--out F]

Default releases: every 1.x release and the last release of each 0.x series.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pytest_chroma_compat.engine import project_envs, releases  # noqa: E402  (neither imports chromadb)

PACKAGES = ("langchain-chroma", "llama-index-vector-stores-chroma")
TEST_DIRS = ("tests/unit_tests", "tests")


def default_versions() -> list[str]:
    from packaging.version import Version

    ones = [v for v in releases.versions() if Version(v).major >= 1]
    zeros = [v for v in releases.latest_per_minor() if Version(v).major == 0]
    return sorted(set(zeros + ones), key=Version)


def download(package: str, into: Path) -> Path:
    """The latest sdist, unpacked: its root folder."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", package, "-d", str(into)],
        check=True,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    sdist = next(into.glob("*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(into, filter="data")
    return next(p for p in into.iterdir() if p.is_dir())


def flags_for(project: Path) -> list[str]:
    data = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    flags = ["--group", "test"] if "test" in (data.get("dependency-groups") or {}) else []
    extras = (data.get("project") or {}).get("optional-dependencies") or {}
    if not flags and "test" in extras:
        flags = ["--extras", "test"]
    if (data.get("tool") or {}).get("uv", {}).get("sources"):
        flags.append("--no-sources")
    return flags


def declared(project: Path) -> str:
    from packaging.requirements import Requirement

    meta = tomllib.loads((project / "pyproject.toml").read_text("utf-8")).get("project") or {}
    for raw in meta.get("dependencies") or []:
        req = Requirement(raw)
        if req.name == "chromadb":
            return str(req.specifier) or "any"
    return "none declared"


def chroma_compat(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", *args], capture_output=True, text=True, cwd=cwd, timeout=6 * 3600
    )


def one(package: str, versions: list[str], work: Path) -> dict:
    project = download(package, work / package)
    name = project.name
    tests = next((d for d in TEST_DIRS if (project / d).is_dir()), None)
    row: dict = {
        "package": package,
        "sdist": name,
        "declared": declared(project),
        "results": [],
        "command": "",
        "bisect": None,
    }
    if tests is None:
        row["note"] = "the sdist ships no tests"
        return row
    flags = flags_for(project)
    report = work / f"{package}.json"
    args = [
        "run",
        "--versions",
        ",".join(versions),
        *flags,
        "--ignore-chromadb-bound",
        "--json",
        str(report),
        "--",
        "pytest",
        tests,
        "-q",
    ]
    row["command"] = "chroma-compat " + shlex.join(args).replace(str(report), f"{package}.json")
    done = chroma_compat(*args, cwd=project)
    if not report.is_file():
        row["note"] = f"run did not finish: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
        return row
    row["results"] = json.loads(report.read_text())["results"]
    passed = [r["version"] for r in row["results"] if r["status"] == "passed"]
    failed = [r["version"] for r in row["results"] if r["status"] in ("failed", "error")]
    from packaging.version import Version

    if passed and failed and min(failed, key=Version) < min(passed, key=Version):
        low = max((v for v in failed if Version(v) < Version(min(passed, key=Version))), key=Version)
        high = min(passed, key=Version)
        b_args = [
            "bisect",
            "--first-good",
            "--bad",
            low,
            "--good",
            high,
            *flags,
            "--ignore-chromadb-bound",
            "--count-errors",
            "--json",
            str(work / f"{package}-bisect.json"),
            "--",
            "pytest",
            tests,
            "-q",
        ]
        chroma_compat(*b_args, cwd=project)
        found = work / f"{package}-bisect.json"
        row["bisect"] = {
            "command": "chroma-compat " + shlex.join(b_args).replace(str(found), "bisect.json"),
            **(json.loads(found.read_text()) if found.is_file() else {"answer": "no answer"}),
        }
    return row


def first_breaks(results: list[dict]) -> str:
    """The first release after a passing one that does not pass."""
    seen_pass = False
    for r in results:
        if r["status"] == "passed":
            seen_pass = True
        elif seen_pass and r["status"] in ("failed", "error"):
            return r["version"]
    return "none in this run"


def render(rows: list[dict], versions: list[str], seconds: float) -> str:
    out = [
        "# The integrations people use, under chromadb releases",
        "",
        f"Generated by `nox -s integrations` (scenarios/integrations.py) on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {seconds / 60:.0f} min. Each package's latest "
        "sdist from the package index, unpacked and not edited; its own tests under each release, each in a "
        "project environment of its own. `--ignore-chromadb-bound` installs releases the package's declared "
        "range excludes, so the page shows whether that range is right.",
        "",
        f"Releases: {', '.join(versions)}",
        "",
    ]
    for row in rows:
        out += [f"## {row['sdist']}", "", f"Declared: `chromadb{row['declared']}`", ""]
        if row.get("note"):
            out += [row["note"], ""]
            continue
        results = row["results"]
        passing = [r["version"] for r in results if r["status"] == "passed"]
        out += [
            f"Command: `{row['command']}`",
            "",
            f"- passes under: {', '.join(passing) or 'none'}",
            f"- first that works (of those run): {passing[0] if passing else 'none'}",
            f"- first that breaks after one that works: {first_breaks(results)}",
        ]
        b = row.get("bisect")
        if b:
            answer = (
                f"first good chromadb {b.get('first_good')}, last bad {b.get('last_bad')}"
                if b.get("answer") == "found"
                else b.get("answer", "no answer")
            )
            out += [f"- `bisect --first-good` over the catalogue: {answer} (`{b['command']}`)"]
        out += ["", "| release | result | tests | failing test ids |", "|---|---|---|---|"]
        for r in results:
            counts = r.get("counts") or {}
            reason = r.get("reason", "")
            if reason.startswith("environment:"):  # the resolver's own words, without our temporary path
                reason = "cannot be installed with this release: " + reason.split(f"chromadb {r['version']}: ")[-1]
            tests = (
                ", ".join(f"{counts[k]} {k}" for k in ("passed", "failures", "errors", "skipped") if counts.get(k))
                or reason[:160]
            )
            failing = "<br>".join(f"`{n}`" for n in r.get("failures", [])[:10])
            mark = " (outside the declared range)" if r.get("bound_ignored") else ""
            out.append(f"| {r['version']} | {r['status']}{mark} | {tests} | {failing} |")
        out.append("")
    return "\n".join(out) + "\n"


def remove_envs(under: Path) -> int:
    """Remove the project environments built for projects inside ``under``."""
    import shutil

    count = 0
    for env in project_envs.projects_dir().iterdir():
        try:
            project = json.loads((env / project_envs.MANIFEST).read_text("utf-8"))["project"]
        except (OSError, ValueError, KeyError):
            continue
        if Path(project).is_relative_to(under.resolve()):
            shutil.rmtree(env, ignore_errors=True)
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--versions", help="releases, comma-separated (default: every 1.x, the last of each 0.x)")
    p.add_argument("--packages", default=",".join(PACKAGES))
    p.add_argument("--out", default=str(ROOT / "docs" / "integrations.md"))
    args = p.parse_args(argv)
    versions = [releases.resolve(v) for v in args.versions.split(",")] if args.versions else default_versions()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="integrations-") as tmp:
        try:
            rows = [one(package, versions, Path(tmp)) for package in args.packages.split(",") if package]
        finally:  # the unpacked sdists go with the folder: so do their project environments
            print(f"removed {remove_envs(Path(tmp))} project environment(s) of the unpacked sdists")
    Path(args.out).write_text(render(rows, versions, time.monotonic() - started), "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
