"""Running a matrix's pairs: each pair to one serialized cell, and a shard's resumable result file.

Why cells and not reports: the unsharded ``matrix`` and a merge of shards must publish the same
page, so both hand the renderer the same dicts (``report.pair_json`` of each pair). A shard's
result file is rewritten after every pair (atomically), so a runner killed after an hour loses
the pair it was on, not the hour; it also carries the saved case files' bytes, so a merge on
another machine can publish them.

A result file comes from a CI job (a fork's too) and is read by a merge job that writes files: it
carries a digest over everything in it, and every name in it that becomes a file (a case and its
.npy) must be one plain file name (common/plain_names.py), so no result file writes outside the cases folder.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pytest_chroma_compat.common import atomic_files, plain_names
from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.roundtrip.matrix import plan as matrix_plan

if TYPE_CHECKING:
    from pytest_chroma_compat.common.progress import Progress
    from pytest_chroma_compat.roundtrip.pair import PathReport

RESULT_FORMAT = 1
RESULT_KIND = "chroma-compat matrix shard result"
#: a result file holds its shard's cells and case files (a few kB to a few MB each); past this it is not ours
MAX_RESULT_BYTES = 512 * 2**20
MAX_PATH_TEXT = 4096


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_pair(
    plan_inputs: dict, old: str, new: str, failures_dir: Path | None, progress: Progress | None = None
) -> tuple[dict, list[str]]:
    """One pair with the plan's options: its cell, and the case files its reports point to."""
    from pytest_chroma_compat.roundtrip import pair as roundtrip
    from pytest_chroma_compat.roundtrip.matrix import report

    chosen = plan_inputs["paths"]
    reports = roundtrip.check_pair(
        old,
        new,
        None if chosen == "all" else list(chosen),
        examples=plan_inputs["examples"],
        seed=plan_inputs["seed"],
        profile=plan_inputs["profile"],
        max_shrinks=plan_inputs["max_shrinks"],
        failures_dir=failures_dir,
        progress=progress,
    )
    return {"old": old, "new": new, **report.pair_json(reports)}, case_files(reports)


def case_files(reports: Iterable[PathReport]) -> list[str]:
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
        npy = plain_names.inside(case.parent, json.loads(body).get("npy"), "its npy", case)
        packed.append(
            {
                "path": name,
                "name": case.name,
                "json_b64": base64.b64encode(body).decode(),
                "npy": npy.name,
                "npy_b64": base64.b64encode(npy.read_bytes()).decode(),
            }
        )
    return packed


def unpack_cases(cell: dict, packed: list[dict], directory: Path) -> dict:
    """Write the cases into ``directory`` and return the cell with every mention of their old paths
    (case_file fields, notes that say how to replay) pointing there instead."""
    moved: dict[str, str] = {}
    for case in packed:  # read_result checked every name and body already
        target = plain_names.inside(directory, case["name"], "a case name")
        try:
            body, npy = (base64.b64decode(case[k], validate=True) for k in ("json_b64", "npy_b64"))
        except ValueError:
            raise CompatError(
                f"case {case['name']!r} of {cell.get('old')} -> {cell.get('new')} is not valid "
                "base64: run its shard again"
            ) from None
        atomic_files.write_bytes(target, body)
        atomic_files.write_bytes(plain_names.inside(directory, case["npy"], "a case's npy name"), npy)
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
    return {
        "format": RESULT_FORMAT,
        "kind": RESULT_KIND,
        "tool_version": plan["tool_version"],
        "plan_id": plan["plan_id"],
        "shards": plan["shards"],
        "shard": shard["shard"],
        "inputs": plan["inputs"],
        "layout": _layout(shard),
        "started": [],
        "pairs": [],
    }


def read_result(path: Path | str) -> dict:
    """A shard's result file, every field that steers a merge or a resume checked (one line, exit 2)."""
    plain_names.size_at_most(path, MAX_RESULT_BYTES, "matrix shard result")
    doc = atomic_files.read_json(path, "matrix shard result (written by `chroma-compat matrix --shard`)")
    if not isinstance(doc, dict) or doc.get("kind") != RESULT_KIND or doc.get("format") != RESULT_FORMAT:
        raise CompatError(f"{path} is not a matrix shard result of format {RESULT_FORMAT}")
    plain_names.check_sealed(doc, path, "`chroma-compat matrix --shard`", "run the shard again into a new --json file")
    _check_result(doc, path)
    return doc


