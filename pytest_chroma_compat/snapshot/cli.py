"""``chroma-compat validate``: will *this* store survive the upgrade? Asked before doing it.

    chroma-compat validate ./chroma_data --to 1.5.9
    chroma-compat validate snapshot.tar.gz --to 1.3.4 --json r.json --junit r.xml --markdown r.md
    chroma-compat validate s3://bucket/prefix/ --to 1.5.9 [--from auto|X] [--endpoint-url URL]

Exit codes: 0 safe to upgrade; 1 not safe (the evidence is printed and in the
reports); 2 could not validate (bad input, unreachable source, a store its own
release cannot read), with one line saying why. The source is only ever read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common.progress import bar as progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        help="validate a real store (directory, archive, s3://) for an upgrade",
        description="Will this store survive the upgrade? Asked before doing it, on a private copy.",
    )
    p.add_argument("source", help="a persistent directory, a .tar/.tar.gz/.zip archive, or s3://bucket/prefix/")
    p.add_argument("--to", dest="new", required=True, help="the release to upgrade to (exact, a series, or latest)")
    p.add_argument(
        "--from",
        dest="old",
        default="auto",
        help="the release that wrote the store (default: auto, from its schema migrations)",
    )
    p.add_argument(
        "--path",
        choices=("in-place", "export-import"),
        default="in-place",
        help="how the store reaches the target: opened in place (pip install -U), or exported "
        "and imported (the only way for 0.3 stores)",
    )
    p.add_argument(
        "--collection",
        dest="collections",
        action="append",
        metavar="NAME",
        help="validate only this collection (a name, or tenant/database:name); repeatable",
    )
    p.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO, R2, ...)")
    p.add_argument("--profile", help="AWS profile for s3:// sources (default: the standard credential chain)")
    p.add_argument("--region", help="AWS region for s3:// sources")
    p.add_argument(
        "--pointer-template",
        metavar="TEMPLATE",
        help="the source is a pointer holding only a value (a version id): validate TEMPLATE with "
        "{dir} the pointer's folder and {value} its value, e.g. '{dir}/timestamped/{value}/'",
    )
    p.add_argument(
        "--s3-timeout",
        type=_positive(float),
        metavar="SECONDS",
        help="seconds an S3 endpoint may stay silent (connect, and each read) before a request is retried; "
        "3 attempts (default: 5 to connect, 15 to read)",
    )
    p.add_argument(
        "--max-extract-bytes",
        type=_positive(_size),
        metavar="SIZE",
        help="largest private copy to make, e.g. 500M or 10G (default: 100x an archive's size, at least "
        "512M, and never more than half the work directory's free space less 512M)",
    )
    p.add_argument(
        "--max-members",
        type=_positive(int),
        metavar="N",
        help="most archive members, directory entries or S3 objects to copy (default 100000)",
    )
    p.add_argument("--json", metavar="FILE", help="write the JSON report (docs/validate-report.md); - for stdout")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML: one testcase per check per collection")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown report for a pull request")
    p.add_argument("--batch-size", type=int, default=1000, help="records per page (bounds memory; default 1000)")
    p.add_argument("--workdir", type=Path, help="where private copies go (default: the cache's scratch dir)")
    p.add_argument("--keep", action="store_true", help="keep the private copies and print where they are")
    p.add_argument("--no-contracts", action="store_true", help="skip listing the behaviour contracts crossed")
    p.add_argument(
        "--require-rollback",
        action="store_true",
        help="not safe (exit 1) when the reading release cannot reopen the store after the target wrote "
        "to it (default: reported prominently, outside the exit code)",
    )
    p.add_argument(
        "--refuse-downgrade",
        action="store_true",
        help="not safe (exit 1) when the store was written by a newer release than the target, whatever "
        "the measured checks say (default: the downgrade is a caveat beside the verdict, and the "
        "checks on the data decide)",
    )
    p.add_argument(
        "--allow-pre-existing",
        action="store_true",
        help="a defect the store already has before the upgrade (the release reading it fails the same "
        "way) is shown but does not fail (default: not safe, exit 1: it will still be there after)",
    )
    p.add_argument(
        "--data-budget",
        type=int,
        default=None,
        metavar="N",
        help="stored values asked per metadata key by the data checks: each contract whose effect "
        "depends on stored data (float $eq/$gte/$lte, string $contains/$not_contains, bool/int/str "
        "$eq, $ne/$nin on records lacking the key, list elements $contains, full-text $contains/"
        "$not_contains with substrings of the documents) is asked with the key's own values, every distinct "
        "one up to N, then a random sample "
        "(default 64); 0 runs only the checks of contracts the upgrade crosses",
    )
    p.add_argument(
        "--filters",
        metavar="FILE",
        help='your own filters, a JSON list of {"where": ..., "where_document": ..., '
        '"collection": optional}: each runs on both releases, judged against the data; one '
        "the old release refuses and the new "
        "one answers with [] (now silently matches nothing) is not safe",
    )
    p.add_argument(
        "--filters-from",
        metavar="PATH",
        help="the same for the literal filters of your Python code (a file or directory), found as "
        "`chroma-compat scan` finds them: dicts under $and/$or and through your helper functions",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds one release call may take (default 1800)")
    p.add_argument("--verbose", action="store_true", help="list every check, not only the failing ones")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.set_defaults(handler=cmd_validate)


def _size(text: str) -> int:
    from pytest_chroma_compat.snapshot.safecopy import parse_size

    return parse_size(text)


def _positive(kind: Any) -> Any:
    """An argparse type: ``kind(text)``, which must be finite and above zero."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
        return value

    parse.__name__ = getattr(kind, "__name__", "value").lstrip("_")
    return parse


