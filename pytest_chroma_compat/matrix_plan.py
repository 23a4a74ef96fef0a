"""A matrix cut into shards a CI job matrix runs in parallel: which runner checks which pairs.

The unit is a pair (old, new) with every requested path: the paths of one pair share its two
workers, and an unflushed-wal failure that a cleanly closed writer shows too is reported under
the same pair's in-place path, so a pair is never split. A pair costs the sum of its pair-paths'
measured seconds (timings.py); shards are balanced longest-first onto the least loaded shard,
with ties broken by version order and shard number, so the same inputs and the same timings file
give a byte-identical plan. The plan id hashes only what changes results (versions, paths,
upgrades-only, seed, examples, profile, shrink budget), never the shard layout or the timings.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path
from typing import Any, Sequence

from . import atomic_files, migrate, profiles, timings
from .errors import CompatError

FORMAT = 1
# seconds of a pair-path nothing is known about: the medians of the committed docs/matrix.json
# (5 releases, every ordered pair, seed 0), rounded up; the cache's own measurements win once present
DEFAULT_SECONDS = {"in-place": 5.0, "export-import": 2.0, "unflushed-wal": 3.0}
UNKNOWN_PATH_SECONDS = 5.0
# what an unseeded --plan draws with: every shard must draw the same examples
PLAN_SEED = 0


def tool_version() -> str:
    """The installed distribution's version (what a CI runner actually has), else the package's."""
    from importlib import metadata

    from . import __version__

    try:
        return metadata.version("pytest-chroma-compat")
    except metadata.PackageNotFoundError:
        return __version__


def _version_key(version: str) -> Any:
    from packaging.version import Version

    return Version(version)


def inputs(versions: Sequence[str], paths: Sequence[str] | None, *, upgrades_only: bool = False,
           seed: int | None = None, examples: int | None = None, profile: str | None = None,
           max_shrinks: int | None = None) -> dict:
    """Everything that changes a matrix's results, resolved (profile defaults filled in), so two ways
    of asking for the same run get the same plan id. ``paths`` None means every applicable path."""
    chosen = profiles.name(profile)
    ordered = sorted(dict.fromkeys(versions), key=_version_key)
    if len(ordered) < 2:
        raise CompatError("a matrix needs at least two releases")
    return {"versions": ordered, "paths": "all" if paths is None else list(paths),
            "upgrades_only": bool(upgrades_only), "seed": seed,
            "examples": profiles.max_examples(chosen, examples), "profile": chosen,
            "max_shrinks": profiles.shrink_runs(chosen, max_shrinks)}


def plan_id(plan_inputs: dict) -> str:
    canonical = json.dumps({"format": FORMAT, **plan_inputs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def pairs(plan_inputs: dict) -> list[tuple[str, str]]:
    """The ordered pairs to check, in version order: every ordered pair, or only old < new ones."""
    versions = plan_inputs["versions"]
    rank = {v: i for i, v in enumerate(versions)}
    return [(old, new) for old in versions for new in versions
            if old != new and (rank[old] < rank[new] or not plan_inputs["upgrades_only"])]


def requested_paths(plan_inputs: dict) -> list[str]:
    return list(migrate.PATHS) if plan_inputs["paths"] == "all" else list(plan_inputs["paths"])


def series(version: str) -> str:
    return ".".join(version.split(".")[:2])


def estimate(known: dict[timings.Key, float], old: str, new: str, path: str) -> float:
    """The measured seconds, else the median of the same series pair and path, else of the same path,
    else the path's default."""
    if (old, new, path) in known:
        return known[(old, new, path)]
    same_series = [s for (o, n, p), s in known.items()
                   if p == path and series(o) == series(old) and series(n) == series(new)]
    same_path = [s for (_, _, p), s in known.items() if p == path]
    for found in (same_series, same_path):
        if found:
            return float(statistics.median(found))
    return DEFAULT_SECONDS.get(path, UNKNOWN_PATH_SECONDS)


def balance(costs: Sequence[tuple[Any, float]], shards: int) -> list[list[Any]]:
    """Longest processing time first: each unit, dearest first, onto the shard with the least load so
    far. Ties: units in the order given, shards by number; so the result depends on the inputs only."""
    if shards < 1:
        raise CompatError(f"--shards must be at least 1, not {shards}")
    order = sorted(range(len(costs)), key=lambda i: (-costs[i][1], i))
    loads = [0.0] * shards
    out: list[list[Any]] = [[] for _ in range(shards)]
    for i in order:
        target = min(range(shards), key=lambda s: (loads[s], s))
        out[target].append(costs[i][0])
        loads[target] += costs[i][1]
    return out


def build(plan_inputs: dict, shards: int, known: dict[timings.Key, float] | None = None) -> dict:
    """The plan document: inputs, id, and per shard its pairs, estimates and the releases it needs."""
    known = timings.load() if known is None else known
    wanted = requested_paths(plan_inputs)
    per_path = {pair: {p: round(estimate(known, *pair, p), 1) for p in wanted} for pair in pairs(plan_inputs)}
    costs = [(pair, round(sum(by_path.values()), 1)) for pair, by_path in per_path.items()]
    rank = {pair: i for i, pair in enumerate(per_path)}
    by_shard = []
    for number, assigned in enumerate(balance(costs, shards), start=1):
        assigned.sort(key=rank.__getitem__)  # a shard runs its pairs in version order
        needed = sorted({v for pair in assigned for v in pair}, key=_version_key)
        by_shard.append({
            "shard": number,
            "estimate_s": round(sum(sum(per_path[p].values()) for p in assigned), 1),
            "releases": needed,
            "releases_csv": ",".join(needed),
            "releases_words": " ".join(needed),
            "pairs": [{"old": o, "new": n, "estimate_s": round(sum(per_path[(o, n)].values()), 1),
                       "paths": per_path[(o, n)]} for o, n in assigned],
        })
    return {
        "format": FORMAT,
        "tool_version": tool_version(),
        "plan_id": plan_id(plan_inputs),
        "inputs": plan_inputs,
        "shards": shards,
        "estimate_s": round(sum(c for _, c in costs), 1),
        "matrix": {"include": [{"shard": s["shard"], "releases": s["releases_csv"], "estimate_s": s["estimate_s"]}
                               for s in by_shard]},
        "by_shard": by_shard,
    }


def text(plan: dict) -> str:
    return json.dumps(plan, indent=1) + "\n"


def load(path: Path | str) -> dict:
    """A plan written by ``matrix --plan``; one line when it is not one this tool can run."""
    plan = atomic_files.read_json(path, "matrix plan (written by `chroma-compat matrix --plan`)")
    if not isinstance(plan, dict) or plan.get("format") != FORMAT or "by_shard" not in plan:
        raise CompatError(f"{path} is not a matrix plan of format {FORMAT} (write one with "
                          f"`chroma-compat matrix --plan`)")
    if plan.get("tool_version") != tool_version():
        raise CompatError(f"{path} was planned by pytest-chroma-compat {plan.get('tool_version')}, this is "
                          f"{tool_version()}: install the same version on every runner, or plan again")
    if plan.get("plan_id") != plan_id(plan["inputs"]):
        raise CompatError(f"{path} was edited: its plan id does not match its inputs; plan again")
    return plan


def shard_of(plan: dict, number: int) -> dict:
    if not 1 <= number <= plan["shards"]:
        raise CompatError(f"--shard must be between 1 and {plan['shards']} for this plan, not {number}")
    return plan["by_shard"][number - 1]
