"""The page's validate rows: ``validate_scale.py`` at 10k and 100k now, 1M only when asked.

1M records take most of an hour to build and several GB, so by default the
1M row comes from the most recent full run, ``docs/validate-scale.json``
(its date is the file's own, or its last commit's), and the page says so.
A full run (``--full``) measures all three sizes and becomes that file.
Each row's two sides (validate and the plain get loop) come from one run.
Since issue 27 validate's ``compare`` phase is the record stream alone; the checks after it
(queries, data checks, write check) are phases of their own, in each row beside it
(``checks_seconds``, and compare with them: ``compare_and_checks_*``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FULL_RUN = ROOT / "docs" / "validate-scale.json"
QUICK_SIZES = (10_000, 100_000)
FULL_SIZES = (10_000, 100_000, 1_000_000)


def _command(sizes: tuple[int, ...], json_path: str) -> str:
    return f"python benchmarks/validate_scale.py --sizes {','.join(map(str, sizes))} --json {json_path}"


def _committed_date(path: Path) -> str | None:
    proc = subprocess.run(
        ["git", "log", "-1", "--format=%cs", "--", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    return proc.stdout.strip() or None


def _rows(data: dict, source: str) -> list[dict]:
    out = []
    for r in data["results"]:
        v = r["validate"]
        out.append(
            {
                "size": r["size"],
                "get_loop_records_per_s": r["get_loop"]["records_per_s"],
                "validate_compare_records_per_s": v["compare_records_per_s"],
                "ratio": v["compare_ratio"],
                "total_ratio": v["total_ratio"],
                "pair_ceiling_ratio": r["pair_by_id_loops"]["ratio_to_get_loop"],
                # since issue 27 compare is the record stream; the checks after it are phases of their own
                "compare_vs_pair": v.get("compare_vs_pair"),
                "checks_seconds": v.get("checks_seconds"),
                "compare_and_checks_ratio": v.get("compare_and_checks_ratio"),
                "compare_and_checks_vs_pair": v.get("compare_and_checks_vs_pair"),
                "peak_rss_mb": v["peak_rss_mb"],
                "exit_code": v["exit_code"],
                "other_processes_cores": r.get("other_processes_cores"),
                "source": source,
            }
        )
    return out


def previous_full_run() -> dict | None:
    """The 1M row of the last full run, with where and when it came from."""
    if not FULL_RUN.is_file():
        return None
    data = json.loads(FULL_RUN.read_text())
    rows = [r for r in _rows(data, "previous full run") if r["size"] == max(FULL_SIZES)]
    if not rows:
        return None
    return {
        "date": data.get("date") or _committed_date(FULL_RUN),
        "command": data.get("command") or _command(FULL_SIZES, "docs/validate-scale.json"),
        "row": rows[0],
    }


def measure(full: bool = False, release: str = "1.5.9") -> dict:
    """Runs validate_scale.py in its own process (it exits 1 when a target is missed: still a result)."""
    from machine import now

    sizes = FULL_SIZES if full else QUICK_SIZES
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        out = Path(tmp) / "scale.json"
        cmd = [
            sys.executable,
            str(HERE / "validate_scale.py"),
            "--sizes",
            ",".join(map(str, sizes)),
            "--release",
            release,
            "--json",
            str(out),
        ]
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if not out.is_file():
            raise RuntimeError(f"validate_scale.py wrote no results (exit {proc.returncode}); see its stderr above")
        data = json.loads(out.read_text())
    if full:
        data.update(date=now(), command=_command(FULL_SIZES, "docs/validate-scale.json"))
        FULL_RUN.write_text(json.dumps(data, indent=1) + "\n")
    result = {
        "release": data["release"],
        "dim": data["dim"],
        "batch_size": data["batch_size"],
        "target_ratio": data["targets"]["compare_ratio"],
        "missed": data["missed"],
        "printed": proc.stdout.strip().splitlines(),
        "rows": _rows(data, "this run"),
    }
    if not full:
        result["previous_full_run"] = previous_full_run()
    return result
