"""Scale benchmark for ``chroma-compat validate``: throughput and the harness's memory at 10k, 100k and 1M records.

For each size, side by side in one run, on one store written by the release
(one collection, seeded random float32 vectors, a short document and a small
metadata dict per record):

(a) baseline: a plain ``col.get(limit=B, offset=o, include=[embeddings,
    documents, metadatas])`` loop inside the release's own worker, timed there
    (nothing crosses the pipe), before and after (b), each repeated until 2 s
    have passed; the fastest pass counts (the strictest baseline);
    The first pass is reported as well: validate reads each fresh copy once,
    cold, while repeated passes over one store get faster (measured on 1.5.9 at
    10k: 1.5 s, then 1.47, 1.29, 1.21 s);
(a') for reference, a loop that reads the way validate does (ids in chunks of
    64 pages, then each page by id), after (b): chromadb's ``offset`` scans every
    record before it, so this loop outruns (a), more so the larger the store, and
    validate's stream divided by it is what validate costs beyond reading;
(a'') two of (a') at once, one per worker, each on its own copy: validate reads
    every record through two releases, and on a 2-core machine one 1.5.9 reader
    already keeps a core busy, so this pair is the ceiling validate can reach here;
(b) ``validate(store, release, from_=release, contracts=False, batch_size=B)``
    in a fresh host subprocess, so its peak RSS (``ru_maxrss``) is the
    harness's own, not the workers'.

Reported: records/s of validate's compare phase (``timings["compare"]``: every
record read and compared on both sides) and of the whole run (``timings["total"]``,
which adds copying the store twice, hashing it twice, the checks and the
rollback), each as a ratio to the baseline and to the two-reader ceiling (a''),
and the harness's peak RSS as a ratio to the smallest size. Since issue 27 the
checks that follow the records are phases of their own (``queries``: the query
and filter checks; ``data checks``; ``write check``), reported beside compare in
seconds, and summed with it as "compare + checks" (what ``compare`` measured
before), with its rate and ratios too: nothing validate does is left out.
Targets: compare >= 0.9x the slower of the get loop and the two-reader ceiling
(at 10k the ceiling, two readers sharing two cores; at 100k the get loop, whose
offset scans grow with the store); peak RSS flat (within 1.5x of the smallest
size). Exit 1 when a target is missed or a validation does not pass (everything
is still printed). Also printed per size: the compare loop's own rate ("stream":
first to last page), and warnings when the machine was not quiet (other
processes' CPU, or the get loop's speed changing between before and after): the
ratios are only as good as that.

Stores are built once and cached under ``<cache>/stores/bench/`` keyed by
release, size, dim and seed (built in a temporary directory and renamed, so an
interrupted build is never reused); the records are generated inside the
release's worker (``benchmarks/_bench_worker.py``). validate copies a store
twice into its work directory (default ``<cache>/stores/bench-work``, same
filesystem): 1M x 384 needs several GB free.

    python benchmarks/validate_scale.py [--sizes 10000,100000,1000000] [--release 1.5.9]
        [--dim 384] [--batch-size 1000] [--json FILE] [--workdir DIR] [--profile DIR]

``--profile DIR`` runs each validation under cProfile and writes
``DIR/validate-<size>.prof`` (throughput then includes the profiler's overhead).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

COLLECTION = "bench"
SEED = 0
SLICE = 50_000  # records per Release.run call while building: progress, and well inside the timeout
TIMEOUT = 3600.0
TARGET_COMPARE_RATIO = 0.9
TARGET_RSS_RATIO = 1.5
#: validate's phases after the records (seconds, reported beside compare; see the docstring)
CHECK_PHASES = ("queries", "data checks", "write check")
NOISY = 0.15  # cores used by other processes during a measurement before its ratios are flagged
SPREAD = 1.25  # the get loop before and after validate differ by more: the machine's speed changed meanwhile
STORE_FORMAT = 1  # bump when _bench_worker's records change, so old cached stores are not reused


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cpu_busy() -> float | None:
    """CPU-seconds the whole machine has been busy (Linux ``/proc/stat``), or None elsewhere."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU-seconds of this process and its reaped children (the validate subprocess, every worker)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Noise:
    """How much CPU *other* processes used while a size was measured: ratios are only as good as this."""

    def __init__(self) -> None:
        self.busy, self.own, self.wall = _cpu_busy(), _own_cpu(), time.perf_counter()

    def other_share(self) -> float | None:
        busy = _cpu_busy()
        if busy is None or self.busy is None:
            return None
        other = (busy - self.busy) - (_own_cpu() - self.own)
        return max(0.0, other) / (time.perf_counter() - self.wall)  # in cores, averaged


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# -- stores -----------------------------------------------------------------------------------


