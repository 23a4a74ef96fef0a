"""``chroma-compat run`` and ``chroma-compat bisect``: the user's own command under releases.

    chroma-compat run --versions 0.5.23,1.0.21,1.5.9 -- pytest tests/
    chroma-compat bisect --good 0.4.24 --bad 1.5.9 -- pytest tests/test_store.py::test_filters

``run`` exits 0 when the command passed under every release (a release the
project's own requirements exclude is reported, not failed), 1 when it failed or
errored under one, 2 for bad input. ``bisect`` exits 0 with its answer (the
first bad release, the last good one, the contracts that change between them),
2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import EXIT_OK, EXIT_UNSAFE, CompatError


def register(subparsers: "argparse._SubParsersAction") -> None:
    r = subparsers.add_parser("run", help="run your own command once per release, each in an environment with "
                                          "your project installed beside that release",
                              description="Run COMMAND (after --) once per release, each in a cached environment "
                                          "holding that chromadb release (with its pin rules) and your project "
                                          "installed editable; a pytest command reports its counts and failing "
                                          "tests per release.")
    r.add_argument("--versions", required=True, help="releases, comma-separated (exact, a series such as 0.6, "
                                                     "or latest)")
    _common(r)
    r.add_argument("-j", "--jobs", type=int, default=1, help="releases run at the same time (default 1)")
    r.add_argument("--markdown", metavar="FILE", help="write the table as Markdown")
    r.add_argument("--json", metavar="FILE", help="write every result as JSON")
    r.add_argument("--junit", metavar="FILE", help="write one JUnit test case per release")
    r.set_defaults(handler=cmd_run)

    b = subparsers.add_parser("bisect", help="the first release under which your command fails",
                              description="Binary search over the releases between --good and --bad (assumed to "
                                          "pass and to fail): about log2(n) runs of COMMAND; a release whose "
                                          "environment cannot be built or where pytest cannot collect is skipped.")
    b.add_argument("--good", required=True, help="a release under which COMMAND passes")
    b.add_argument("--bad", required=True, help="a later release under which COMMAND fails")
    b.add_argument("--versions", help="search only these releases (comma-separated) instead of the catalogue")
    _common(b)
    b.add_argument("--json", metavar="FILE", help="write the search as JSON")
    b.set_defaults(handler=cmd_bisect)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", metavar="DIR", help="the project to install (default: the nearest pyproject.toml "
                                                    "from the current directory up)")
    p.add_argument("--extras", default="", help="the project's extras to install, comma-separated (e.g. test)")
    p.add_argument("--pass-env", action="append", default=[], metavar="NAME",
                   help="let this environment variable through (repeatable); none of yours pass otherwise")
    p.add_argument("--timeout", type=float, help="seconds one release's command may take")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command, e.g. -- pytest tests/")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _command(args: argparse.Namespace) -> list[str]:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise CompatError("give the command to run after --, e.g. -- pytest tests/")
    return command


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from . import paths, project_envs

    cwd = Path.cwd()
    project = Path(args.project).expanduser() if args.project else project_envs.find_project(cwd)
    if not project.is_dir():
        raise CompatError(f"--project {args.project}: not a directory")
    if args.timeout is not None and not args.timeout > 0:
        raise CompatError(f"--timeout must be positive, not {args.timeout}")
    logs = paths.home() / "runs" / project.resolve().name
    return {"project": project, "cwd": cwd, "extras": [e for e in args.extras.split(",") if e.strip()],
            "pass_env": args.pass_env, "timeout": args.timeout, "logs": logs, "note": _say}


def _versions(raw: str) -> list[str]:
    from . import releases

    out = [releases.resolve(part) for part in raw.split(",") if part.strip()]
    if not out:
        raise CompatError("name at least one release")
    return list(dict.fromkeys(out))


def _summary(r: Any) -> str:
    if r.status == "excluded":
        return f"not run: {r.reason}"
    counts = r.counts
    if counts:
        parts = [f"{counts[k]} {k}" for k in ("passed", "failures", "errors", "skipped") if counts.get(k)]
        text = ", ".join(parts).replace("failures", "failed") or "no tests"
    else:
        text = f"exit {r.exit_code}" if r.exit_code is not None else ""
    if r.status == "error":
        text = f"{text}; {r.reason}" if text else r.reason
    return f"{text} in {r.seconds:.1f} s" if r.exit_code is not None else text


def line(r: Any) -> str:
    status = {"passed": "passed", "failed": "FAILED", "error": "ERROR", "excluded": "excluded"}[r.status]
    return f"chromadb {r.version:<8} {status:<8} {_summary(r)}"


def cmd_run(args: argparse.Namespace) -> int:
    from . import user_runs

    command, versions, options = _command(args), _versions(args.versions), _options(args)
    if args.jobs < 1:
        raise CompatError(f"--jobs must be at least 1, not {args.jobs}")

    def show(r: Any) -> None:
        print(line(r), flush=True)
        for node in r.failures[:20]:
            print(f"    {node}", flush=True)
        if r.status in ("failed", "error") and r.log:
            print(f"    output: {r.log}", flush=True)

    results = user_runs.run_many(versions, command, jobs=args.jobs, on_result=show, **options)
    bad = [r for r in results if not r.ok]
    _write_reports(args, command, results)
    _say(f"chroma-compat run: {len(results)} release(s): "
         + ", ".join(f"{sum(r.status == s for r in results)} {s}" for s in ("passed", "failed", "error", "excluded")
                     if any(r.status == s for r in results))
         + (f" (not passing: {', '.join(r.version for r in bad)})" if bad else ""))
    return EXIT_UNSAFE if bad else EXIT_OK


def _write_reports(args: argparse.Namespace, command: list[str], results: list[Any]) -> None:
    import shlex
    import xml.etree.ElementTree as ET

    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "results": [r.as_dict() for r in results]},
                                              indent=1) + "\n", "utf-8")
    if args.markdown:
        rows = ["| release | result | details |", "|---|---|---|"]
        for r in results:
            failing = "<br>".join(f"`{n}`" for n in r.failures[:20])
            rows.append(f"| {r.version} | {r.status} | {_summary(r)}{'<br>' + failing if failing else ''} |")
        Path(args.markdown).write_text(f"`{shlex.join(command)}` under each release\n\n" + "\n".join(rows) + "\n",
                                       "utf-8")
    if args.junit:
        suite = ET.Element("testsuite", name="chroma-compat run", tests=str(len(results)),
                           failures=str(sum(r.status == "failed" for r in results)),
                           errors=str(sum(r.status == "error" for r in results)),
                           skipped=str(sum(r.status == "excluded" for r in results)))
        for r in results:
            case = ET.SubElement(suite, "testcase", classname="chroma-compat.run", name=f"chromadb {r.version}",
                                 time=f"{r.seconds:.2f}")
            if r.status in ("failed", "error"):
                child = ET.SubElement(case, "failure" if r.status == "failed" else "error", message=_summary(r))
                child.text = "\n".join(r.failures) or r.reason
            elif r.status == "excluded":
                ET.SubElement(case, "skipped", message=r.reason)
        ET.ElementTree(suite).write(args.junit, encoding="utf-8", xml_declaration=True)


def cmd_bisect(args: argparse.Namespace) -> int:
    from . import releases, release_bisect, user_runs

    command, options = _command(args), _options(args)
    good, bad = releases.resolve(args.good), releases.resolve(args.bad)
    versions = _versions(args.versions) if args.versions else None
    pool = release_bisect.candidates(good, bad, versions)
    _say(f"bisect: {len(pool)} release(s) between {good} (good) and {bad} (bad): about "
         f"{max(1, len(pool)).bit_length()} runs")

    def step(r: Any, left: int) -> None:
        verdict = {"passed": "good", "failed": "bad"}.get(r.status, f"skipped ({r.status}: {r.reason[:120]})")
        print(f"chromadb {r.version:<8} {verdict}", flush=True)

    found = release_bisect.search(good, bad, lambda v: user_runs.run_one(v, command, **options), versions=versions,
                                  on_run=step)
    if not found.undecided:
        found.crossed = release_bisect.crossed_between(found.last_good, found.first_bad)
    if args.json:
        Path(args.json).write_text(json.dumps(found.as_dict(), indent=1) + "\n", "utf-8")
    if found.undecided:
        print(f"the first bad release is one of {', '.join(found.undecided)} or {found.first_bad} (the others were "
              f"skipped); last good: {found.last_good}", flush=True)
    else:
        print(f"first bad: chromadb {found.first_bad}; last good: chromadb {found.last_good} "
              f"({len(found.runs)} run(s))", flush=True)
        if found.crossed:
            print(f"measured changes between {found.last_good} and {found.first_bad}:", flush=True)
            for c in found.crossed:
                where = f" [{c['section']}]" if c["documented"] else " [not in the migration log]"
                print(f"  {c['id']}{where}: {c['title']}\n    measured: {c['change']}\n    {c['consequence']}",
                      flush=True)
        else:
            print(f"no measured contract changes between {found.last_good} and {found.first_bad}", flush=True)
    return EXIT_OK
