"""Running a matrix's pairs: each pair to one serialized cell, and a shard's resumable result file.

Why cells and not reports: the unsharded ``matrix`` and a merge of shards must publish the same
page, so both hand the renderer the same dicts (``report.pair_json`` of each pair). A shard's
result file is rewritten after every pair (atomically), so a runner killed after an hour loses
the pair it was on, not the hour; it also carries the saved case files' bytes, so a merge on
another machine can publish them.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from . import atomic_files, matrix_plan
from .errors import CompatError

if TYPE_CHECKING:
    from .progress import Progress
    from .roundtrip import PathReport

RESULT_FORMAT = 1
RESULT_KIND = "chroma-compat matrix shard result"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_pair(plan_inputs: dict, old: str, new: str, failures_dir: Path | None,
             progress: "Progress | None" = None) -> tuple[dict, list[str]]:
    """One pair with the plan's options: its cell, and the case files its reports point to."""
    from . import report, roundtrip

    chosen = plan_inputs["paths"]
    reports = roundtrip.check_pair(old, new, None if chosen == "all" else list(chosen),
                                   examples=plan_inputs["examples"], seed=plan_inputs["seed"],
                                   profile=plan_inputs["profile"], max_shrinks=plan_inputs["max_shrinks"],
                                   failures_dir=failures_dir, progress=progress)
    return {"old": old, "new": new, **report.pair_json(reports)}, case_files(reports)


def case_files(reports: Iterable["PathReport"]) -> list[str]:
    found: list[str] = []
    for rep in reports:
        for name in (rep.case_file, rep.clean_writer.case_file if rep.clean_writer else None):
            if name and name not in found:
                found.append(name)
    return found


# -- case files carried inside a result file ---------------------------------------------------------

def pack_cases(files: Iterable[str]) -> list[dict]:
    """Each case file and its .npy as base64: what ``chroma-compat replay`` needs on another machine."""
    import json

    packed = []
    for name in files:
        case = Path(name)
        body = case.read_bytes()
        npy = case.with_name(json.loads(body)["npy"])
        packed.append({"path": name, "name": case.name, "json_b64": base64.b64encode(body).decode(),
                       "npy": npy.name, "npy_b64": base64.b64encode(npy.read_bytes()).decode()})
    return packed


def unpack_cases(cell: dict, packed: list[dict], directory: Path) -> dict:
    """Write the cases into ``directory`` and return the cell with every mention of their old paths
    (case_file fields, notes that say how to replay) pointing there instead."""
    moved: dict[str, str] = {}
    for case in packed:
        target = directory / case["name"]
        atomic_files.write_bytes(target, base64.b64decode(case["json_b64"]))
        atomic_files.write_bytes(directory / case["npy"], base64.b64decode(case["npy_b64"]))
        moved[case["path"]] = str(target)
    return _replace_strings(cell, moved) if moved else cell


def _replace_strings(value, moved: dict[str, str]):
    if isinstance(value, str):
        for old, new in moved.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_replace_strings(v, moved) for v in value]
    if isinstance(value, dict):
        return {k: _replace_strings(v, moved) for k, v in value.items()}
    return value


# -- a shard's result file ---------------------------------------------------------------------------

def _layout(shard: dict) -> list[list[str]]:
    return [[p["old"], p["new"]] for p in shard["pairs"]]


def _fresh(plan: dict, shard: dict) -> dict:
    return {"format": RESULT_FORMAT, "kind": RESULT_KIND, "tool_version": plan["tool_version"],
            "plan_id": plan["plan_id"], "shards": plan["shards"], "shard": shard["shard"],
            "inputs": plan["inputs"], "layout": _layout(shard), "started": [], "pairs": []}


def read_result(path: Path | str) -> dict:
    doc = atomic_files.read_json(path, "matrix shard result (written by `chroma-compat matrix --shard`)")
    if not isinstance(doc, dict) or doc.get("kind") != RESULT_KIND or doc.get("format") != RESULT_FORMAT:
        raise CompatError(f"{path} is not a matrix shard result of format {RESULT_FORMAT}")
    return doc


def _resume(plan: dict, shard: dict, path: Path) -> dict:
    """The result file to continue: a fresh one, or the earlier run's of exactly this plan and shard."""
    if not path.exists():
        return _fresh(plan, shard)
    doc = read_result(path)
    ours = (plan["plan_id"], plan["tool_version"], shard["shard"], plan["shards"], _layout(shard))
    theirs = (doc.get("plan_id"), doc.get("tool_version"), doc.get("shard"), doc.get("shards"), doc.get("layout"))
    if ours != theirs:
        raise CompatError(f"{path} holds results of another plan or shard (plan {theirs[0]}, shard {theirs[2]} of "
                          f"{theirs[3]}, tool {theirs[1]}; this is plan {ours[0]}, shard {ours[2]} of {ours[3]}, "
                          f"tool {ours[1]}): give another --json file, or remove it to start over")
    return doc


def run_shard(plan: dict, number: int, result_path: Path, failures_dir: Path | None,
              progress: "Progress | None" = None,
              finished: Callable[[dict], None] = lambda cell: None) -> tuple[dict, int]:
    """Run shard ``number``'s pairs not already in ``result_path``; the result file and how many pairs
    an earlier run had finished. Every pair's start is logged in the file, so a resumed run shows
    which pairs it ran again."""
    shard = matrix_plan.shard_of(plan, number)
    doc = _resume(plan, shard, result_path)
    done = {(p["cell"]["old"], p["cell"]["new"]) for p in doc["pairs"]}
    todo = [(p["old"], p["new"]) for p in shard["pairs"] if (p["old"], p["new"]) not in done]
    label = f"shard {number} of {plan['shards']}: pairs"
    update = progress or (lambda *a: None)
    update(label, len(done), len(shard["pairs"]))
    for old, new in todo:
        doc["started"].append({"old": old, "new": new, "at": now()})
        atomic_files.write_json(result_path, doc)
        started = time.monotonic()
        cell, cases = run_pair(plan["inputs"], old, new, failures_dir, progress)
        doc["pairs"].append({"cell": cell, "cases": pack_cases(cases),
                             "seconds": round(time.monotonic() - started, 1)})
        atomic_files.write_json(result_path, doc)
        finished(cell)
        update(label, len(doc["pairs"]), len(shard["pairs"]))
    return doc, len(done)