def _user_filters(args: argparse.Namespace) -> list:
    """--filters and --filters-from, read and checked before any copy is made (a bad file: exit 2)."""
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.snapshot import user_filters

    if args.data_budget is not None and args.data_budget < 0:
        raise CompatError(f"--data-budget must be 0 or more, not {args.data_budget}")
    out = user_filters.load(args.filters) if args.filters else []
    if args.filters_from:
        found, unread = user_filters.extract(args.filters_from)
        if not found:
            raise CompatError(
                f"--filters-from {args.filters_from}: no literal filter found (where=/where_document= "
                f"of get/query/delete){f'; {unread} built at run time' if unread else ''}"
            )
        out += found
    return out


def cmd_validate(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.common.redact import redact
    from pytest_chroma_compat.snapshot import reports, sources
    from pytest_chroma_compat.snapshot.validate import check_options, validate

    # every option is checked before a copy is made or a release starts
    check_options(to=args.new, from_=args.old, path=args.path, timeout=args.timeout, batch_size=args.batch_size)
    sources.check_source(args.source)
    if args.pointer_template is not None:
        from pytest_chroma_compat.snapshot.pointers import check_template

        check_template(args.pointer_template)
    reports.check_report_paths(args.source, [p for p in (args.json, args.junit, args.markdown) if p and p != "-"])
    filters = _user_filters(args)
    with progress_bar(not args.quiet) as progress:
        result = validate(
            args.source,
            args.new,
            from_=args.old,
            path=args.path,
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            region=args.region,
            workdir=args.workdir,
            batch_size=args.batch_size,
            contracts=not args.no_contracts,
            timeout=args.timeout,
            progress=progress,
            keep=args.keep,
            collections=args.collections,
            require_rollback=args.require_rollback,
            allow_pre_existing=args.allow_pre_existing,
            refuse_downgrade=args.refuse_downgrade,
            s3_timeout=args.s3_timeout,
            max_extract_bytes=args.max_extract_bytes,
            max_members=args.max_members,
            filters=filters,
            pointer_template=args.pointer_template,
            **({} if args.data_budget is None else {"data_budget": args.data_budget}),
        )
    json_to_stdout = args.json == "-"
    if json_to_stdout:
        sys.stdout.write(reports.to_json_text(result))
    if result.error is None:  # the verdict first: a report that fails to write must not hide it
        out = sys.stderr if json_to_stdout else sys.stdout
        text = redact(result.summary) if args.quiet else reports.terminal(result, verbose=args.verbose)
        print(text, file=out, flush=True)
    reports.write_reports(
        result, json_path=None if json_to_stdout else args.json, junit_path=args.junit, markdown_path=args.markdown
    )
    if args.keep and result.source.get("work_dir"):  # --keep says where: the copies are the point of it
        print(
            f"chroma-compat: kept the private copies in {result.source['work_dir']} (`chroma-compat env prune` "
            "removes them)",
            file=sys.stderr if json_to_stdout else sys.stdout,
            flush=True,
        )
    if result.error is not None:
        print(redact(f"chroma-compat: could not validate: {result.error}"), file=sys.stderr)
    return result.exit_code
