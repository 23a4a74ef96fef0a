"""``chroma-compat contracts``: the migration log checked against real releases.

    chroma-compat contracts --from 0.5.23 --to 0.6.3 [--json]
    chroma-compat contracts --measure [--versions '>=0.4.0'] [--json] [--markdown FILE]
    chroma-compat contracts --list

``--from/--to`` runs every probe on both releases (answers are cached per
release and probes.py hash; ``--fresh`` measures again) and shows, per
contract, the log entry, what each release did and what that means for user
code. ``--measure`` does it for a range of releases and reports where each
answer changes, next to where the log says it does.
Exit codes: 0 measured (crossing a contract is information, not a failure);
1 a probe could not run on some release (crash, timeout, install failure);
2 bad input (raised as CompatError; the main CLI prints one line).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common.errors import EXIT_OK, EXIT_UNSAFE, CompatError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "contracts",
        help="the migration log as executable contracts, measured on real releases",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--from", dest="old", help="the release you run today")
    p.add_argument("--to", dest="new", help="the release you want to upgrade to")
    p.add_argument("--measure", action="store_true", help="measure every contract over a range of releases")
    p.add_argument("--versions", help="with --measure: PEP 440 range over the catalogue (default: >=0.4.0)")
    p.add_argument("--markdown", metavar="FILE", help="with --measure: write the report as Markdown")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--list", action="store_true", help="print the contract table and exit")
    p.add_argument("--jobs", type=int, default=4, help="releases measured in parallel (default: 4)")
    p.add_argument("--fresh", action="store_true", help="ignore cached observations and measure again")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    modes = [
        m
        for m, on in (("--list", args.list), ("--measure", args.measure), ("--from/--to", bool(args.old or args.new)))
        if on
    ]
    if len(modes) != 1:
        raise CompatError("contracts: give exactly one of --from X --to Y, --measure or --list")
    if not args.measure and (args.versions or args.markdown):
        raise CompatError("contracts: --versions and --markdown go with --measure")
    if args.jobs < 1:
        raise CompatError("contracts: --jobs must be at least 1")
    if args.list:
        return show_table(args.json)
    if args.measure:
        return measure_range(args)
    if not (args.old and args.new):
        raise CompatError("contracts: --from and --to go together")
    return compare_pair(args)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def show_table(as_json: bool) -> int:
    from pytest_chroma_compat.contracts.measure import load_table

    rows = [c.__dict__ for c in load_table()]
    if as_json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        for c in load_table():
            print(f"{c.id}\t{c.documented or '-'}\t{c.probe or '(not measured)'}\t{c.title}")
    return EXIT_OK


# -- one pair ---------------------------------------------------------------------------------


def compare_pair(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.contracts.measure import (
        SILENT,
        SILENT_ALL,
        by_call,
        compact,
        compare,
        describe_change,
        in_words,
        load_table,
        probe_hash,
        server_probe_hash,
        side_effect_hash,
    )
    from pytest_chroma_compat.engine import releases

    old, new = releases.resolve(args.old), releases.resolve(args.new)
    rows = compare(old, new, fresh=args.fresh)
    unmeasured = [c for c in load_table() if not c.probe]
    failed = [r for r in rows if r.failure]
    if args.json:
        doc = {
            "from": old,
            "to": new,
            "probes_sha256": probe_hash(),
            "server_probes_sha256": server_probe_hash(),
            "side_effects_sha256": side_effect_hash(),
            "contracts": [
                {
                    "id": r.contract.id,
                    "title": r.contract.title,
                    "section": r.contract.section,
                    "documented": r.contract.documented,
                    "quote": r.contract.quote,
                    "from_value": r.before,
                    "to_value": r.after,
                    "crossed": r.crossed,
                    "failure": r.failure or None,
                    "silently_empty": r.silently_empty,
                    "silently_everything": r.silently_everything,
                    "from_in_words": in_words(r.before),
                    "to_in_words": in_words(r.after),
                    "from_by_call": by_call(r.before),
                    "to_by_call": by_call(r.after),
                    "consequence": r.contract.consequence,
                }
                for r in rows
            ],
            "not_measured": [{"id": c.id, "section": c.section, "reason": c.unmeasured} for c in unmeasured],
        }
        print(json.dumps(doc, indent=1, ensure_ascii=False))
        return EXIT_UNSAFE if failed else EXIT_OK
    crossed = [r for r in rows if r.crossed]
    print(
        f"chromadb {old} -> {new}: {len(crossed)} of {len(rows)} measured contracts crossed"
        + (f", {len(failed)} could not be measured" if failed else "")
        + (f", {len(unmeasured)} not measurable here" if unmeasured else "")
    )
    width = max(len(old), len(new)) + 1
    for r in crossed + failed:
        c = r.contract
        print(f"\n{'CROSSED' if r.crossed else 'FAILED'}  {c.id}: {c.title}")
        print(f"  log      [{c.section}] {c.quote}" if c.quote else f"  log      {c.section}")
        if r.failure:
            print(f"  failure  {r.failure}")
        else:
            if not (in_words(r.before) or in_words(r.after)):  # side effects are said in words, below
                print(f"  {old + ':':<{width}} {compact(r.before)}")
                print(f"  {new + ':':<{width}} {compact(r.after)}")
            print(f"  change   {describe_change(r.before, r.after)}")
            if r.silently_empty:
                cases = "; ".join(repr(case) if case else "the call" for case in r.silently_empty)
                print(f"  NOTE     {SILENT}: {cases} raised under {old}, answer nothing (no error) under {new}")
            if r.silently_everything:
                cases = "; ".join(repr(case) if case else "the call" for case in r.silently_everything)
                print(
                    f"  NOTE     {SILENT_ALL}: {cases} raised or matched some records under {old}, "
                    f"match every record (no error) under {new}"
                )
            for version, value in ((old, r.before), (new, r.after)):
                for line in in_words(value):
                    print(f"  {version + ':':<{width}} {line}")
            for version, value in ((old, r.before), (new, r.after)):
                for line in by_call(value):
                    print(f"  by call  {line} ({version})")
        print(f"  means    {c.consequence}")
    same = [r for r in rows if not r.crossed and not r.failure]
    if same:
        print("\nunchanged between the two releases:")
        for r in same:
            if in_words(r.before):  # side effects: every line matters, none is cut short
                print(f"  same     {r.contract.id} [{r.contract.section}]:")
                for line in in_words(r.before):
                    print(f"    {line}")
                continue
            print(f"  same     {r.contract.id} [{r.contract.section}]: {_short(compact(r.before))}")
            for line in by_call(r.before):
                print(f"    by call  {line}")
    for c in unmeasured:
        print(f"  not measured  {c.id} [{c.section}]: {c.unmeasured}")
    return EXIT_UNSAFE if failed else EXIT_OK


def _short(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- a range of releases --------------------------------------------------------------------------


def measure_range(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.contracts.measure import (
        histories,
        observe_many,
        probe_hash,
        server_probe_hash,
        side_effect_hash,
    )
    from pytest_chroma_compat.engine import releases

    spec = args.versions or ">=0.4.0"
    versions = releases.select(spec)
    if len(versions) < 2:
        raise CompatError(f"contracts: the range {spec!r} matches {len(versions)} release(s); need at least two")

    def progress(obs: Any) -> None:
        state = (
            "cached"
            if obs.cached
            else ("FAILED " + "; ".join(sorted(set(obs.failures.values())))[:200] if obs.failures else "measured")
        )
        _say(f"{obs.version}\t{state}")

    observations = observe_many(versions, jobs=args.jobs, fresh=args.fresh, progress=progress)
    hist = histories(versions, observations)
    failures = {v: o.failures for v, o in observations.items() if o.failures}
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    doc = {
        "generated": generated,
        "range": spec,
        "versions": versions,
        "probes_sha256": probe_hash(),
        "server_probes_sha256": server_probe_hash(),
        "side_effects_sha256": side_effect_hash(),
        "contracts": [h.as_dict() for h in hist],
        "failures": failures,
    }
    if args.markdown:
        Path(args.markdown).write_text(markdown(doc))
        _say(f"wrote {args.markdown}")
    if args.json:
        print(json.dumps(doc, indent=1, ensure_ascii=False))
    else:
        for h in hist:
            at = ", ".join(_at(ch) for ch in h.changes) or "-"
            print(f"{h.contract.id:<32} log:{h.contract.documented or '-':<15} changes at: {at:<28} {h.verdict}")
        if failures:
            print(f"\n{len(failures)} release(s) with probes that could not run: {', '.join(failures)}")
    return EXIT_UNSAFE if failures else EXIT_OK


def _at(change: dict) -> str:
    """The release a change happens at, marked when a filter there silently matches nothing or everything."""
    from pytest_chroma_compat.contracts.measure import SILENT, SILENT_ALL

    labels = [
        label for key, label in (("silently_empty", SILENT), ("silently_everything", SILENT_ALL)) if change.get(key)
    ]
    return " ".join([change["at"], *(f"({label})" for label in labels)])


def _anchor(heading: str) -> str:
    """The anchor GitHub and mkdocs give a heading: ``python-3.8-dropped`` is ``#python-38-dropped``."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _span(run: dict) -> str:
    return run["first"] if run["first"] == run["last"] else f"{run['first']} – {run['last']}"


