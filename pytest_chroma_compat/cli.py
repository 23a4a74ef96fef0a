"""The ``chroma-compat`` command.

Imports stay inside the handlers so ``chroma-compat env ensure`` on a warm
cache costs a process start and a few stats, not numpy and Hypothesis.
Exit codes: 0 fine, 1 the upgrade is unsafe, 2 bad input or could not run,
3 a bug in the harness (rerun with --debug for the traceback).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from typing import Callable, Sequence

from .cli_options import check_examples as _check_examples
from .cli_options import round_trip as _round_trip
from .cli_options import round_trip_options as _round_trip_options
from .cli_options import round_trip_paths as _paths  # noqa: F401  (the old name)
from .cli_options import say as _say
from .cli_options import versions as _versions
from .errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_UNSAFE, CompatError
from .contracts.cli import register as register_contracts
from .matrix_cli import register as register_matrix
from .scan.cli import register as register_scan
from .server_cli import register as register_servers
from .snapshot.cli import register as register_validate
from .transfer.cli import register as register_migrate
from .user_cli import register as register_user_runs


# -- env ------------------------------------------------------------------------------------

def cmd_env_ensure(args: argparse.Namespace) -> int:
    import time

    from . import envs

    from .skew import parse_client

    empty = [item for item in args.versions if not item.replace(",", " ").strip()]
    if empty:  # `env ensure ''` (a variable that was never set) did nothing and said nothing, exit 0
        raise CompatError("env ensure needs a release (such as 1.5.9, 0.5 or latest), not an empty name")
    wanted = [parse_client(part) for item in args.versions for part in item.split(",") if part.strip()]
    for kind, version in wanted:  # checked first: a bad name is one line before any build
        started = time.monotonic()
        env = envs.ensure(version, rebuild=args.rebuild, note=_say, kind=kind)
        print(f"{env.label}\t{env.path}\t{time.monotonic() - started:.2f}s")
    return EXIT_OK


def cmd_env_list(args: argparse.Namespace) -> int:
    from . import envs

    found = envs.list_envs()
    rows = [e.describe() if isinstance(e, envs.Environment) else {"error": str(e)} for e in found]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print("no environments yet: `chroma-compat env ensure VERSION` builds one")
    for row in rows:
        if "error" in row:
            print(f"corrupt\t{row['error']}")
            continue
        pins = ",".join(p["id"] for p in row["pins"]) or "-"
        print(f"{row['version']}\tpy{row['python']}\t{row['size_bytes'] / 2**20:.0f} MiB\tpins:{pins}\t{row['path']}")
    return EXIT_OK


def cmd_env_prune(args: argparse.Namespace) -> int:
    """Lists only what is really gone; anything that would not go is one error line (exit 2)."""
    from . import envs

    from . import project_envs

    import math

    from . import leftovers, paths

    if args.older_than is not None and not (math.isfinite(args.older_than) and args.older_than >= 0):
        raise CompatError(f"--older-than must be a number of days, 0 or more, not {args.older_than}")
    failed: list[tuple[str, str]] = []
    sizes: dict[str, int] = {}
    projects = paths.home() / "projects"
    before = leftovers.size_of(projects)
    removed = envs.prune(args.older_than, failed=failed, sizes=sizes) + project_envs.prune()
    if args.older_than is not None:  # kept runs (run_history.py) go by age only
        from . import run_history

        removed += run_history.prune(args.older_than, sizes=sizes)
    freed = sum(sizes.values()) + max(0, before - leftovers.size_of(projects))
    for path in removed:
        print(f"removed {path}", flush=True)
    if removed:
        entries = "1 entry" if len(removed) == 1 else f"{len(removed)} entries"
        print(f"freed {freed / 2**20:.1f} MiB ({freed} bytes) in {entries}", flush=True)
    if failed:
        path, why = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise CompatError(f"could not remove {path}: {why}{more}; fix its permissions (or unmount what is "
                          "mounted inside it) and run `chroma-compat env prune` again")
    if not removed:
        print("nothing to prune")
    return EXIT_OK


# -- releases -------------------------------------------------------------------------------

def cmd_releases(args: argparse.Namespace) -> int:
    from . import releases

    if args.refresh:
        n = releases.refresh()
        _say(f"catalogue rewritten: {n} releases")
    rows = releases.catalogue()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
        return EXIT_OK
    latest = set(releases.latest_per_minor())
    for r in rows:
        flags = " ".join(f for f, on in (("yanked", r.yanked), ("latest-of-minor", r.version in latest)) if on)
        print(f"{r.version}\t{r.uploaded}\t{flags}".rstrip())
    return EXIT_OK


# -- sweep --------------------------------------------------------------------------------

def cmd_sweep(args: argparse.Namespace) -> int:
    from . import releases, sweep

    versions = releases.select(args.versions)
    if not versions:
        raise CompatError(f"no release in the catalogue matches {args.versions!r}")

    def show(res: "sweep.SweepResult") -> None:
        status = "ok" if res.ok else f"FAIL at {res.stage}: {res.error}"
        print(f"{res.version}\t{','.join(res.pins) or '-'}\t{res.seconds}s\t{status}", flush=True)

    results = sweep.sweep(versions, ignore_pins=args.without_pins, progress=show)
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps([sweep.as_dict(r) for r in results], indent=1) + "\n")
    failed = [r.version for r in results if not r.ok]
    _say(f"{len(results) - len(failed)} of {len(results)} releases work" + (f"; failing: {', '.join(failed)}" if failed else ""))
    return 1 if failed else EXIT_OK


# -- round trip ------------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    """The report on stdout (text, or JSON with --json); live progress and one final verdict line on stderr."""
    from . import progress, report

    old, new = _versions([args.old])[0], _versions([args.new])[0]
    _check_examples(args)
    _paths(args.path or "all")
    with progress.bar() as live:
        reports = _round_trip(args, old, new, live)
    allow = args.allow_pre_existing
    if args.json:
        print(json.dumps(report.pair_json(reports, args.require_rollback, allow), indent=1, default=repr), flush=True)
    else:
        for rep in reports:
            print(report.path_text(rep, verbose=args.verbose), flush=True)
    _say(report.verdict_line(old, new, reports, args.require_rollback, allow))
    return EXIT_UNSAFE if report.unsafe(reports, args.require_rollback, allow) else EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import report, roundtrip

    rep = roundtrip.replay(Path(args.file))
    print(report.path_text(rep, verbose=True), flush=True)
    line = report.verdict_line(rep.old, rep.new, [rep])
    _say(line.replace("chroma-compat: ", f"chroma-compat: replay [{rep.path}] ", 1))
    return EXIT_UNSAFE if rep.blocked() else EXIT_OK


#: The verbs after env, releases, sweep, check and replay, in the order `--help` lists them; each
#: module's ``register`` adds its subparser and handler (stdlib and errors only at import time).
VERBS: tuple[Callable[["argparse._SubParsersAction"], None], ...] = (
    register_matrix,       # matrix: plan, shard, merge
    register_contracts,    # contracts, crossed
    register_validate,     # validate
    register_servers,      # serve, skew
    register_migrate,      # migrate
    register_user_runs,    # run, bisect
    register_scan,         # scan
)


# -- wiring ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chroma-compat", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    env = sub.add_parser("env", help="isolated environments, one per chromadb release")
    env_sub = env.add_subparsers(dest="env_command", required=True)
    ensure = env_sub.add_parser("ensure", help="install (or reuse) environments")
    ensure.add_argument("versions", nargs="+", help="exact releases, a series like 0.5, or 'latest'; "
                                                    "client-V for release V's thin chromadb-client package")
    ensure.add_argument("--rebuild", action="store_true", help="rebuild even if present")
    ensure.set_defaults(handler=cmd_env_ensure)
    lst = env_sub.add_parser("list", help="environments in the cache")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_env_list)
    prune = env_sub.add_parser("prune", help="remove outdated, corrupt or unused environments")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="also remove those unused for DAYS")
    prune.set_defaults(handler=cmd_env_prune)

    rel = sub.add_parser("releases", help="the catalogue of chromadb releases")
    rel.add_argument("--refresh", action="store_true", help="rewrite the catalogue from the package index")
    rel.add_argument("--json", action="store_true")
    rel.set_defaults(handler=cmd_releases)

    sw = sub.add_parser("sweep", help="install every release in a range and drive each through a worker")
    sw.add_argument("--versions", default=">=0.4.0", help="PEP 440 range over releases (default: >=0.4.0)")
    sw.add_argument("--without-pins", action="store_true", help="ignore pins.toml, to see what each rule prevents")
    sw.add_argument("--json", metavar="FILE", help="write the results as JSON")
    sw.set_defaults(handler=cmd_sweep)

    chk = sub.add_parser("check", help="write generated stores with one release, read them with another")
    chk.add_argument("--from", dest="old", required=True, help="the release you run today")
    chk.add_argument("--to", dest="new", required=True, help="the release you want to upgrade to")
    _round_trip_options(chk)
    chk.add_argument("--json", action="store_true", help="print the report as JSON")
    chk.add_argument("--verbose", action="store_true", help="also list the invariants that held")
    chk.add_argument("--require-rollback", action="store_true",
                     help="also fail (exit 1) when the old release cannot reopen the store after the upgrade")
    chk.add_argument("--allow-pre-existing", action="store_true",
                     help="a defect the old release shows on its own store (same data, before the upgrade) is "
                          "reported as pre-existing in that release but does not fail (default: not safe, exit 1: "
                          "it is still there after the upgrade; validate's flag of the same name)")
    chk.set_defaults(handler=cmd_check)

    rp = sub.add_parser("replay", help="rerun exactly one saved failing case")
    rp.add_argument("file", help="a case-*.json file printed by a failed check")
    rp.set_defaults(handler=cmd_replay)

    for register in VERBS:
        register(sub)
    return parser


#: errors that are the machine's answer, not a bug of ours: a full disk or quota, a read-only filesystem
_MACHINE_REFUSALS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. SIGINT, SIGTERM and SIGHUP unwind through every clean-up path, kill
    every process the command started (interrupts.py), and exit 128 + the signal's number."""
    from . import interrupts

    args = argparse.Namespace(debug=False)
    with interrupts.handling():
        try:
            try:
                args = build_parser().parse_args(argv)
                if args.command == "validate":  # copies of killed runs are hundreds of MB: drop them first
                    try:
                        from . import leftovers

                        leftovers.sweep(leftovers.cache_roots(create=False))
                    except Exception:  # noqa: BLE001 - a best effort; `env prune` reports what it cannot
                        pass
                return int(args.handler(args) or 0)
            finally:
                interrupts.hold()  # a signal from here on stops children only: the outcome is being told
        except interrupts.Interrupted as exc:
            interrupts.kill_all()
            _say(f"chroma-compat: interrupted ({exc.name}); stopped its processes and removed its private copies")
            return exc.exit_code
        except CompatError as exc:
            if args.debug:
                raise
            _say(f"chroma-compat: error: {exc}")
            return exc.exit_code
        except KeyboardInterrupt:
            interrupts.kill_all()
            _say("chroma-compat: interrupted (SIGINT); stopped its processes and removed its private copies")
            return 130
        except BrokenPipeError:  # `chroma-compat ... | head` closed the pipe: not an error
            sys.stderr.close()
            return EXIT_OK
        except OSError as exc:
            if args.debug:
                raise
            if exc.errno in _MACHINE_REFUSALS:  # the machine refused a write (a report to a full disk): not our bug
                where = f" ({exc.filename})" if exc.filename else ""
                _say(f"chroma-compat: error: {exc.strerror}{where} while writing an output; free space or choose "
                     "another place, then run the command again")
                return EXIT_BAD_INPUT
            _say(f"chroma-compat: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
            return EXIT_INTERNAL
        except Exception as exc:  # a bug of ours: one line, the traceback on --debug
            if args.debug:
                raise
            _say(f"chroma-compat: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
            return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