def bench_root() -> Path:
    from pytest_chroma_compat.engine import cache_dirs

    root = cache_dirs.stores_dir() / "bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def store_key(release: str, size: int, dim: int) -> str:
    return f"chromadb-{release}-n{size}-d{dim}-s{SEED}-f{STORE_FORMAT}"


def ensure_store(release: str, size: int, dim: int) -> tuple[Path, dict]:
    """The cached store for (release, size, dim), built now if missing; returns (store dir, build info)."""
    from pytest_chroma_compat.engine.client import Release

    final = bench_root() / store_key(release, size, dim)
    if (final / "build.json").is_file():
        return final / "store", {**json.loads((final / "build.json").read_text()), "cached": True}
    for stale in bench_root().glob(f".build-{final.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # an interrupted build: never reused
    tmp = bench_root() / f".build-{final.name}-{os.getpid()}"
    tmp.mkdir()
    store = tmp / "store"
    _log(f"building {final.name} ...")
    started = time.perf_counter()
    with Release(release, timeout=TIMEOUT) as rel:
        client = rel.persistent(store)
        for lo in range(0, size, SLICE):
            hi = min(lo + SLICE, size)
            rel.run(
                "_bench_worker:seed",
                client=client,
                sys_path=[str(HERE)],
                name=COLLECTION,
                start=lo,
                stop=hi,
                dim=dim,
                seed=SEED,
            )
            rate = hi / (time.perf_counter() - started)
            _log(f"  {hi}/{size} records ({rate:,.0f}/s, ~{(size - hi) / rate:,.0f} s left)")
        client.close()
    with Release(release, timeout=TIMEOUT) as rel:  # reopen once: whatever a first open does happens now
        got = rel.run("_bench_worker:count", client=rel.persistent(store), sys_path=[str(HERE)], name=COLLECTION)
    seconds = time.perf_counter() - started
    if got != size:
        raise RuntimeError(f"built store has {got} records, expected {size}")
    info = {
        "release": release,
        "size": size,
        "dim": dim,
        "seed": SEED,
        "build_seconds": round(seconds, 1),
        "bytes": _du(store),
    }
    (tmp / "build.json").write_text(json.dumps(info, indent=1))
    tmp.rename(final)
    _log(f"built {final.name} in {seconds:.1f} s ({info['bytes'] / 1e6:,.0f} MB)")
    return final / "store", {**info, "cached": False}


# -- (a) the baseline -------------------------------------------------------------------------


def get_loop(
    release: str, store: Path, batch_size: int, loop: str = "get_loop", start: threading.Barrier | None = None
) -> dict:
    """``loop`` in a worker of ``release``, once the collection is open; with ``start``, once every
    party of that barrier is ready too, so loops in several workers run at the same time."""
    from pytest_chroma_compat.engine.client import Release

    with Release(release, timeout=TIMEOUT) as rel:
        client = rel.persistent(store)
        rel.run("_bench_worker:count", client=client, sys_path=[str(HERE)], name=COLLECTION)  # opened, warm
        if start is not None:
            start.wait()
        out = rel.run(
            f"_bench_worker:{loop}", client=client, sys_path=[str(HERE)], name=COLLECTION, batch_size=batch_size
        )
        client.close()
    out["records_per_s"] = out["records"] / out["seconds"]
    return out


def pair_loop(release: str, store: Path, batch_size: int, workdir: Path, loop: str = "by_id_loop") -> dict:
    """(a'') Two workers of the release, each on its own copy, running the same loop at once.

    Why: validate reads every record through two releases, one per worker, and
    this machine may have fewer cores than two readers want. This is the most two
    releases reading at once manage here; validate's rate over it says what
    validate costs beyond that.
    """
    from concurrent.futures import ThreadPoolExecutor

    copies = []
    try:
        for i in range(2):
            copies.append(workdir / f"pair-{os.getpid()}-{i}")
            shutil.copytree(store, copies[-1])
        start = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda c: get_loop(release, c, batch_size, loop, start), copies))
    finally:
        for c in copies:
            shutil.rmtree(c, ignore_errors=True)
    slower = max(r["seconds"] for r in runs)  # both must finish: the pair reads at the slower one's pace
    first = max(r["first_seconds"] for r in runs)  # each copy's first pass: cold, as validate reads its copies
    return {
        "records_per_s": runs[0]["records"] / slower,
        "seconds": slower,
        "first_records_per_s": runs[0]["records"] / first,
    }


