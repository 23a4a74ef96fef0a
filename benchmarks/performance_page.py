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
        rows.append(
            [row["case"], f"{row['ours_seconds']:.2f} s", f"{row['pip_seconds']:.2f} s", _x(row["ratio"]), target]
        )
    pins = ", ".join(r["constraints"]) or "none"
    return (
        [
            f"chromadb {r['release']}, the same requirements on both sides ({' '.join(r['requirements'])}; "
            f"constraints: {pins}); pip {r['pip']} (the venv's own); cold: 1 run each, warm: median of "
            f"{r['repeats']}. Pip's warm runs got their files from {r['pip_warm_source']}.",
            "",
        ]
        + _table(
            ["case", "chroma-compat env ensure (uv)", "python -m venv + pip install", "pip / ours", "target"], rows
        )
        + [
            "",
            f"Warm runs, seconds: {json.dumps(r['runs'])}. For scale: `python -c pass` takes "
            f"{r['python_startup_seconds']:.3f} s here. Ours also freezes and import-checks each new environment.",
        ]
    )


def _worker(r: dict) -> list[str]:
    rows = [
        [
            row["phase"],
            _n(row["records"]),
            _n(row["worker_records_per_s"]),
            _n(row["in_process_records_per_s"]),
            _x(row["ratio"]),
        ]
        for row in r["rows"]
    ]
    rows.append(["all three", "", f"{r['worker_seconds']:.2f} s", f"{r['in_process_seconds']:.2f} s", _x(r["ratio"])])
    return [
        f"chromadb {r['release']}, ephemeral client, {_n(r['records'])} records x {r['dim']}-d (seeded numpy), "
        f"added and read back by id in batches of {r['batch']}, {_n(r['queries'])} queries in batches of "
        f"{r['query_batch']} (n_results 10); median of {r['repeats']} runs per side, sides alternating.",
        "",
    ] + _table(
        [
            "phase",
            "records",
            "through the worker, rec/s",
            "in-process (the env's python), rec/s",
            "worker / in-process",
        ],
        rows,
    )


def _round_trip(r: dict) -> list[str]:
    rows = [
        [
            r["pair"],
            _n(r["harness_examples_per_min"], 1),
            _n(r["baseline_examples_per_min"], 1),
            _x(r["ratio"]),
            f">= {r['target_ratio']}x",
        ]
    ]
    failing = f" {len(r['failing_examples'])} example(s) failed their check." if r["failing_examples"] else ""
    return [
        f"The same {r['examples']} generated in-place cases: the harness keeps one worker per release alive; "
        f"the baseline starts a fresh worker per side per example ({r['baseline_examples']} examples, "
        f"{r['baseline_seconds_per_example']} s each).{failing}",
        "",
    ] + _table(["pair", "harness examples/min", "process per example, examples/min", "ratio", "target"], rows)


def _validate(r: dict) -> list[str]:
    def line(row: dict, source: str) -> list[str]:
        return [
            _n(row["size"]),
            _n(row["get_loop_records_per_s"]),
            _n(row["validate_compare_records_per_s"]),
            _x(row["ratio"]),
            f">= {r['target_ratio']}x",
            f"{row['pair_ceiling_ratio']:.2f}x",
            f"{_n(row['peak_rss_mb'])} MB",
            source,
        ]

    rows = [line(row, "this run") for row in r["rows"]]
    notes = []
    prev = r.get("previous_full_run")
    if prev and not any(row["size"] == prev["row"]["size"] for row in r["rows"]):
        rows.append(line(prev["row"], f"*previous full run, {prev['date']}*"))
        notes.append(
            f"*The {_n(prev['row']['size'])} row is not from this run*: it is the most recent full run "
            f"(`{prev['command']}`, {prev['date']}; docs/validate-scale.json), both sides of it measured "
            "in that run. `nox -s benchmarks -- --only validate --full` measures it again "
            "(most of an hour, several GB)."
        )
    return (
        [
            f"chromadb {r['release']} -> {r['release']}, {r['dim']}-d, pages of {r['batch_size']}: validate's "
            "compare phase against a plain `get(limit, offset)` loop in the release's own worker (fastest pass); "
            "each row's sides from one run.",
            "",
        ]
        + _table(
            [
                "records",
                "get loop rec/s",
                "validate compare rec/s",
                "ratio",
                "target",
                "two readers at once (ceiling)",
                "harness peak RSS",
                "measured",
            ],
            rows,
        )
        + ([""] + notes if notes else [])
        + (["", "Missed: " + "; ".join(r["missed"])] if r["missed"] else [])
    )


