"""A matrix cut into shards a CI job matrix runs in parallel: which runner checks which pairs.

The unit is a pair (old, new) with every requested path: the paths of one pair share its two
workers, and an unflushed-wal failure that a cleanly closed writer shows too is reported under
the same pair's in-place path, so a pair is never split. A pair costs the sum of its pair-paths'
measured seconds (roundtrip/timings.py); shards are balanced longest-first onto the least loaded shard,
with ties broken by version order and shard number, so the same inputs and the same timings file
give a byte-identical plan. The plan id hashes only what changes results (versions, paths,
upgrades-only, seed, examples, profile, shrink budget), never the shard layout or the timings.
A plan also carries a digest over everything in it (the layout too: which shard runs which pair),
and every field is checked on load, so an edited plan is one line (exit 2), never an IndexError.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common import atomic_files, plain_names
from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.roundtrip import paths as migrate
from pytest_chroma_compat.roundtrip import profiles, timings

FORMAT = 1
# seconds of a pair-path nothing is known about: the medians of the committed docs/matrix.json
# (5 releases, every ordered pair, seed 0), rounded up; the cache's own measurements win once present
DEFAULT_SECONDS = {"in-place": 5.0, "export-import": 2.0, "unflushed-wal": 3.0}
UNKNOWN_PATH_SECONDS = 5.0
# what an unseeded --plan draws with: every shard must draw the same examples
PLAN_SEED = 0
#: upper bounds on what a plan (or an option) may ask for: a GitHub Actions job matrix holds at most
#: 256 jobs; a plan file is a few kB per shard; examples and shrinks past these run for days
MAX_SHARDS = 256
MAX_PLAN_BYTES = 16 * 2**20
MAX_EXAMPLES = 100_000
MAX_SHRINKS = 100_000
MAX_SEED = 2**64


def tool_version() -> str:
    """The installed distribution's version (what a CI runner actually has), else the package's."""
    from importlib import metadata

    from pytest_chroma_compat import __version__

    try:
        return metadata.version("pytest-chroma-compat")
    except metadata.PackageNotFoundError:
        return __version__


def _version_key(version: str) -> Any:
    from packaging.version import Version

    return Version(version)


def inputs(
    versions: Sequence[str],
    paths: Sequence[str] | None,
    *,
    upgrades_only: bool = False,
    seed: int | None = None,
    examples: int | None = None,
    profile: str | None = None,
    max_shrinks: int | None = None,
) -> dict:
    """Everything that changes a matrix's results, resolved (profile defaults filled in), so two ways
    of asking for the same run get the same plan id. ``paths`` None means every applicable path."""
    chosen = profiles.name(profile)
    ordered = sorted(dict.fromkeys(versions), key=_version_key)
    if len(ordered) < 2:
        raise CompatError("a matrix needs at least two releases")
    if examples is not None:
        plain_names.count(examples, "--examples", 1, MAX_EXAMPLES)
    if max_shrinks is not None:
        plain_names.count(max_shrinks, "--max-shrinks", 0, MAX_SHRINKS)
    if seed is not None:
        plain_names.count(seed, "--seed", -MAX_SEED, MAX_SEED)
    return {
        "versions": ordered,
        "paths": "all" if paths is None else list(paths),
        "upgrades_only": bool(upgrades_only),
        "seed": seed,
        "examples": profiles.max_examples(chosen, examples),
        "profile": chosen,
        "max_shrinks": profiles.shrink_runs(chosen, max_shrinks),
    }


def plan_id(plan_inputs: dict) -> str:
    canonical = json.dumps({"format": FORMAT, **plan_inputs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def pairs(plan_inputs: dict) -> list[tuple[str, str]]:
    """The ordered pairs to check, in version order: every ordered pair, or only old < new ones."""
    versions = plan_inputs["versions"]
    rank = {v: i for i, v in enumerate(versions)}
    return [
        (old, new)
        for old in versions
        for new in versions
        if old != new and (rank[old] < rank[new] or not plan_inputs["upgrades_only"])
    ]


def requested_paths(plan_inputs: dict) -> list[str]:
    return list(migrate.PATHS) if plan_inputs["paths"] == "all" else list(plan_inputs["paths"])


def series(version: str) -> str:
    return ".".join(version.split(".")[:2])


def estimate(known: dict[timings.Key, float], old: str, new: str, path: str) -> float:
    """The measured seconds, else the median of the same series pair and path, else of the same path,
    else the path's default."""
    if (old, new, path) in known:
        return known[(old, new, path)]
    same_series = [
        s for (o, n, p), s in known.items() if p == path and series(o) == series(old) and series(n) == series(new)
    ]
    same_path = [s for (_, _, p), s in known.items() if p == path]
    for found in (same_series, same_path):
        if found:
            return float(statistics.median(found))
    return DEFAULT_SECONDS.get(path, UNKNOWN_PATH_SECONDS)


