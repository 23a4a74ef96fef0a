"""What the ``chroma-compat`` verbs share: how a line is said, how release lists and round-trip
options are read and checked.

Why a module of its own: ``check`` (roundtrip/cli.py) and ``matrix`` (roundtrip/matrix/cli.py) take the same round-trip
options and release lists; kept below both, neither verb's module imports the other's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Callable

from pytest_chroma_compat.common.errors import CompatError


def say(message: str) -> None:
    """Every line the command says on stderr; URLs lose any credentials written into them."""
    from pytest_chroma_compat.common.redact import redact

    print(redact(message), file=sys.stderr, flush=True)


def versions(raw: Sequence[str]) -> list[str]:
    """Exact releases, series ("1.0", "latest"), comma or space separated; an item holding a comparison
    (``>=1.0.0``, ``'>=0.4,<1.0'``) is a PEP 440 range over the non-yanked catalogue."""
    import re

    from pytest_chroma_compat.engine import releases

    out: list[str] = []
    for item in raw:
        if re.search(r"[<>=!~]", item):
            found = releases.select(item)
            if not found:
                raise CompatError(f"no release in the catalogue matches {item.strip()!r}")
            out.extend(found)
            continue
        out.extend(releases.resolve(part) for part in re.split(r"[,\s]+", item) if part.strip())
    return out


def round_trip_paths(value: str) -> list[str] | None:
    from pytest_chroma_compat.roundtrip.paths import PATHS

    if value == "all":
        return None
    chosen = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PATHS]
    if unknown:
        raise CompatError(f"unknown path {unknown[0]!r}; choose from {', '.join(PATHS)} or all")
    return chosen


def round_trip(args: argparse.Namespace, old: str, new: str, progress: Callable | None = None) -> list:
    """One pair, with the options `check` and `matrix` share."""
    from pytest_chroma_compat.roundtrip import pair

    return pair.check_pair(
        old,
        new,
        round_trip_paths(args.path or "all"),
        examples=args.examples,
        seed=args.seed,
        profile=args.profile,
        failures_dir=args.failures_dir,
        progress=progress,
        max_shrinks=args.max_shrinks,
    )


def check_examples(args: argparse.Namespace) -> None:
    from pytest_chroma_compat.roundtrip.matrix.plan import (
        MAX_EXAMPLES,
        MAX_SHRINKS,
    )  # every count from an option has an upper bound

    if args.examples is not None and args.examples < 1:
        raise CompatError(f"--examples must be at least 1, not {args.examples}")
    if args.examples is not None and args.examples > MAX_EXAMPLES:
        raise CompatError(f"--examples must be a whole number from 1 to {MAX_EXAMPLES}, not {args.examples}")
    if getattr(args, "max_shrinks", None) is not None and args.max_shrinks < 0:
        raise CompatError(f"--max-shrinks must be 0 or more, not {args.max_shrinks}")
    if getattr(args, "max_shrinks", None) is not None and args.max_shrinks > MAX_SHRINKS:
        raise CompatError(f"--max-shrinks must be a whole number from 0 to {MAX_SHRINKS}, not {args.max_shrinks}")


def round_trip_options(p: argparse.ArgumentParser, cases: str = "the cache's failures/") -> None:
    p.add_argument(
        "--path",
        "--paths",
        dest="path",
        help="in-place, export-import, unflushed-wal, a comma list, or all (the default)",
    )
    p.add_argument("--examples", type=int, help="Hypothesis examples per path (default: from the profile)")
    p.add_argument("--seed", type=int, help="Hypothesis seed, for a reproducible run")
    p.add_argument(
        "--max-shrinks",
        type=int,
        metavar="N",
        help="runs Hypothesis may spend shrinking a failure (default: from the profile)",
    )
    p.add_argument(
        "--profile", choices=("ci", "dev", "thorough"), help="Hypothesis profile (env: CHROMA_COMPAT_PROFILE)"
    )
    p.add_argument("--failures-dir", help=f"where failing cases are saved (default: {cases})")
