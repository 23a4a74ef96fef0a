"""chroma-compat scan PATHS --from V --to V: the lines of your code a chromadb upgrade touches.

Exit 1 when there are findings, 0 when there are none, 2 on bad input.
``scan --needs PATHS``: the lowest chromadb release with every chromadb name the code uses (usercode/scan/needs.py);
exit 1 when no measured release has them all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_chroma_compat.common.errors import EXIT_OK, EXIT_UNSAFE, CompatError

FORMATS = ("text", "json", "sarif")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "scan",
        help="the lines of your code a chromadb upgrade touches (static, offline)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="Python files or directories to scan")
    p.add_argument(
        "--from",
        dest="old",
        help="the release you run today (default: [tool.chroma-compat.scan] from in your pyproject.toml)",
    )
    p.add_argument(
        "--to",
        dest="new",
        help="the release you want to upgrade to (default: [tool.chroma-compat.scan] to in your pyproject.toml)",
    )
    p.add_argument("--format", default="text", help="text (default), json or sarif")
    p.add_argument("--output", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument(
        "--needs",
        action="store_true",
        help="instead: the lowest chromadb release that has every chromadb name the code imports or "
        "calls (from the measured catalogue usercode/scan/names.json; --from/--to not used)",
    )
    p.add_argument(
        "--max-file-bytes",
        type=_size,
        default=None,
        metavar="N",
        help="list files bigger than this as not scanned instead of reading them (default 2 MB)",
    )
    p.set_defaults(handler=run)


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of bytes: {text!r}") from None
    if not 0 < value <= 1 << 30:
        raise argparse.ArgumentTypeError(f"must be from 1 to {1 << 30} bytes, not {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.engine.releases import resolve
    from pytest_chroma_compat.usercode.scan import report, sarif
    from pytest_chroma_compat.usercode.scan.reader import DEFAULT_MAX_FILE_BYTES, scan

    if args.format not in FORMATS:
        raise CompatError(f"scan: --format must be one of {', '.join(FORMATS)}, not {args.format!r}")
    if args.needs:
        from pytest_chroma_compat.usercode.scan import needs

        if args.format == "sarif":
            raise CompatError("scan --needs: --format must be text or json")
        return needs.run(args)
    from pytest_chroma_compat.usercode.scan.project_defaults import fill_versions

    old, new = fill_versions(args.old, args.new)
    result = scan(args.paths, resolve(old), resolve(new), args.max_file_bytes or DEFAULT_MAX_FILE_BYTES)
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
