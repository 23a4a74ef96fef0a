"""What a release accepts, measured by its own worker and cached on disk.

Strategies read these instead of a hand-written table: a release that starts
accepting list metadata or the ``$nin`` operator shows it here the first time
it is probed. The cache key includes a hash of the worker, so changing a probe
re-measures.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_chroma_compat.engine import cache_dirs

if TYPE_CHECKING:
    from pytest_chroma_compat.engine.client import Release

_WORKER_MAIN = Path(__file__).parent / "worker" / "main.py"

# capability label -> the Python type (and list element type) it stands for
METADATA_LABELS = (
    "str",
    "empty_str",
    "int",
    "float",
    "bool",
    "none",
    "list_str",
    "list_int",
    "list_float",
    "list_bool",
    "empty_list",
)
FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$in", "$nin", "$and", "$or", "$contains", "$not_contains")


@lru_cache(maxsize=1)
def _probe_hash() -> str:
    return hashlib.sha256(_WORKER_MAIN.read_bytes()).hexdigest()[:10]


@dataclass(frozen=True)
class Capabilities:
    version: str
    raw: dict

    def metadata_kept(self, label: str) -> bool:
        return self.raw["metadata"].get(label) == "kept"

    @property
    def metadata_types(self) -> frozenset[str]:
        return frozenset(label for label in METADATA_LABELS if self.metadata_kept(label))

    def operator(self, name: str) -> bool:
        return isinstance(self.raw["operators"].get(name), list)

    @property
    def operators(self) -> frozenset[str]:
        return frozenset(op for op in FILTER_OPERATORS if self.operator(op))

    @property
    def merges_metadata_updates(self) -> bool:
        """0.3 replaces a record's metadata on update; 0.4 on merge it key by key."""
        return self.raw.get("update_metadata", "merge") == "merge"

    def collection_setting(self, key: str) -> bool:
        return self.raw["collection_metadata"].get(key) == "kept"

    def intersect(self, other: Capabilities) -> Capabilities:
        """What both releases of a pair accept (filters must run on both sides)."""
        raw = {
            "update_metadata": self.raw.get("update_metadata"),
            "metadata": {k: v for k, v in self.raw["metadata"].items() if other.raw["metadata"].get(k) == v},
            "operators": {k: v for k, v in self.raw["operators"].items() if other.operator(k) and self.operator(k)},
            "collection_metadata": {
                k: v for k, v in self.raw["collection_metadata"].items() if other.raw["collection_metadata"].get(k) == v
            },
        }
        return Capabilities(f"{self.version}&{other.version}", raw)


# collection settings whose acceptance is probed: the ones the harness itself uses
PROBED_SETTINGS = {"hnsw:space": "cosine", "hnsw:batch_size": 3, "hnsw:sync_threshold": 6}


def measure(release: Release) -> Capabilities:
    """Probe a release once; later calls read the cache."""
    key = hashlib.sha256(json.dumps(PROBED_SETTINGS, sort_keys=True).encode()).hexdigest()[:6]
    cache = cache_dirs.home() / "capabilities" / f"{release.version}-{_probe_hash()}-{key}.json"
    if cache.exists():
        return Capabilities(release.version, json.loads(cache.read_text()))
    raw = release.call("capabilities", collection_settings=PROBED_SETTINGS)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=1))
    tmp.replace(cache)
    return Capabilities(release.version, raw)
