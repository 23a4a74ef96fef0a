"""Shards' result files back into one matrix: the cells in plan order, and what is missing.

Why refuse so much: a page that mixes results of two plans (another seed, other paths) or two
tool versions would publish cells no single run produced. What is merely missing (a shard that
never reported, a pair an interrupted shard did not reach) is named and rendered "not run": a
partial page is still worth reading, but the command exits 2 so CI does not publish it silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.roundtrip.matrix import plan, shard_run


@dataclass
class Merged:
    inputs: dict
    plan_id: str
    tool_version: str
    shards: int
    cells: list[dict] = field(default_factory=list)  # in plan order
    not_run: list[tuple[str, str]] = field(default_factory=list)
    missing_shards: list[int] = field(default_factory=list)
    seconds: float = 0.0  # the pairs' wall time, summed over shards

    @property
    def complete(self) -> bool:
        return not self.not_run and not self.missing_shards


def _same(docs: list[tuple[Path, dict]], key: str, what: str) -> None:
    first_path, first = docs[0]
    for path, doc in docs[1:]:
        if doc.get(key) != first.get(key):
            raise CompatError(
                f"{path} and {first_path} come from different {what} ({doc.get(key)} vs "
                f"{first.get(key)}): merge the results of one plan only"
            )


def merge(files: Sequence[Path | str], failures_dir: Path) -> Merged:
    """Read every result file, check they belong together, write their cases into ``failures_dir``."""
    if not files:
        raise CompatError("--merge needs at least one result file")
    if len(files) > plan.MAX_SHARDS:
        raise CompatError(f"--merge got {len(files)} files; a plan has at most {plan.MAX_SHARDS} shards")
    docs = [(Path(f), shard_run.read_result(f)) for f in files]
    _same(docs, "plan_id", "plans")
    _same(docs, "tool_version", "tool versions")
    _same(docs, "shards", "shard layouts")
    path0, doc0 = docs[0]
    if doc0["tool_version"] != plan.tool_version():
        raise CompatError(
            f"{path0} was produced by pytest-chroma-compat {doc0['tool_version']}, this is "
            f"{plan.tool_version()}: merge with the version the shards ran"
        )
    seen: dict[int, Path] = {}
    for path, doc in docs:
        if doc["shard"] in seen:
            raise CompatError(f"{path} and {seen[doc['shard']]} are both shard {doc['shard']}: give one file a shard")
        seen[doc["shard"]] = path
    merged = Merged(doc0["inputs"], doc0["plan_id"], doc0["tool_version"], doc0["shards"])
    cells: dict[tuple[str, str], dict] = {}
    for _, doc in docs:
        for entry in doc["pairs"]:
            cell = entry["cell"]
            cells[(cell["old"], cell["new"])] = shard_run.unpack_cases(cell, entry["cases"], failures_dir)
            merged.seconds += entry.get("seconds", 0.0)
    for pair in plan.pairs(merged.inputs):
        if pair in cells:
            merged.cells.append(cells[pair])
        else:
            merged.not_run.append(pair)
    merged.missing_shards = [n for n in range(1, merged.shards + 1) if n not in seen]
    return merged