# -- (b) validate, in a fresh process -----------------------------------------------------------


def run_validate(release: str, store: Path, batch_size: int, workdir: Path, profile: Path | None) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(store),
        "--release",
        release,
        "--batch-size",
        str(batch_size),
        "--workdir",
        str(workdir),
    ]
    if profile:
        cmd += ["--profile", str(profile)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the validate subprocess failed (status {proc.returncode}); see its stderr above")
    return json.loads(lines[-1])


def child(args: argparse.Namespace) -> int:
    """Runs in the fresh subprocess: one validation, then one JSON line on stdout."""
    from pytest_chroma_compat.snapshot.validate import validate

    marks: dict = {}

    def progress(label: str, done: int, total: int) -> None:
        if label.startswith("compare"):
            now = time.perf_counter()
            marks.setdefault("first", (now, done))
            marks["last"] = (now, done)

    kwargs = dict(
        from_=args.release, contracts=False, batch_size=args.batch_size, workdir=Path(args.workdir), progress=progress
    )
    started = time.perf_counter()
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        v = prof.runcall(validate, args.child, args.release, **kwargs)
        prof.dump_stats(args.profile)
    else:
        v = validate(args.child, args.release, **kwargs)
    wall = time.perf_counter() - started
    stream = None
    own = sum(getattr(c, "stream_seconds", 0.0) or 0.0 for c in v.collections)  # validate's own, when it has it
    if own:
        stream = {"records": sum(c.records_compared for c in v.collections), "seconds": own}
    elif "first" in marks and marks["last"][1] > marks["first"][1]:
        (t0, n0), (t1, n1) = marks["first"], marks["last"]
        stream = {"records": n1 - n0, "seconds": t1 - t0}
    out = {
        "exit_code": v.exit_code,
        "summary": v.summary,
        "error": v.error,
        "wall": wall,
        "timings": v.timings,
        "records_compared": sum(c.records_compared for c in v.collections),
        "stream": stream,
        "checks": [
            {
                "name": c.name,
                "status": c.status,
                "seconds": round(c.seconds, 3),
                **({"detail": c.detail[:300]} if c.failed else {}),
            }
            for c in v.checks
        ],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "workers_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print(json.dumps(out), flush=True)
    return 0


# -- the run ----------------------------------------------------------------------------------------


def measure(release: str, size: int, dim: int, batch_size: int, workdir: Path, profile_dir: Path | None) -> dict:
    store, build = ensure_store(release, size, dim)
    free = shutil.disk_usage(workdir).free
    if free < 2.2 * build["bytes"]:
        raise RuntimeError(
            f"{workdir} has {free / 1e9:.1f} GB free; validating {size} records needs about "
            f"{2.2 * build['bytes'] / 1e9:.1f} GB (two copies of the store)"
        )
    noise = Noise()
    _log(f"[{size}] get loop (before) ...")
    before = get_loop(release, store, batch_size)
    _log(f"[{size}]   {before['records_per_s']:,.0f} records/s")
    _log(f"[{size}] validate ...")
    profile = profile_dir / f"validate-{size}.prof" if profile_dir else None
    val = run_validate(release, store, batch_size, workdir, profile)
    _log(f"[{size}]   exit {val['exit_code']}: {val['summary']}")
    _log(f"[{size}] get loop (after) ...")
    after = get_loop(release, store, batch_size)
    _log(f"[{size}]   {after['records_per_s']:,.0f} records/s")
    _log(f"[{size}] by-id loop (validate's access pattern) ...")
    by_id = get_loop(release, store, batch_size, "by_id_loop")
    _log(f"[{size}]   {by_id['records_per_s']:,.0f} records/s")
    _log(f"[{size}] two by-id loops at once, one per worker (the most two readers manage here) ...")
    pair = pair_loop(release, store, batch_size, workdir)
    _log(f"[{size}]   {pair['records_per_s']:,.0f} records/s each")
    other = noise.other_share()
    base = max(before["records_per_s"], after["records_per_s"])
    t = val["timings"]
    compare_rate = size / t["compare"] if t.get("compare") else 0.0
    checks = {k: t.get(k, 0.0) for k in CHECK_PHASES}
    with_checks = t.get("compare", 0.0) + sum(checks.values())
    with_checks_rate = size / with_checks if with_checks else 0.0
    floor = min(base, pair["records_per_s"])  # the slower baseline: what the target is measured against
    total_rate = size / t["total"]
    stream_rate = val["stream"]["records"] / val["stream"]["seconds"] if val.get("stream") else None
    return {
        "size": size,
        "other_processes_cores": None if other is None else round(other, 2),
        "store_bytes": build["bytes"],
        "build_seconds": build["build_seconds"],
        "build_cached": build["cached"],
        "get_loop": {
            "records_per_s": round(base),
            "before": round(before["records_per_s"]),
            "after": round(after["records_per_s"]),
            "seconds": round(size / base, 2),
            "first_pass_records_per_s": round(size / before["first_seconds"]),
            "passes": before["passes"],
        },
        "by_id_loop": {"records_per_s": round(by_id["records_per_s"]), "seconds": round(by_id["seconds"], 2)},
        "pair_by_id_loops": {
            "records_per_s": round(pair["records_per_s"]),
            "first_pass_records_per_s": round(pair["first_records_per_s"]),
            "seconds": round(pair["seconds"], 2),
            "ratio_to_get_loop": round(pair["records_per_s"] / base, 3),
        },
        "validate": {
            "exit_code": val["exit_code"],
            "summary": val["summary"],
            "error": val["error"],
            "records_compared": val["records_compared"],
            "timings": {k: round(v, 2) for k, v in t.items()},
            "compare_records_per_s": round(compare_rate),
            "compare_ratio": round(compare_rate / base, 3),
            "total_records_per_s": round(total_rate),
            "total_ratio": round(total_rate / base, 3),
            "stream_records_per_s": round(stream_rate) if stream_rate else None,
            "stream_ratio": round(stream_rate / base, 3) if stream_rate else None,
            "stream_vs_by_id_loop": round(stream_rate / by_id["records_per_s"], 3) if stream_rate else None,
            "compare_vs_pair": round(compare_rate / pair["records_per_s"], 3),
            "compare_vs_floor": round(compare_rate / floor, 3),
            # validate reads each fresh copy once, cold; the ceiling is the pair's fastest (warm) pass
            "compare_vs_pair_first_pass": round(compare_rate / pair["first_records_per_s"], 3),
            "checks_seconds": {k: round(v, 2) for k, v in checks.items()},
            "compare_and_checks_records_per_s": round(with_checks_rate),
            "compare_and_checks_ratio": round(with_checks_rate / base, 3),
            "compare_and_checks_vs_pair": round(with_checks_rate / pair["records_per_s"], 3),
            "checks": val["checks"],
            "peak_rss_mb": round(val["peak_rss_mb"], 1),
            "workers_peak_rss_mb": round(val["workers_peak_rss_mb"], 1),
        },
    }


def report(rows: list[dict]) -> tuple[list[str], list[str]]:
    smallest = min(rows, key=lambda r: r["size"])["validate"]["peak_rss_mb"]
    lines = [
        f"{'records':>9} | {'build s':>8} | {'get loop rec/s':>14} | {'compare rec/s (ratio)':>22} | "
        f"{'total rec/s (ratio)':>20} | {'harness peak RSS MB (ratio)':>27} | exit",
        "-" * 124,
    ]
    missed = []
    for r in rows:
        v = r["validate"]
        v["peak_rss_ratio"] = round(v["peak_rss_mb"] / smallest, 2)
        build = f"{r['build_seconds']:.0f}{'*' if r['build_cached'] else ''}"
        lines.append(
            f"{r['size']:>9} | {build:>8} | {r['get_loop']['records_per_s']:>14,} | "
            f"{v['compare_records_per_s']:>12,} ({v['compare_ratio']:.2f}x) | "
            f"{v['total_records_per_s']:>11,} ({v['total_ratio']:.2f}x) | "
            f"{v['peak_rss_mb']:>18,.0f} ({v['peak_rss_ratio']:.2f}x) | {v['exit_code']}"
        )
        if v["exit_code"] != 0:
            missed.append(f"{r['size']}: validate exited {v['exit_code']}: {v['error'] or v['summary']}")
        if v["compare_vs_floor"] < TARGET_COMPARE_RATIO:
            missed.append(
                f"{r['size']}: compare at {v['compare_ratio']:.2f}x the get loop and {v['compare_vs_pair']:.2f}x "
                f"the two-reader ceiling (target >= {TARGET_COMPARE_RATIO}x the slower of the two)"
            )
        if v["peak_rss_ratio"] > TARGET_RSS_RATIO:
            missed.append(
                f"{r['size']}: harness peak RSS {v['peak_rss_ratio']:.2f}x the smallest size's "
                f"(target <= {TARGET_RSS_RATIO}x)"
            )
    lines.append("(* = store from the cache; build s is from when it was built)")
    lines.append(
        f"targets: compare >= {TARGET_COMPARE_RATIO}x the slower of the get loop and the two-reader ceiling; "
        f"harness peak RSS within "
        f"{TARGET_RSS_RATIO}x of the smallest size's; exit 0"
    )
    for r in rows:
        v, t = r["validate"], r["validate"]["timings"]
        # the per-record checks' seconds run from the start of the collection's compare: only these are their own
        slow = ", ".join(
            f"{c['name']} {c['seconds']:.1f}s" for c in v["checks"] if c["name"] in ("query", "filters", "writable")
        )
        lines.append(
            f"  {r['size']}: timings {t}; stream {v['stream_records_per_s'] or 0:,} rec/s "
            f"({v['stream_ratio'] or 0:.2f}x the get loop, {v['stream_vs_by_id_loop'] or 0:.2f}x a by-id loop "
            f"at {r['by_id_loop']['records_per_s']:,} rec/s); checks {slow}; "
            f"workers' largest peak RSS {v['workers_peak_rss_mb']:,.0f} MB; other processes used "
            f"{r['other_processes_cores'] if r['other_processes_cores'] is not None else '?'} core(s) meanwhile"
        )
        pair = r["pair_by_id_loops"]
        lines.append(
            f"  {r['size']}: two by-id loops at once, one per worker, read {pair['records_per_s']:,} rec/s each "
            f"({pair['ratio_to_get_loop']:.2f}x the get loop): the most two readers manage here; validate's "
            f"compare ran at {v['compare_vs_pair']:.2f}x that, and at {v['compare_vs_pair_first_pass']:.2f}x their "
            f"first pass ({pair['first_pass_records_per_s']:,} rec/s each: a fresh copy read once, cold, as validate "
            "reads its copies)"
        )
        phases = ", ".join(f"{k} {s:.2f}s" for k, s in v["checks_seconds"].items())
        lines.append(
            f"  {r['size']}: the checks after the records, phases of their own: {phases}; compare + checks "
            f"{v['compare_and_checks_records_per_s']:,} rec/s ({v['compare_and_checks_ratio']:.2f}x the get loop, "
            f"{v['compare_and_checks_vs_pair']:.2f}x the two-reader ceiling)"
        )
        g = r["get_loop"]
        if g["passes"] > 1:
            lines.append(
                f"  {r['size']}: the get loop's first pass (a cold read, as validate's) ran at "
                f"{g['first_pass_records_per_s']:,} rec/s; the fastest of its {g['passes']} passes counts"
            )
        if max(g["before"], g["after"]) > SPREAD * min(g["before"], g["after"]):
            lines.append(
                f"  WARNING {r['size']}: the get loop ran at {g['before']:,} records/s before validate and "
                f"{g['after']:,} after: the machine's speed changed (a shared or throttled VM?); "
                "re-run, ratios are unreliable"
            )
        if (r["other_processes_cores"] or 0) > NOISY:
            lines.append(
                f"  WARNING {r['size']}: other processes used {r['other_processes_cores']} core(s) of "
                f"{os.cpu_count()} while it was measured: its ratios are unreliable, re-run on a quiet machine"
            )
    return lines, missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--release", default="1.5.9")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--workdir", help="validate's work directory (default <cache>/stores/bench-work)")
    parser.add_argument("--profile", help="run each validation under cProfile; write DIR/validate-<size>.prof")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from pytest_chroma_compat.engine import cache_dirs, releases

    release = releases.resolve(args.release)
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())
    workdir = Path(args.workdir) if args.workdir else cache_dirs.stores_dir() / "bench-work"
    workdir.mkdir(parents=True, exist_ok=True)
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    rows = [measure(release, n, args.dim, args.batch_size, workdir, profile_dir) for n in sizes]
    lines, missed = report(rows)
    print(
        f"validate scale: chromadb {release} -> {release}, dim {args.dim}, batch {args.batch_size}, "
        f"{os.cpu_count()} CPU(s)"
    )
    print("\n".join(lines))
    print("targets met" if not missed else "TARGETS MISSED:\n  " + "\n  ".join(missed))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "release": release,
                    "dim": args.dim,
                    "batch_size": args.batch_size,
                    "results": rows,
                    "targets": {"compare_ratio": TARGET_COMPARE_RATIO, "peak_rss_ratio": TARGET_RSS_RATIO},
                    "missed": missed,
                },
                fh,
                indent=1,
            )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