def _matrix(r: dict) -> list[str]:
    rows = [
        [
            r["plan"],
            f"{r['single_seconds']:.1f} s",
            f"{r['sharded_seconds']:.1f} s",
            _x(r["ratio"]),
            "yes" if r["equal"] else f"**no**: {r.get('difference', '')}",
        ]
    ]
    return [
        f"{r['pairs']} release pair(s); {r['shards']} shards run at once ({r['jobs']} job(s)) against one "
        f"process for the whole plan, back to back; {r['cores']} cores.",
        "",
    ] + _table(
        ["plan", "one process", f"{r['shards']} shards at once", "speed-up", "merged result equals the single one"],
        rows,
    )


def _short(text: str | None, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pct(share: float | None) -> str:
    return "?" if share is None else f"{100 * share:.1f}%"


def _loads(m: dict) -> str:
    def avg(x: list | None) -> str:
        return "?" if not x else " / ".join(f"{v:.2f}" for v in x)

    return f"load {avg(m.get('load_before'))} -> {avg(m.get('load_after'))}"


#: the breakdown's measurements, in page order
BREAKDOWN_PARTS = (
    ("pair", "One whole checked pair"),
    ("steady", "A steady in-place example"),
    ("validate", "validate of a small store, warm"),
)
PHASE_HEAD = [
    "phase",
    "seconds (nested phases included)",
    "share of the total",
    "own seconds",
    "count",
    "on other threads, overlapped: s (count)",
]


def phase_row(p: dict, per: int | None = None) -> list[str]:
    """One phase's row; ``per``: examples, for a column of seconds per example after the phase."""
    bg = f"{p['background_seconds']:.2f} s ({p['background_count']})" if p.get("background_count") else ""
    own = "" if p["exclusive"] is None else f"{p['exclusive']:.2f}"
    row = [p["phase"], f"{p['seconds']:.2f}", _pct(p["share"]), own, str(p["count"]), bg]
    if per:
        row.insert(1, f"{p['seconds'] / per:.4f}")
    return row


def example_row(e: dict) -> list[str]:
    return [
        e["path"],
        e["mode"],
        str(e["examples"]),
        f"{e['mean_seconds']:.3f}",
        f"{e['mean_worker_calls']:.1f}",
        str(e["process_starts"]),
    ]


def _breakdown_part(key: str, m: dict) -> list[str]:
    if key == "pair":
        verdicts = "; ".join(
            f"{v['path']} {v['outcome']} ({v['examples']} example(s), {v['shrinks']} shrink(s), "
            f"{v['seconds']:.1f} s; rollback: {_short(v['rollback'])})"
            for v in m["verdicts"]
        )
        head = (
            f"{m['what']}: `{m['command']}`, run in this process through the check command's own options and "
            f"the pair runner: **{m['total_seconds']:.1f} s**, {_loads(m)}. Verdicts: {verdicts}."
        )
    elif key == "steady":
        failing = f" {m['failing_examples']} failed their check." if m["failing_examples"] else ""
        head = (
            f"{m['what']}: **{m['seconds_per_example']:.3f} s per example** over {m['examples']} examples "
            f"({m['total_seconds']:.2f} s), {_loads(m)}.{failing}"
        )
    else:
        timings = ", ".join(f"{k} {v:.2f} s" for k, v in m["validate_timings"].items())
        head = (
            f"{m['what']}: **{m['total_seconds']:.2f} s** ({m['verdict']}), {_loads(m)}; the run before it "
            f"(which fills what is not cached yet) took {m['first_run_seconds']:.2f} s ({m['first_verdict']}). "
            f"validate's own timings: {timings}."
        )
    per = m["examples"] if key == "steady" else None
    head_row = PHASE_HEAD[:1] + ["s per example"] + PHASE_HEAD[1:] if per else PHASE_HEAD
    shown = [p for p in m["phases"] if p["count"] or p.get("background_count")]
    idle = [p["phase"] for p in m["phases"] if p not in shown]
    out = ["", head, ""] + _table(head_row, [phase_row(p, per) for p in shown])
    if idle:
        out += ["", "Measured, never ran: " + ", ".join(idle) + "."]
    for gone in m["not_measured"]:
        out += ["", f"**{gone['phase']}: {gone['why']}** (`{gone['name']}`: {gone['detail']})."]
    if m.get("per_example"):
        out += [""] + _table(
            ["path", "example", "examples", "mean s", "mean worker calls", "process starts"],
            [example_row(e) for e in m["per_example"]],
        )
    ops = list(m["worker_ops"].items())[:10]
    if ops:
        out += [
            "",
            "Worker calls by op (calls, seconds): "
            + "; ".join(f"{op} {v['calls']}, {v['seconds']:.2f} s" for op, v in ops)
            + ".",
        ]
    return out


def _breakdown(r: dict) -> list[str]:
    out = [
        "The package's own functions wrapped at run time for one measurement and put back "
        "(`benchmarks/_phases.py`; nothing in the package edited). A phase's seconds include the phases "
        "nested in it, so shares of nested phases overlap; its own seconds exclude them and the worker "
        'calls it made (those are the worker\'s: "inside worker calls"). Work on other threads (workers '
        "prestarted or stopped in the background) overlaps the main thread and is shown apart, never in a "
        "share. A phase whose function no longer exists is named as not measured."
    ]
    for key, title in BREAKDOWN_PARTS:
        if r.get(key):
            out += ["", f"### {title}"] + _breakdown_part(key, r[key])
    return out


def _verdict_words(v: dict | None) -> str:
    return ", ".join(f"{path} {outcome}" for path, outcome in v.items()) if v else "none"


def _side(x: dict) -> str:
    runs = x.get("runs") or []
    return f"{x['seconds']:.1f} s" + (f" (median of {', '.join(f'{v:.1f}' for v in runs)})" if len(runs) > 1 else "")


def pair_time_row(row: dict) -> list[str]:
    b, c = row["baseline"], row["current"]
    if row["same_verdicts"]:
        verdicts = "same: " + _verdict_words(c["verdicts"])
    else:
        verdicts = "**differ**: " + "; ".join(row["differences"])
    ratio = "?" if row["ratio"] is None else f"{row['ratio']:.2f}x"
    return [
        row["pair"],
        _side(b),
        _side(c),
        ratio,
        verdicts,
        f"{row['published']['seconds']:.1f} s",
    ]


def _pair_time(r: dict) -> list[str]:
    commits = r["commits"]
    changed = commits.get("current_changed_files")
    rows = [pair_time_row(row) for row in r["rows"]]
    med = r["median_ratio"]
    met = "?" if med is None else "met" if med <= r["target_ratio"] else "**missed**"
    rows.append(
        [
            "median",
            "?" if r["median_baseline_seconds"] is None else f"{r['median_baseline_seconds']:.1f} s",
            "?" if r["median_current_seconds"] is None else f"{r['median_current_seconds']:.1f} s",
            "?" if med is None else f"**{med:.3f}x** (of the per-pair ratios)",
            "all equal" if r["all_same_verdicts"] else "**not all equal**",
            "",
        ]
    )
    return (
        [
            f"This tree (`{commits['current'][:10]}`"
            + (f" plus {changed} changed file(s)" if changed else "")
            + f") against `{r['baseline_ref']}` (`{commits['baseline'][:10]}`, a git worktree made for this run "
            f"and removed after it), each pair checked {r.get('repeats', 1)} time(s) per side (the median counts), "
            "each check in a fresh process with its cwd in a "
            "temporary directory, the side that goes first alternating from run to run, on the same cached "
            f"release environments: `{r['command']}` "
            + (
                "(the published matrix's configuration)."
                if r["config"]["examples"] == r.get("matrix_examples")
                else f"(the published matrix's configuration but {r['config']['examples']} example(s) per path, not "
                f"{r.get('matrix_examples')})."
            ),
            "",
        ]
        + _table(
            [
                "pair",
                "baseline",
                "this tree",
                "this tree / baseline",
                "verdicts per path",
                f"published matrix ({r.get('matrix_generated')}, an older harness)",
            ],
            rows,
        )
        + [
            "",
            f"Target: the median ratio at most {r['target_ratio']}x (halved): {met}."
            + ("" if r["all_same_verdicts"] else " **The verdicts differ between the two sides (see the table).**")
            + " Each row's load: "
            + "; ".join(f"{row['pair']} {_loads(row)}" for row in r["rows"])
            + ".",
        ]
    )


SECTIONS: dict[str, tuple[str, Callable[[dict], list[str]]]] = {
    "provisioning": ("Environment provisioning, cold and warm, against venv + pip", _provisioning),
    "worker": ("Worker round-trip overhead against in-process calls", _worker),
    "round-trip": ("Round trip against a process per example", _round_trip),
    "validate": ("validate against a plain get loop at 10k, 100k and 1M records", _validate),
    "matrix": ("Sharded matrix against one process", _matrix),
    "breakdown": ("Where the time goes: a checked pair, a steady example, validate of a small store", _breakdown),
    "pair-time": ("Seconds per checked pair: this tree against the baseline commit", _pair_time),
}


def _load(watch: dict) -> str:
    def avg(x: list | None) -> str:
        return "?" if not x else " / ".join(f"{v:.2f}" for v in x)

    other = watch.get("other_processes_cores")
    return (
        f"load average (1/5/15 min) {avg(watch.get('load_before'))} before, {avg(watch.get('load_after'))} "
        f"after; other processes used {'?' if other is None else f'{other:.2f}'} core(s) meanwhile; "
        f"took {watch.get('seconds', 0):,.0f} s"
    )


def _machine(m: dict) -> str:
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}, "
        f"uv {m['uv'] or '(none)'}"
    )