def _check_result(doc: dict, where: Path | str) -> None:
    """Types, ranges and names: a digest proves no accident, these prove nothing crafted steers a write."""
    inputs = matrix_plan.checked_inputs(doc.get("inputs"), where)
    if doc.get("plan_id") != matrix_plan.plan_id(inputs):
        raise CompatError(f"{where}: its plan id does not match its inputs; run the shard again")
    shards = plain_names.count(doc.get("shards"), "shards", 1, matrix_plan.MAX_SHARDS, where)
    plain_names.count(doc.get("shard"), "shard", 1, shards, where)
    wanted = set(matrix_plan.pairs(inputs))
    layout = doc.get("layout")
    if not isinstance(layout, list) or not all(isinstance(p, list) and tuple(p) in wanted for p in layout):
        raise CompatError(f"{where}: its layout lists a pair that is not one of its inputs'")
    if not isinstance(doc.get("started"), list) or not isinstance(doc.get("pairs"), list):
        raise CompatError(f"{where}: started and pairs must be lists")
    listed = {tuple(p) for p in layout}
    for entry in doc["pairs"]:
        cell = entry.get("cell") if isinstance(entry, dict) else None
        pair = (cell.get("old"), cell.get("new")) if isinstance(cell, dict) else None
        if pair not in listed:
            raise CompatError(f"{where}: a finished pair {pair!r} is not in its layout")
        seconds = entry.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 10**7:
            raise CompatError(f"{where}: the seconds of {pair[0]} -> {pair[1]} are not a duration: {seconds!r}")
        cases = entry.get("cases")
        if not isinstance(cases, list):
            raise CompatError(f"{where}: the cases of {pair[0]} -> {pair[1]} are not a list")
        for case in cases:
            if not isinstance(case, dict):
                raise CompatError(f"{where}: a case of {pair[0]} -> {pair[1]} is not an object")
            name = plain_names.plain(case.get("name"), "a case name", where)
            npy = plain_names.plain(case.get("npy"), "a case's npy name", where)
            if not name.endswith(".json") or not npy.endswith(".npy"):
                raise CompatError(f"{where}: case {name!r} must be a .json with an .npy beside it, not {npy!r}")
            text = case.get("path")
            if not isinstance(text, str) or not 0 < len(text) <= MAX_PATH_TEXT:
                raise CompatError(f"{where}: case {name!r} does not say where it was written")
            if not all(isinstance(case.get(k), str) for k in ("json_b64", "npy_b64")):
                raise CompatError(f"{where}: case {name!r} has no base64 bodies")


def _resume(plan: dict, shard: dict, path: Path) -> dict:
    """The result file to continue: a fresh one, or the earlier run's of exactly this plan and shard."""
    if not path.exists():
        return _fresh(plan, shard)
    doc = read_result(path)
    ours = (plan["plan_id"], plan["tool_version"], shard["shard"], plan["shards"], _layout(shard))
    theirs = (doc.get("plan_id"), doc.get("tool_version"), doc.get("shard"), doc.get("shards"), doc.get("layout"))
    if ours != theirs:
        raise CompatError(
            f"{path} holds results of another plan or shard (plan {theirs[0]}, shard {theirs[2]} of "
            f"{theirs[3]}, tool {theirs[1]}; this is plan {ours[0]}, shard {ours[2]} of {ours[3]}, "
            f"tool {ours[1]}): give another --json file, or remove it to start over"
        )
    return doc


def run_shard(
    plan: dict,
    number: int,
    result_path: Path,
    failures_dir: Path | None,
    progress: Progress | None = None,
    finished: Callable[[dict], None] = lambda cell: None,
) -> tuple[dict, int]:
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
    if not todo:  # a shard with no pair (or all done) still leaves its result file: the merge expects it
        atomic_files.write_json(result_path, plain_names.sealed(doc))
    for old, new in todo:
        doc["started"].append({"old": old, "new": new, "at": now()})
        atomic_files.write_json(result_path, plain_names.sealed(doc))
        started = time.monotonic()
        cell, cases = run_pair(plan["inputs"], old, new, failures_dir, progress)
        doc["pairs"].append({"cell": cell, "cases": pack_cases(cases), "seconds": round(time.monotonic() - started, 1)})
        atomic_files.write_json(result_path, plain_names.sealed(doc))
        finished(cell)
        update(label, len(doc["pairs"]), len(shard["pairs"]))
    return doc, len(done)
