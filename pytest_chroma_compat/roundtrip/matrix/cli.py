"""`chroma-compat matrix`: every pair of some releases in one process, or the same work as a plan, the
shards a CI job matrix runs, and their merge. The whole run and the merge render through one path, so a
merged page is the page one process would have written."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_chroma_compat.common.errors import EXIT_BAD_INPUT, EXIT_OK, CompatError

if TYPE_CHECKING:
    from pathlib import Path


def _say(message: str) -> None:
    from pytest_chroma_compat.cli.verb_args import say

    say(message)


def cmd_matrix(args: argparse.Namespace) -> int:
    """Four modes: the whole matrix in this process, a plan (--plan), one shard of a plan (--plan-file
    --shard), or the merge of shards' results (--merge). The first and the last render alike."""
    if args.merge is not None:
        return _matrix_merge(args)
    if args.plan_file or args.shard is not None:
        return _matrix_shard(args)
    if args.shards is not None and not args.plan:
        raise CompatError("--shards goes with --plan (write a plan); run one shard with --plan-file FILE --shard K")
    if not args.versions:
        raise CompatError("matrix needs --versions (or --plan-file with --shard, or --merge)")
    return _matrix_plan(args) if args.plan else _matrix_whole(args)


def _matrix_inputs(args: argparse.Namespace, seed: int | None) -> dict:
    from pytest_chroma_compat.cli.verb_args import (
        check_examples as _check_examples,
    )
    from pytest_chroma_compat.cli.verb_args import (
        round_trip_paths as _paths,
    )
    from pytest_chroma_compat.cli.verb_args import (
        versions as _versions,
    )
    from pytest_chroma_compat.roundtrip.matrix import plan as matrix_plan

    _check_examples(args)
    return matrix_plan.inputs(
        _versions(args.versions),
        _paths(args.path or "all"),
        upgrades_only=args.upgrades_only,
        seed=seed,
        examples=args.examples,
        profile=args.profile,
        max_shrinks=args.max_shrinks,
    )


def _matrix_plan(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.common import atomic_files
    from pytest_chroma_compat.roundtrip.matrix import plan as matrix_plan

    if args.markdown or args.failures_dir:
        raise CompatError("--plan writes only the plan (to --json FILE, else stdout): drop --markdown/--failures-dir")
    inputs = _matrix_inputs(args, matrix_plan.PLAN_SEED if args.seed is None else args.seed)
    plan = matrix_plan.build(inputs, 1 if args.shards is None else args.shards)
    text = matrix_plan.text(plan)
    if args.json:
        atomic_files.write_text(args.json, text)
    else:
        sys.stdout.write(text)
    empty = sum(not s["pairs"] for s in plan["by_shard"])
    _say(
        f"chroma-compat: plan {plan['plan_id']}: {sum(len(s['pairs']) for s in plan['by_shard'])} pair(s) of "
        f"{len(inputs['versions'])} releases in {plan['shards']} shard(s), about "
        f"{max(s['estimate_s'] for s in plan['by_shard']):.0f} s for the longest"
        + (f"; {empty} shard(s) have no pair" if empty else "")
    )
    return EXIT_OK


_PLANNED = ("versions", "path", "seed", "examples", "profile", "max_shrinks", "upgrades_only", "plan", "shards")


def _given(args: argparse.Namespace, names: Sequence[str]) -> list[str]:
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n) not in (None, False)]


def _matrix_shard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pytest_chroma_compat.common import progress
    from pytest_chroma_compat.roundtrip.matrix import plan as matrix_plan
    from pytest_chroma_compat.roundtrip.matrix import report, shard_run

    if not (args.plan_file and args.shard is not None and args.json):
        raise CompatError("a shard run needs --plan-file FILE --shard K --json RESULT_FILE")
    extra = _given(args, _PLANNED + ("markdown",))
    if extra:
        raise CompatError(f"{extra[0]} cannot be given with --plan-file: a shard runs with its plan's options")
    plan = matrix_plan.load(args.plan_file)
    shard = matrix_plan.shard_of(plan, args.shard)

    def finished(cell: dict) -> None:
        for line in report.pair_lines(cell):
            print(line, flush=True)

    with progress.bar() as live:
        doc, resumed = shard_run.run_shard(plan, args.shard, Path(args.json), args.failures_dir, live, finished)
    cells = [p["cell"] for p in doc["pairs"]]
    unsafe = [f"{c['old']}->{c['new']}" for c in cells if not c["safe"]]
    _say(
        f"chroma-compat: shard {args.shard} of {plan['shards']} (plan {plan['plan_id']}): {len(cells)} of "
        f"{len(shard['pairs'])} pair(s) done"
        + (f" ({resumed} from an earlier run)" if resumed else "")
        + f", {len(cells) - len(unsafe)} SAFE"
        + (f"; NOT SAFE: {', '.join(unsafe)}" if unsafe else "")
    )
    return EXIT_OK