def render(data: dict) -> str:
    m = data["machine"]
    out = [
        "# Performance",
        "",
        "Generated by `nox -s benchmarks` (`benchmarks/run.py`) from docs/performance.json; do not edit by hand. "
        "Each comparison measures both sides in one run, back to back or interleaved, and reports their ratio.",
        "",
        f"Run of {data['generated']} (`{data['command']}`).",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']} |",
        f"| cores | {m['cores']} |",
        f"| RAM | {m['ram_gib']} GiB |",
        f"| OS | {m['os']} |",
        f"| Python | {m['python']} |",
        f"| uv | {m['uv'] or '(none)'} |",
        f"| date | {m['date']} |",
        "",
        "The machine is shared with other work: each section gives the load before and after it and the CPU "
        "other processes used while it ran; a short section disturbed by them was measured again, and one still "
        "disturbed says so.",
        "",
    ]
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
            out.append(
                " Measured again: "
                + "; ".join(
                    f"an earlier attempt had other processes at {d.get('other_processes_cores')} core(s)"
                    for d in sec["discarded"]
                )
                + "."
            )
        if sec.get("noisy"):
            out.append(
                f" **Other processes used {sec['watch'].get('other_processes_cores')} core(s) while this was "
                "measured: its ratios are rough.**"
            )
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