def balance(costs: Sequence[tuple[Any, float]], shards: int) -> list[list[Any]]:
    """Longest processing time first: each unit, dearest first, onto the shard with the least load so
    far. Ties: units in the order given, shards by number; so the result depends on the inputs only."""
    plain_names.count(shards, "--shards", 1, MAX_SHARDS)
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
        by_shard.append(
            {
                "shard": number,
                "estimate_s": round(sum(sum(per_path[p].values()) for p in assigned), 1),
                "releases": needed,
                "releases_csv": ",".join(needed),
                "releases_words": " ".join(needed),
                "pairs": [
                    {
                        "old": o,
                        "new": n,
                        "estimate_s": round(sum(per_path[(o, n)].values()), 1),
                        "paths": per_path[(o, n)],
                    }
                    for o, n in assigned
                ],
            }
        )
    return plain_names.sealed(
        {
            "format": FORMAT,
            "tool_version": tool_version(),
            "plan_id": plan_id(plan_inputs),
            "inputs": plan_inputs,
            "shards": shards,
            "estimate_s": round(sum(c for _, c in costs), 1),
            "matrix": {
                "include": [
                    {"shard": s["shard"], "releases": s["releases_csv"], "estimate_s": s["estimate_s"]}
                    for s in by_shard
                ]
            },
            "by_shard": by_shard,
        }
    )


def text(plan: dict) -> str:
    return json.dumps(plan, indent=1) + "\n"


def load(path: Path | str) -> dict:
    """A plan written by ``matrix --plan``; one line when it is not one this tool can run."""
    plain_names.size_at_most(path, MAX_PLAN_BYTES, "matrix plan")
    plan = atomic_files.read_json(path, "matrix plan (written by `chroma-compat matrix --plan`)")
    if not isinstance(plan, dict) or plan.get("format") != FORMAT or "by_shard" not in plan:
        raise CompatError(
            f"{path} is not a matrix plan of format {FORMAT} (write one with `chroma-compat matrix --plan`)"
        )
    if plan.get("tool_version") != tool_version():
        raise CompatError(
            f"{path} was planned by pytest-chroma-compat {plan.get('tool_version')}, this is "
            f"{tool_version()}: install the same version on every runner, or plan again"
        )
    plain_names.check_sealed(plan, path, "`chroma-compat matrix --plan`", "plan again")
    checked_inputs(plan.get("inputs"), path)
    if plan.get("plan_id") != plan_id(plan["inputs"]):
        raise CompatError(f"{path} was edited: its plan id does not match its inputs; plan again")
    _check_layout(plan, path)
    return plan


def checked_inputs(found: object, where: Path | str) -> dict:
    """A plan's (or a result's) inputs, every field of the type and range ``inputs`` makes: an edited
    or crafted file is one line, before any of it steers a run."""
    from pytest_chroma_compat.engine import releases

    if not isinstance(found, dict):
        raise CompatError(f"{where}: its inputs are not a JSON object; plan again")
    versions, chosen = found.get("versions"), found.get("paths")
    if (
        not isinstance(versions, list)
        or not 2 <= len(versions) <= len(releases.catalogue())
        or not all(isinstance(v, str) for v in versions)
    ):
        raise CompatError(f"{where}: inputs.versions must list 2 or more releases; plan again")
    for version in versions:
        releases.lookup(version)  # unknown and yanked names stop here, whatever the file says
    if chosen != "all" and not (isinstance(chosen, list) and chosen and all(p in migrate.PATHS for p in chosen)):
        raise CompatError(f'{where}: inputs.paths must be "all" or some of {", ".join(migrate.PATHS)}; plan again')
    seed = found.get("seed")
    if seed is not None:
        plain_names.count(seed, "inputs.seed", -MAX_SEED, MAX_SEED, where)
    plain_names.count(found.get("examples"), "inputs.examples", 1, MAX_EXAMPLES, where)
    plain_names.count(found.get("max_shrinks"), "inputs.max_shrinks", 0, MAX_SHRINKS, where)
    if not isinstance(found.get("upgrades_only"), bool) or found.get("profile") not in profiles.PROFILES:
        raise CompatError(f"{where}: inputs.upgrades_only or inputs.profile is not one this tool writes; plan again")
    again = inputs(
        versions,
        None if chosen == "all" else chosen,
        upgrades_only=found["upgrades_only"],
        seed=seed,
        examples=found["examples"],
        profile=found["profile"],
        max_shrinks=found["max_shrinks"],
    )
    if again != found:
        raise CompatError(f"{where}: its inputs are not in the form `chroma-compat matrix --plan` writes; plan again")
    return found


def _check_layout(plan: dict, where: Path | str) -> None:
    """Every shard numbered in order, every pair of the inputs in exactly one shard, nothing else."""
    shards = plain_names.count(plan.get("shards"), "shards", 1, MAX_SHARDS, where)
    by_shard = plan.get("by_shard")
    if not isinstance(by_shard, list) or len(by_shard) != shards:
        raise CompatError(f"{where}: by_shard must list {shards} shard(s); plan again")
    wanted = set(pairs(plan["inputs"]))
    seen: set[tuple[str, str]] = set()
    for number, shard in enumerate(by_shard, start=1):
        listed = shard.get("pairs") if isinstance(shard, dict) else None
        if not isinstance(listed, list) or shard.get("shard") != number:
            raise CompatError(f"{where}: by_shard[{number - 1}] is not shard {number} with a list of pairs; plan again")
        for entry in listed:
            pair = (entry.get("old"), entry.get("new")) if isinstance(entry, dict) else None
            if pair not in wanted or pair in seen:
                raise CompatError(
                    f"{where}: shard {number} lists {pair!r}, not a pair of this plan's inputs "
                    "(or one listed twice); plan again"
                )
            seen.add(pair)
    if seen != wanted:
        raise CompatError(f"{where}: {len(wanted - seen)} pair(s) of its inputs are in no shard; plan again")


def shard_of(plan: dict, number: int) -> dict:
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= plan["shards"]:
        raise CompatError(f"--shard must be between 1 and {plan['shards']} for this plan, not {number}")
    return plan["by_shard"][number - 1]
