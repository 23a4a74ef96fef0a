"""``chroma-compat check`` and ``chroma-compat replay``: one pair of releases, every migration path."""

from __future__ import annotations

import argparse
import json

from pytest_chroma_compat.cli.verb_args import check_examples as _check_examples
from pytest_chroma_compat.cli.verb_args import round_trip as _round_trip
from pytest_chroma_compat.cli.verb_args import round_trip_options as _round_trip_options
from pytest_chroma_compat.cli.verb_args import round_trip_paths as _paths
from pytest_chroma_compat.cli.verb_args import say as _say
from pytest_chroma_compat.cli.verb_args import versions as _versions
from pytest_chroma_compat.common.errors import EXIT_OK, EXIT_UNSAFE


def register(sub: argparse._SubParsersAction) -> None:
    chk = sub.add_parser("check", help="write generated stores with one release, read them with another")
    chk.add_argument("--from", dest="old", required=True, help="the release you run today")
    chk.add_argument("--to", dest="new", required=True, help="the release you want to upgrade to")
    _round_trip_options(chk)
    chk.add_argument("--json", action="store_true", help="print the report as JSON")
    chk.add_argument("--verbose", action="store_true", help="also list the invariants that held")
    chk.add_argument(
        "--require-rollback",
        action="store_true",
        help="also fail (exit 1) when the old release cannot reopen the store after the upgrade",
    )
    chk.add_argument(
        "--allow-pre-existing",
        action="store_true",
        help="a defect the old release shows on its own store (same data, before the upgrade) is "
        "reported as pre-existing in that release but does not fail (default: not safe, exit 1: "
        "it is still there after the upgrade; validate's flag of the same name)",
    )
    chk.set_defaults(handler=cmd_check)

    rp = sub.add_parser("replay", help="rerun exactly one saved failing case")
    rp.add_argument("file", help="a case-*.json file printed by a failed check")
    rp.set_defaults(handler=cmd_replay)


# -- round trip ------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """The report on stdout (text, or JSON with --json); live progress and one final verdict line on stderr."""
    from pytest_chroma_compat.common import progress
    from pytest_chroma_compat.roundtrip.matrix import report

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

    from pytest_chroma_compat.roundtrip import pair
    from pytest_chroma_compat.roundtrip.matrix import report

    rep = pair.replay(Path(args.file))
    print(report.path_text(rep, verbose=True), flush=True)
    line = report.verdict_line(rep.old, rep.new, [rep])
    _say(line.replace("chroma-compat: ", f"chroma-compat: replay [{rep.path}] ", 1))
    return EXIT_UNSAFE if rep.blocked() else EXIT_OK
