"""``chroma-compat run`` and ``chroma-compat bisect``: the user's own command under releases.

    chroma-compat run --versions 0.5.23,1.0.21,1.5.9 -- pytest tests/
    chroma-compat bisect --good 0.4.24 --bad 1.5.9 -- pytest tests/test_store.py::test_filters

``run`` exits 0 when the command passed under every release (a release the
project's own requirements exclude is reported, not failed), 1 when it failed,
errored or timed out (``--timeout``: "timed out after N s") under one, 2 for bad
input. ``bisect`` exits 0 with its answer (the first bad release, or with
``--first-good`` the first good one; the release before it; the contracts that
change between them), 2 for bad input and when there is no answer to prove: an
endpoint that does not behave as named (both outcomes are shown) or a boundary
whose outcome flips on a second run ("flaky").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common.errors import EXIT_OK, EXIT_UNSAFE, CompatError


def register(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser(
        "run",
        help="run your own command once per release, each in an environment with "
        "your project installed beside that release",
        description="Run COMMAND (after --) once per release, each in a cached environment "
        "holding that chromadb release (with its pin rules) and your project "
        "installed editable; a pytest command reports its counts and failing "
        "tests per release.",
    )
    r.add_argument(
        "--versions", help="releases, comma-separated (exact, a series such as 0.6, or latest); required unless --list"
    )
    _common(r)
    r.add_argument(
        "--server",
        nargs="?",
        const="plain",
        choices=("plain", "token"),
        metavar="{plain,token}",
        help="start each release's own server for the command's duration and pass its address "
        "(CHROMA_HOST, CHROMA_PORT, CHROMA_URL; with 'token': token auth and CHROMA_TOKEN)",
    )
    r.add_argument("--auth", choices=("token",), help="with --server: token auth (same as --server token)")
    r.add_argument(
        "--server-port",
        type=int,
        metavar="PORT",
        help="with --server: this port instead of a free one (a suite that hard-codes 8000); needs -j 1",
    )
    r.add_argument("--list", action="store_true", help="list the kept runs of the project (newest first) and exit")
    r.add_argument("-j", "--jobs", type=int, default=1, help="releases run at the same time (default 1)")
    r.add_argument("--markdown", metavar="FILE", help="write the table as Markdown")
    r.add_argument("--json", metavar="FILE", help="write every result as JSON")
    r.add_argument("--junit", metavar="FILE", help="write one JUnit test case per release")
    r.set_defaults(handler=cmd_run)

    b = subparsers.add_parser(
        "bisect",
        help="the first release under which your command fails (or, with --first-good, passes)",
        description="Binary search over the releases between --good and --bad: both are "
        "run first (--good must pass, --bad must fail, else exit 2 with both "
        "outcomes), then about log2(n) runs of COMMAND, then the two releases "
        "either side of the answer once more (an outcome that flips: 'flaky', "
        "exit 2). A release whose environment cannot be built or where pytest "
        "cannot collect is skipped (--count-errors counts a collection error "
        "as a failure).",
    )
    b.add_argument("--good", required=True, help="a release under which COMMAND passes")
    b.add_argument(
        "--bad", required=True, help="a later release under which COMMAND fails (with --first-good: an older one)"
    )
    b.add_argument(
        "--first-good",
        action="store_true",
        help="search the other way: --bad is older than --good, and the answer is the first release "
        "under which COMMAND passes (the lowest release your project works with)",
    )
    b.add_argument(
        "--count-errors",
        action="store_true",
        help="count a release where pytest cannot collect (a test module whose import fails) as a "
        "failure instead of skipping it",
    )
    b.add_argument("--versions", help="search only these releases (comma-separated) instead of the catalogue")
    _common(b)
    b.add_argument("--json", metavar="FILE", help="write the search as JSON")
    b.set_defaults(handler=cmd_bisect)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--project",
        metavar="DIR",
        help="the project to install (default: the nearest pyproject.toml from the current directory up)",
    )
    p.add_argument("--extras", default="", help="the project's extras to install, comma-separated (e.g. test)")
    p.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="a PEP 735 [dependency-groups] group of the project to install (repeatable)",
    )
    p.add_argument(
        "--with",
        dest="with_",
        action="append",
        default=[],
        metavar="REQ",
        help="an extra requirement to install beside the project (repeatable)",
    )
    p.add_argument(
        "--no-sources",
        action="store_true",
        help="ignore the project's [tool.uv.sources] (e.g. paths into a monorepo): install what the metadata says",
    )
    p.add_argument(
        "--python",
        metavar="X.Y",
        help="the environments' interpreter: one on this machine or one uv "
        "can provide (default: the one running chroma-compat)",
    )
    p.add_argument(
        "--ignore-chromadb-bound",
        action="store_true",
        help="install each release even where the project's own requirements (extras and groups "
        "included) exclude it; such rows are marked",
    )
    p.add_argument(
        "--pass-env",
        action="append",
        default=[],
        metavar="NAME",
        help="let this environment variable through (repeatable); none of yours pass otherwise",
    )
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
    from pytest_chroma_compat.engine import project_envs

    cwd = Path.cwd()
    project = Path(args.project).expanduser() if args.project else project_envs.find_project(cwd)
    if not project.is_dir():
        raise CompatError(f"--project {args.project}: not a directory")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise CompatError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    from pytest_chroma_compat.engine import project_options

    options = project_options.ProjectOptions.make(
        extras=[e for e in args.extras.split(",") if e.strip()],
        groups=args.group,
        with_=args.with_,
        no_sources=args.no_sources,
        python=args.python,
        ignore_bound=args.ignore_chromadb_bound,
    )
    project_options.check(project.resolve(), options)  # a misspelt extra or group: exit 2 before any build
    project_options.check_python(project.resolve(), options)  # no such interpreter, or one the project refuses
    return {
        "project": project,
        "cwd": cwd,
        "pass_env": args.pass_env,
        "timeout": args.timeout,
        "note": _say,
        "options": options,
    }


def _versions(raw: str) -> list[str]:
    from pytest_chroma_compat.engine import releases

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
    if getattr(r, "timed_out", False):
        return f"{r.reason}" + (f"; {text}" if r.counts and text else "")
    if r.status == "error":
        text = f"{text}; {r.reason}" if text else r.reason
    return f"{text} in {r.seconds:.1f} s" if r.exit_code is not None else text


def line(r: Any) -> str:
    status = {"passed": "passed", "failed": "FAILED", "error": "ERROR", "excluded": "excluded"}[r.status]
    marked = f" [bound ignored: {r.bound_ignored}]" if getattr(r, "bound_ignored", "") else ""
    return f"chromadb {r.version:<8} {status:<8} {_summary(r)}{marked}"


def _list_runs(args: argparse.Namespace) -> int:
    """The kept runs of the project (``--project`` or the nearest one), newest first."""
    from pytest_chroma_compat.engine import project_envs
    from pytest_chroma_compat.usercode import run_history

    project = Path(args.project).expanduser() if args.project else project_envs.find_project(Path.cwd())
    kept = run_history.runs(project)
    if not kept:
        print(f"no kept runs of {project.resolve()} (under {run_history.root() / run_history.project_id(project)})")
    for run in kept:
        print(run_history.describe(run), flush=True)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.usercode import run_history
    from pytest_chroma_compat.usercode import runs as user_runs

    if args.list:
        return _list_runs(args)
    if not args.versions:
        raise CompatError("name the releases with --versions (or list the kept runs with --list)")
    command, versions, options = _command(args), _versions(args.versions), _options(args)
    if args.jobs < 1:
        raise CompatError(f"--jobs must be at least 1, not {args.jobs}")
    server = "token" if args.auth == "token" else args.server
    if args.auth and not args.server:
        raise CompatError("--auth token needs --server")
    if args.server_port is not None:
        if not server:
            raise CompatError("--server-port needs --server")
        if args.jobs > 1:
            raise CompatError("--server-port runs one server at a time: use -j 1")
        from pytest_chroma_compat.servers.launcher import check_port

        check_port(args.server_port)
    if server:
        options.update(server=server, server_port=args.server_port)
    options["logs"] = run_history.start(
        options["project"],
        command,
        "run",
        versions=versions,
        options=options["options"].flags() + ([f"--server {server}"] if server else []),
    )

    def show(r: Any) -> None:
        print(line(r), flush=True)
        for node in r.failures[:20]:
            print(f"    {node}", flush=True)
        if r.status in ("failed", "error") and r.log:
            print(f"    output: {r.log}", flush=True)

    results = user_runs.run_many(versions, command, jobs=args.jobs, on_result=show, **options)
    bad = [r for r in results if not r.ok]
    run_history.finish(options["logs"], results)
    _write_reports(args, command, results)
    _say(f"logs of this run: {options['logs']} (chroma-compat run --list)")
    _say(
        f"chroma-compat run: {len(results)} release(s): "
        + ", ".join(
            f"{sum(r.status == s for r in results)} {s}"
            for s in ("passed", "failed", "error", "excluded")
            if any(r.status == s for r in results)
        )
        + (f" (not passing: {', '.join(r.version for r in bad)})" if bad else "")
    )
    return EXIT_UNSAFE if bad else EXIT_OK


def _write_reports(args: argparse.Namespace, command: list[str], results: list[Any]) -> None:
    import shlex
    import xml.etree.ElementTree as ET

    if args.json:
        Path(args.json).write_text(
            json.dumps({"command": command, "results": [r.as_dict() for r in results]}, indent=1) + "\n", "utf-8"
        )
    if args.markdown:
        rows = ["| release | result | details |", "|---|---|---|"]
        for r in results:
            failing = "<br>".join(f"`{n}`" for n in r.failures[:20])
            status = f"{r.status} (bound ignored)" if r.bound_ignored else r.status
            rows.append(f"| {r.version} | {status} | {_summary(r)}{'<br>' + failing if failing else ''} |")
        Path(args.markdown).write_text(
            f"`{shlex.join(command)}` under each release\n\n" + "\n".join(rows) + "\n", "utf-8"
        )
    if args.junit:
        suite = ET.Element(
            "testsuite",
            name="chroma-compat run",
            tests=str(len(results)),
            failures=str(sum(r.status == "failed" for r in results)),
            errors=str(sum(r.status == "error" for r in results)),
            skipped=str(sum(r.status == "excluded" for r in results)),
        )
        for r in results:
            case = ET.SubElement(
                suite, "testcase", classname="chroma-compat.run", name=f"chromadb {r.version}", time=f"{r.seconds:.2f}"
            )
            if r.status in ("failed", "error"):
                child = ET.SubElement(case, "failure" if r.status == "failed" else "error", message=_summary(r))
                child.text = "\n".join(r.failures) or r.reason
            elif r.status == "excluded":
                ET.SubElement(case, "skipped", message=r.reason)
        ET.ElementTree(suite).write(args.junit, encoding="utf-8", xml_declaration=True)


def cmd_bisect(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.engine import releases
    from pytest_chroma_compat.usercode import bisect, run_history
    from pytest_chroma_compat.usercode import runs as user_runs

    command, options = _command(args), _options(args)
    good, bad = releases.resolve(args.good), releases.resolve(args.bad)
    options["logs"] = run_history.start(
        options["project"], command, "bisect", good=good, bad=bad, options=options["options"].flags()
    )
    versions = _versions(args.versions) if args.versions else None
    old, new = (bad, good) if args.first_good else (good, bad)
    pool = bisect.candidates(old, new, versions, first_good=args.first_good)
    names = ("bad", "good") if args.first_good else ("good", "bad")
    _say(
        f"bisect: {len(pool)} release(s) between {old} ({names[0]}) and {new} ({names[1]}): both ends first, "
        f"then about {max(1, len(pool)).bit_length()} runs, then the two either side of the answer again"
    )

    def step(r: Any, left: int) -> None:
        verdict = bisect.judge(r, args.count_errors)
        word = {"pass": "good", "fail": "bad"}.get(verdict, f"skipped ({r.status}: {r.reason[:120]})")
        if verdict == "fail" and r.cannot_collect:
            word = "bad (could not collect; counted: --count-errors)"
        elif verdict == "fail" and r.timed_out:
            word = f"bad ({r.reason})"
        if r.bound_ignored:
            word += " [bound ignored]"
        print(f"chromadb {r.version:<8} {word}", flush=True)

    found = bisect.search(
        good,
        bad,
        lambda v: user_runs.run_one(v, command, **options),
        versions=versions,
        on_run=step,
        first_good=args.first_good,
        count_errors=args.count_errors,
    )
    run_history.finish(options["logs"], found.runs, answer=found.answer, before=found.before, after=found.after)
    if found.answer == "found":
        found.crossed = bisect.crossed_between(found.before, found.after)
    if args.json:
        Path(args.json).write_text(json.dumps(found.as_dict(), indent=1) + "\n", "utf-8")
    note = found.errors_note()
    if note:
        print(note, flush=True)
    if not found.found:
        raise CompatError("bisect has no answer: " + " ".join(found.reason.split()))
    first, last = ("first good", "last bad") if args.first_good else ("first bad", "last good")
    if found.undecided:
        print(
            f"the {first} release is one of {', '.join(found.undecided)} or {found.after} (the others were "
            f"skipped); {last}: {found.before}",
            flush=True,
        )
    else:
        print(
            f"{first}: chromadb {found.after}; {last}: chromadb {found.before} ({len(found.runs)} run(s), the "
            f"two either side of the answer twice)",
            flush=True,
        )
        if found.crossed:
            print(f"measured changes between {found.before} and {found.after}:", flush=True)
            for c in found.crossed:
                where = f" [{c['section']}]" if c["documented"] else " [not in the migration log]"
                print(
                    f"  {c['id']}{where}: {c['title']}\n    measured: {c['change']}\n    {c['consequence']}", flush=True
                )
        else:
            print(f"no measured contract changes between {found.before} and {found.after}", flush=True)
    return EXIT_OK
