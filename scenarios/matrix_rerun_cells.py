"""Re-run some cells of the published matrix, not all 66 pairs (hours): each named cell is checked again by
a real `chroma-compat check` with the matrix's own inputs (seed, examples, profile, max shrinks), put into
docs/matrix.json in place of the old path, and the page is rendered again from the document (safe upgrade
paths recomputed from the cells). The page names every re-run, why, and the command.

    python scenarios/matrix_rerun_cells.py "why" OLD:NEW:PATH [OLD:NEW:PATH ...]

Issue 23 used it for the 0.3.29 in-place cells (a 0.3 store was carried through export/import when in
place was asked) and the 1.5.0 -> 1.5.9 cells (a known shape for 1.5.x's list-metadata leak).
Exit: 0, or the first check that could not run's code (its stderr printed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_chroma_compat.common import atomic_files  # noqa: E402
from pytest_chroma_compat.roundtrip.matrix import plan, report, upgrade_paths  # noqa: E402

DOCS = ROOT / "docs"
ORDER = {"in-place": 0, "unflushed-wal": 1}  # the path whose rollback answers "can I go back?" (report.rollback_of)


def _cell_rollback(old: str, paths: list[dict]) -> dict | None:
    rep = min((p for p in paths if p.get("rollback")), key=lambda p: ORDER.get(p["path"], 2), default=None)
    if rep is None:
        return None
    return {
        "release": old,
        "possible": not rep["rollback"].startswith("not possible"),
        "path": rep["path"],
        "detail": rep["rollback"],
        "required": False,
    }


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not all(a.count(":") == 2 for a in argv[1:]):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    import os

    os.chdir(ROOT)  # case files are named relative to the repository, as the published page links them
    why, todo = argv[0], [tuple(a.split(":")) for a in argv[1:]]
    doc = json.loads((DOCS / "matrix.json").read_text())
    inputs = doc["inputs"]
    cells = {(c["old"], c["new"]): c for c in doc["cells"]}
    flags = [
        "--seed",
        str(inputs["seed"]),
        "--examples",
        str(inputs["examples"]),
        "--profile",
        inputs["profile"],
        "--max-shrinks",
        str(inputs["max_shrinks"]),
    ]
    done = []
    for old, new, path in todo:
        cell = cells[(old, new)]
        command = [
            sys.executable,
            "-m",
            "pytest_chroma_compat",
            "check",
            "--from",
            old,
            "--to",
            new,
            "--path",
            path,
            *flags,
            "--json",
            "--failures-dir",
            "docs/matrix-cases",
        ]
        started = time.monotonic()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        print(f"{old} -> {new} {path}: exit {proc.returncode}, {time.monotonic() - started:.1f} s: {last}", flush=True)
        if proc.returncode not in (0, 1):
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        fresh = json.loads(proc.stdout)
        (checked,) = fresh["paths"]
        cell["paths"] = [checked if p["path"] == path else p for p in cell["paths"]]
        cell["generated"] = fresh["generated"]
        cell["safe"] = all(p["ok"] and not p.get("pre_existing") for p in cell["paths"])
        cell["rollback"] = _cell_rollback(old, cell["paths"])
        done.append(f"{old} -> {new} {path}")
    doc["upgrade_paths"] = upgrade_paths.summary(doc["versions"], doc["cells"], plan.requested_paths(inputs))
    doc.setdefault("reruns", []).append(
        {
            "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "why": why,
            "command": f"chroma-compat check --from OLD --to NEW --path PATH {' '.join(flags)}",
            "cells": done,
        }
    )
    atomic_files.write_json(DOCS / "matrix.json", doc)
    atomic_files.write_text(DOCS / "matrix.md", report.matrix_markdown(doc, DOCS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