def _cases_dir(args: argparse.Namespace) -> Path | None:
    """--failures-dir, else next to the page (docs/matrix.md -> docs/matrix-cases), so its links resolve."""
    from pathlib import Path

    if args.failures_dir:
        return Path(args.failures_dir)
    page = args.markdown or args.json
    return Path(page).with_name(Path(page).stem + "-cases") if page else None


def _write_matrix(args: argparse.Namespace, doc: dict) -> None:
    from pathlib import Path

    from pytest_chroma_compat.common import atomic_files
    from pytest_chroma_compat.roundtrip.matrix import report

    if args.markdown:
        atomic_files.write_text(args.markdown, report.matrix_markdown(doc, Path(args.markdown).parent))
    if args.json:
        atomic_files.write_json(args.json, doc)


def _matrix_merge(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.common import progress
    from pytest_chroma_compat.roundtrip.matrix import merge as matrix_merge
    from pytest_chroma_compat.roundtrip.matrix import report

    extra = _given(args, _PLANNED + ("plan_file", "shard"))
    if extra:
        raise CompatError(f"{extra[0]} cannot be given with --merge: the results carry their plan's options")
    if not (args.markdown or args.json):
        raise CompatError("--merge needs --markdown FILE and/or --json FILE to write")
    with progress.bar() as live:
        if live:
            live("merging shard results", 0, len(args.merge))
        merged = matrix_merge.merge(args.merge, _cases_dir(args))
        if live:
            live("merging shard results", len(args.merge), len(args.merge))
    for number in merged.missing_shards:
        _say(f"chroma-compat: missing shard {number} of {merged.shards}: no result file for it")
    for old, new in merged.not_run:
        _say(f"chroma-compat: missing pair {old} -> {new}: not run")
    try:
        doc = report.matrix_doc(
            merged.inputs,
            merged.cells,
            plan_id=merged.plan_id,
            tool_version=merged.tool_version,
            not_run=merged.not_run,
            seconds=merged.seconds,
        )
        _write_matrix(args, doc)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:  # cells come from files
        raise CompatError(
            f"a result file's cells are not what `matrix --shard` writes ({type(exc).__name__}: "
            f"{str(exc)[:120]}): run that shard again"
        ) from None
    _say(report.matrix_line(doc))
    return EXIT_OK if merged.complete else EXIT_BAD_INPUT


def _matrix_whole(args: argparse.Namespace) -> int:
    import time

    from pytest_chroma_compat.common import progress
    from pytest_chroma_compat.roundtrip.matrix import plan as matrix_plan
    from pytest_chroma_compat.roundtrip.matrix import report, shard_run

    extra = _given(args, ("shards", "plan_file", "shard"))
    if extra:
        raise CompatError(f"{extra[0]} goes with --plan, --plan-file or --merge")
    inputs = _matrix_inputs(args, args.seed)
    cells = []
    started = time.monotonic()
    with progress.bar() as live:
        for old, new in matrix_plan.pairs(inputs):
            cell, _ = shard_run.run_pair(inputs, old, new, _cases_dir(args), live)
            cells.append(cell)
            for line in report.pair_lines(cell):
                print(line, flush=True)
    doc = report.matrix_doc(
        inputs,
        cells,
        plan_id=matrix_plan.plan_id(inputs),
        tool_version=matrix_plan.tool_version(),
        seconds=time.monotonic() - started,
    )
    _write_matrix(args, doc)
    _say(report.matrix_line(doc))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    from pytest_chroma_compat.cli.verb_args import round_trip_options as _round_trip_options

    mx = sub.add_parser(
        "matrix",
        help="check every ordered pair of some releases (downgrades included); or plan, run and merge it in shards",
    )
    mx.add_argument(
        "--versions",
        nargs="+",
        help="comma- or space-separated releases or series, or a PEP 440 "
        "range such as '>=1.0.0' over the non-yanked catalogue",
    )
    _round_trip_options(mx, cases="next to the page: docs/matrix.md -> docs/matrix-cases")
    mx.add_argument("--upgrades-only", action="store_true", help="only pairs whose old release is older")
    mx.add_argument("--markdown", metavar="FILE", help="write the matrix as Markdown")
    mx.add_argument(
        "--json",
        metavar="FILE",
        help="write the matrix as JSON (with --plan: the plan; with "
        "--shard: the shard's result file, resumed if present)",
    )
    mx.add_argument("--plan", action="store_true", help="write a plan of --shards shards instead of running")
    mx.add_argument("--shards", type=int, metavar="N", help="with --plan: how many shards")
    mx.add_argument("--plan-file", metavar="FILE", help="run one shard of this plan (with --shard)")
    mx.add_argument("--shard", type=int, metavar="K", help="the shard to run, 1-based")
    mx.add_argument("--merge", nargs="+", metavar="FILE", help="merge shards' result files into one matrix")
    mx.set_defaults(handler=cmd_matrix)
