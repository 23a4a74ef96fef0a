"""chroma-compat scan PATHS --from V --to V: the lines of your code a chromadb upgrade touches.

Exit 1 when there are findings, 0 when there are none, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_OK, EXIT_UNSAFE, CompatError

FORMATS = ("text", "json", "sarif")


def register(subparsers: "argparse._SubParsersAction") -> None:
    p = subparsers.add_parser("scan", help="the lines of your code a chromadb upgrade touches (static, offline)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", metavar="PATH", help="Python files or directories to scan")
    p.add_argument("--from", dest="old", required=True, help="the release you run today")
    p.add_argument("--to", dest="new", required=True, help="the release you want to upgrade to")
    p.add_argument("--format", default="text", help="text (default), json or sarif")
    p.add_argument("--output", metavar="FILE", help="write the report here instead of stdout")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..releases import resolve
    from . import report, sarif
    from .engine import scan

    if args.format not in FORMATS:
        raise CompatError(f"scan: --format must be one of {', '.join(FORMATS)}, not {args.format!r}")
    result = scan(args.paths, resolve(args.old), resolve(args.new))
    out = {"text": report.text, "json": report.as_json, "sarif": sarif.as_sarif}[args.format](result)
    if args.output:
        try:
            Path(args.output).write_text(out)
        except OSError as exc:
            raise CompatError(f"scan: cannot write {args.output}: {exc.strerror or exc}") from None
        if args.format != "text":
            print(f"{len(result.findings)} finding(s); wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return EXIT_UNSAFE if result.findings else EXIT_OK
