"""``chroma-compat migrate SOURCE TARGET``: move a store between directories and servers of any releases.

    chroma-compat migrate ./chroma_data http://127.0.0.1:8000 --verify
    chroma-compat migrate http://old:8000 ./new_data --target-version 1.5.9 --verify
    chroma-compat migrate snapshot.tar.gz http://new:8000 --target-header 'Authorization: Bearer $TOKEN'

Exit codes: 0 moved (and with --verify, both sides read back identical);
1 --verify found a difference (each named on stderr and in --json); 2 could
not do what was asked (one line: a side unusable, a collection the target
already has, a release that cannot be installed, a server that went away, a
server that refuses or needs credentials (naming --source-header or
--target-header), credentials written into a URL, a target another migrate
holds). An interrupted run (Ctrl-C, a crash, kill -9, a lost server) is
resumed by running the same command again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pytest_chroma_compat.common.errors import EXIT_OK, EXIT_UNSAFE


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "migrate",
        help="move every collection between a directory and a server, of any two releases",
        description="Copy every collection (records, metadata, configuration; every tenant and database of a "
        "directory store) from SOURCE to TARGET through the two releases' own APIs. SOURCE: a "
        "persistent directory, an archive or s3:// prefix of one, or http://host:port. TARGET: a "
        "directory (new, or a store) or http://host:port. The source is never written.",
    )
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument(
        "--target-version",
        metavar="V",
        help="the release that writes a TARGET directory (default: the "
        "source's release); checked against a TARGET server",
    )
    p.add_argument(
        "--source-version",
        metavar="V",
        help="the release that reads SOURCE (default: measured: the server's /version, or the store's schema)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="read both sides back and compare per-collection digests; exit 1 on any difference",
    )
    p.add_argument(
        "--source-header",
        action="append",
        metavar="'NAME: VALUE'",
        help="an HTTP header for a SOURCE server (repeatable); a VALUE $VAR is read from the environment",
    )
    p.add_argument("--target-header", action="append", metavar="'NAME: VALUE'", help="the same, for a TARGET server")
    p.add_argument(
        "--database",
        action="append",
        metavar="TENANT/DATABASE",
        help="move only this database (repeatable); a SOURCE server moves default_tenant/default_database "
        "unless named here",
    )
    p.add_argument("--collection", action="append", metavar="NAME", help="move only this collection (repeatable)")
    p.add_argument("--batch-size", type=_count, default=1000, help="records per write (default 1000)")
    p.add_argument("--json", metavar="FILE", help="write what was moved and verified as JSON")
    p.set_defaults(handler=cmd_migrate)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 100000, not {text!r}")
    return value


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.common.progress import bar
    from pytest_chroma_compat.engine import cache_dirs
    from pytest_chroma_compat.transfer import endpoints
    from pytest_chroma_compat.transfer.move import Mover

    if args.json:
        cache_dirs.writable_dir(
            Path(args.json).expanduser().resolve().parent, "the report's folder", "choose another file"
        )
    databases = [endpoints.parse_database(d) for d in args.database] if args.database else None
    with (
        bar(True) as progress,
        Mover(
            args.source,
            args.target,
            source_version=args.source_version,
            target_version=args.target_version,
            source_headers=endpoints.parse_headers(args.source_header),
            target_headers=endpoints.parse_headers(args.target_header),
            databases=databases,
            collections=args.collection,
            batch_size=args.batch_size,
            progress=progress,
            say=_say,
        ) as mover,
    ):
        _say(f"migrate: from {mover.source.label} [{mover.source.evidence}]")
        _say(f"migrate: to {mover.target.label} [{mover.target.evidence}]")
        outcome = mover.run(check=args.verify)
    for label, n in outcome.copied.items():
        print(f"{label}: {n} records", flush=True)
    for v in outcome.verified:
        if v.ok and v.release_changes:
            print(
                f"{v.label}: verified, {v.source_count} records; {v.release_changes} come back changed by chromadb "
                f"{outcome.target.version}'s own write path, as it returns them when it writes them itself "
                f"(e.g. {v.release_examples[0]}); the target's digest {v.target_digest} is the source's as "
                f"chromadb {outcome.target.version} stores it (the source's own: {v.source_digest})",
                flush=True,
            )
        elif v.ok:
            print(f"{v.label}: verified, {v.source_count} records, digest {v.source_digest} on both sides", flush=True)
        else:
            print(
                f"{v.label}: DIFFERS: {'; '.join(v.differences)} (digest {v.source_digest} on the source, "
                f"{v.target_digest} on the target)",
                flush=True,
            )
    if args.json:
        Path(args.json).expanduser().write_text(json.dumps(outcome.as_dict(), indent=1) + "\n", "utf-8")
    records = sum(outcome.copied.values())
    head = (
        f"chroma-compat migrate: {len(outcome.copied)} collection(s), {records} records, "
        f"chromadb {outcome.source.version} -> {outcome.target.version} in {outcome.seconds:.1f} s"
    )
    if not args.verify:
        _say(f"{head}; not verified (--verify reads both sides back)")
        return EXIT_OK
    if outcome.differences:
        _say(f"{head}; NOT VERIFIED: {len(outcome.differences)} collection(s) differ")
        return EXIT_UNSAFE
    changed = sum(v.release_changes for v in outcome.verified)
    if changed:
        _say(
            f"{head}; verified: every record as chromadb {outcome.target.version} stores what it is given "
            f"({changed} changed by its own write path, shown above)"
        )
    else:
        _say(f"{head}; verified: every collection's digest matches")
    return EXIT_OK