def markdown(doc: dict) -> str:
    from pytest_chroma_compat.contracts.measure import by_call, compact, describe_change, in_words

    vs = doc["versions"]
    lines = [
        "# The migration log, measured",
        "",
        f"Generated {doc['generated']} by `chroma-compat contracts --measure --versions '{doc['range']}' "
        f"--markdown docs/contracts.md` over {len(vs)} releases ({vs[0]} … {vs[-1]}); probes.py sha256 "
        f"`{doc['probes_sha256']}`"
        + (f", server_probes.py sha256 `{doc['server_probes_sha256']}`" if doc.get("server_probes_sha256") else "")
        + (f", side-effect probes sha256 `{doc['side_effects_sha256']}`" if doc.get("side_effects_sha256") else "")
        + ".",
        "",
        "Each contract is an entry of Chroma's migration log (the table is "
        "`pytest_chroma_compat/contracts/table.toml`). Its probe (`contracts/probes.py`) ran on every release "
        "above in that release's own environment (server probes, `contracts/server_probes.py`, start that "
        "release's own `chroma run` server on 127.0.0.1 and send it plain HTTP requests from the host; "
        "side-effect probes, `contracts/side_effects.py`, run a fresh session of the release in a sandbox "
        "whose HOME, cwd and TMPDIR are empty, under Python audit hooks and strace, with every network "
        "attempt refused and recorded); "
        "a *change* is where two consecutive measured releases answered "
        "differently. The documented release is the log's heading (a release missing from the index means the "
        "next one that exists; a date means the first release uploaded on or after it).",
        "",
        "| contract | log entry | documented | measured change(s) | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in doc["contracts"]:
        at = ", ".join(_at(ch) for ch in c["changes"]) or "—"
        documented = c["documented"] or "—"
        if c["documented_at"] and c["documented_at"] not in c["documented"]:
            documented += f" (→ {c['documented_at']})"
        lines.append(
            f"| [{c['id']}](#{_anchor(c['id'])}) | {_cell(c['section'])} | {_cell(documented)} | {at} "
            f"| {_cell(c['verdict'])} |"
        )
    for c in doc["contracts"]:
        lines += ["", f"## {c['id']}", "", f"**{c['title']}** — log: *{c['section']}*"]
        if c["quote"]:
            lines += ["", f"> {c['quote']}"]
        lines += ["", f"Consequence: {c['consequence']}", "", f"Verdict: {c['verdict']}"]
        if c["documented_note"] and c["documented_note"] != c["documented"]:
            lines.append(f" ({c['documented_note']})")
        if not c["probe"]:
            continue
        lines += ["", f"Probe `{c['probe']}`:", ""]
        previous = None
        for run in c["runs"]:
            n = run["releases"]
            if previous is None:
                lines.append(f"- {_span(run)} ({n} release{'s' * (n > 1)}): `{_cell(compact(run['value']))}`")
            else:
                lines.append(
                    f"- {_span(run)} ({n} release{'s' * (n > 1)}): `{_cell(describe_change(previous, run['value']))}`"
                )
            lines += [f"  - in words: {_cell(line)}" for line in in_words(run["value"])]
            if by_call(run["value"]) != by_call(previous):  # stated where the calls start (or stop) disagreeing
                lines += [f"  - by call: {_cell(line)}" for line in by_call(run["value"]) or ["all calls agree"]]
            previous = run["value"]
        if c["unmeasured"]:
            lines.append(f"- not measured on: {', '.join(c['unmeasured'])}")
    if doc["failures"]:
        lines += ["", "## Releases where a probe could not run", ""]
        for v, fails in doc["failures"].items():
            lines.append(f"- {v}: {_cell('; '.join(sorted(set(fails.values())))[:300])}")
    return "\n".join(lines) + "\n"


# -- sweep --------------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.contracts import sweep
    from pytest_chroma_compat.engine import releases

    versions = releases.select(args.versions)
    if not versions:
        raise CompatError(f"no release in the catalogue matches {args.versions!r}")

    def show(res: sweep.SweepResult) -> None:
        status = "ok" if res.ok else f"FAIL at {res.stage}: {res.error}"
        print(f"{res.version}\t{','.join(res.pins) or '-'}\t{res.seconds}s\t{status}", flush=True)

    results = sweep.sweep(versions, ignore_pins=args.without_pins, progress=show)
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps([sweep.as_dict(r) for r in results], indent=1) + "\n")
    failed = [r.version for r in results if not r.ok]
    _say(
        f"{len(results) - len(failed)} of {len(results)} releases work"
        + (f"; failing: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else EXIT_OK


def register_sweep(sub: argparse._SubParsersAction) -> None:
    sw = sub.add_parser("sweep", help="install every release in a range and drive each through a worker")
    sw.add_argument("--versions", default=">=0.4.0", help="PEP 440 range over releases (default: >=0.4.0)")
    sw.add_argument(
        "--without-pins", action="store_true", help="ignore engine/pins.toml, to see what each rule prevents"
    )
    sw.add_argument("--json", metavar="FILE", help="write the results as JSON")
    sw.set_defaults(handler=cmd_sweep)
