"""docs/performance.md, rendered from the JSON of a ``benchmarks/run.py`` run and nothing else.

Why a renderer of its own: the page must say only what a run measured, so it
is made from the run's JSON (``docs/performance.json``) and can be made again
from it: ``python benchmarks/performance_page.py docs/performance.json docs/performance.md``.
A section carried over from an earlier run keeps its own date and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

RERUN = "nox -s benchmarks -- --only {name}"


def _n(x: float | int | None, digits: int = 0) -> str:
    if x is None:
        return "?"
    return f"{x:,.{digits}f}"


def _x(ratio: float | None) -> str:
    return "?" if ratio is None else f"**{ratio:.2f}x**" if ratio < 10 else f"**{ratio:.1f}x**"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _provisioning(r: dict) -> list[str]:
    rows = []
    for row in r["rows"]:
        target = ""
        if row.get("target_seconds"):
            met = "met" if row["ours_seconds"] < row["target_seconds"] else "**missed**"
            target = f"ours under {row['target_seconds']} s ({met})"
        rows.append([row["case"], f"{row['ours_seconds']:.2f} s", f"{row['pip_seconds']:.2f} s",
                     _x(row["ratio"]), target])
    pins = ", ".join(r["constraints"]) or "none"
    return [f"chromadb {r['release']}, the same requirements on both sides ({' '.join(r['requirements'])}; "
            f"constraints: {pins}); pip {r['pip']} (the venv's own); cold: 1 run each, warm: median of "
            f"{r['repeats']}. Pip's warm runs got their files from {r['pip_warm_source']}.", ""] + _table(
        ["case", "chroma-compat env ensure (uv)", "python -m venv + pip install", "pip / ours", "target"], rows) + [
        "", f"Warm runs, seconds: {json.dumps(r['runs'])}. For scale: `python -c pass` takes "
            f"{r['python_startup_seconds']:.3f} s here. Ours also freezes and import-checks each new environment."]


def _worker(r: dict) -> list[str]:
    rows = [[row["phase"], _n(row["records"]), _n(row["worker_records_per_s"]), _n(row["in_process_records_per_s"]),
             _x(row["ratio"])] for row in r["rows"]]
    rows.append(["all three", "", f"{r['worker_seconds']:.2f} s", f"{r['in_process_seconds']:.2f} s", _x(r["ratio"])])
    return [f"chromadb {r['release']}, ephemeral client, {_n(r['records'])} records x {r['dim']}-d (seeded numpy), "
            f"added and read back by id in batches of {r['batch']}, {_n(r['queries'])} queries in batches of "
            f"{r['query_batch']} (n_results 10); median of {r['repeats']} runs per side, sides alternating.",
            ""] + _table(
        ["phase", "records", "through the worker, rec/s", "in-process (the env's python), rec/s",
         "worker / in-process"], rows)


def _round_trip(r: dict) -> list[str]:
    rows = [[r["pair"], _n(r["harness_examples_per_min"], 1), _n(r["baseline_examples_per_min"], 1),
             _x(r["ratio"]), f">= {r['target_ratio']}x"]]
    failing = f" {len(r['failing_examples'])} example(s) failed their check." if r["failing_examples"] else ""
    return [f"The same {r['examples']} generated in-place cases: the harness keeps one worker per release alive; "
            f"the baseline starts a fresh worker per side per example ({r['baseline_examples']} examples, "
            f"{r['baseline_seconds_per_example']} s each).{failing}", ""] + _table(
        ["pair", "harness examples/min", "process per example, examples/min", "ratio", "target"], rows)


def _validate(r: dict) -> list[str]:
    def line(row: dict, source: str) -> list[str]:
        return [_n(row["size"]), _n(row["get_loop_records_per_s"]), _n(row["validate_compare_records_per_s"]),
                _x(row["ratio"]), f">= {r['target_ratio']}x", f"{row['pair_ceiling_ratio']:.2f}x",
                f"{_n(row['peak_rss_mb'])} MB", source]

    rows = [line(row, "this run") for row in r["rows"]]
    notes = []
    prev = r.get("previous_full_run")
    if prev and not any(row["size"] == prev["row"]["size"] for row in r["rows"]):
        rows.append(line(prev["row"], f"*previous full run, {prev['date']}*"))
        notes.append(f"*The {_n(prev['row']['size'])} row is not from this run*: it is the most recent full run "
                     f"(`{prev['command']}`, {prev['date']}; docs/validate-scale.json), both sides of it measured "
                     "in that run. `nox -s benchmarks -- --only validate --full` measures it again "
                     "(most of an hour, several GB).")
    return [f"chromadb {r['release']} -> {r['release']}, {r['dim']}-d, pages of {r['batch_size']}: validate's "
            "compare phase against a plain `get(limit, offset)` loop in the release's own worker (fastest pass); "
            "each row's sides from one run.", ""] + _table(
        ["records", "get loop rec/s", "validate compare rec/s", "ratio", "target", "two readers at once (ceiling)",
         "harness peak RSS", "measured"], rows) + ([""] + notes if notes else []) + (
        ["", "Missed: " + "; ".join(r["missed"])] if r["missed"] else [])


def _matrix(r: dict) -> list[str]:
    rows = [[r["plan"], f"{r['single_seconds']:.1f} s", f"{r['sharded_seconds']:.1f} s", _x(r["ratio"]),
             "yes" if r["equal"] else f"**no**: {r.get('difference', '')}"]]
    return [f"{r['pairs']} release pair(s); {r['shards']} shards run at once ({r['jobs']} job(s)) against one "
            f"process for the whole plan, back to back; {r['cores']} cores.", ""] + _table(
        ["plan", "one process", f"{r['shards']} shards at once", "speed-up", "merged result equals the single one"],
        rows)


SECTIONS: dict[str, tuple[str, Callable[[dict], list[str]]]] = {
    "provisioning": ("Environment provisioning, cold and warm, against venv + pip", _provisioning),
    "worker": ("Worker round-trip overhead against in-process calls", _worker),
    "round-trip": ("Round trip against a process per example", _round_trip),
    "validate": ("validate against a plain get loop at 10k, 100k and 1M records", _validate),
    "matrix": ("Sharded matrix against one process", _matrix),
}


def _load(watch: dict) -> str:
    def avg(x: list | None) -> str:
        return "?" if not x else " / ".join(f"{v:.2f}" for v in x)

    other = watch.get("other_processes_cores")
    return (f"load average (1/5/15 min) {avg(watch.get('load_before'))} before, {avg(watch.get('load_after'))} "
            f"after; other processes used {'?' if other is None else f'{other:.2f}'} core(s) meanwhile; "
            f"took {watch.get('seconds', 0):,.0f} s")


def _machine(m: dict) -> str:
    return (f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}, "
            f"uv {m['uv'] or '(none)'}")


def render(data: dict) -> str:
    m = data["machine"]
    out = ["# Performance", "",
           "Generated by `nox -s benchmarks` (`benchmarks/run.py`) from docs/performance.json; do not edit by hand. "
           "Each comparison measures both sides in one run, back to back or interleaved, and reports their ratio.",
           "", f"Run of {data['generated']} (`{data['command']}`).", "",
           "| machine | |", "|---|---|", f"| CPU | {m['cpu']} |", f"| cores | {m['cores']} |",
           f"| RAM | {m['ram_gib']} GiB |", f"| OS | {m['os']} |", f"| Python | {m['python']} |",
           f"| uv | {m['uv'] or '(none)'} |", f"| date | {m['date']} |", "",
           "The machine is shared with other work: each section gives the load before and after it and the CPU "
           "other processes used while it ran; a short section disturbed by them was measured again, and one still "
           "disturbed says so.", ""]
    for name, (title, body) in SECTIONS.items():
        sec = data["sections"].get(name)
        out += [f"## {title}", ""]
        if sec is None:
            out += ["Not measured yet: `" + RERUN.format(name=name) + "`.", ""]
            continue
        if sec.get("error"):
            out += [f"Could not be measured on {sec['date']}: {sec['error']}", ""]
        else:
            out += body(sec["result"]) + [""]
        carried = sec.get("run") != data["generated"]
        when = f"*from an earlier run, {sec['date']}*" if carried else f"measured {sec['date']}"
        out.append(f"{when}; {_load(sec['watch'])}.")
        if sec.get("discarded"):
            out.append(" Measured again: " + "; ".join(
                f"an earlier attempt had other processes at {d.get('other_processes_cores')} core(s)"
                for d in sec["discarded"]) + ".")
        if sec.get("noisy"):
            out.append(f" **Other processes used {sec['watch'].get('other_processes_cores')} core(s) while this was "
                       "measured: its ratios are rough.**")
        if carried and sec.get("machine") and _machine(sec["machine"]) != _machine(m):
            out.append(f" Measured on another machine: {_machine(sec['machine'])}.")
        out += ["", f"Rerun: `{sec['command']}`" + (f" (or `{sec['direct']}`)" if sec.get("direct") else ""), ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("json_in", type=Path)
    parser.add_argument("markdown_out", type=Path)
    args = parser.parse_args()
    args.markdown_out.write_text(render(json.loads(args.json_in.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
