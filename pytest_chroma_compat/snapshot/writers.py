"""Which releases could have written a store: read from its ``migrations`` table.

Every SQLite-era release (0.4 on, the 1.x Rust core included) applies all the
schema migrations it knows when it opens a store and records each one in the
``migrations`` table, so a store's set of applied migrations equals the full set
of the newest release that opened it. ``writers.json`` maps each set to the
releases that have exactly that set; it is *measured* (every release in the
catalogue writes a store, then its table is read), never copied from release
notes. Regenerate with ``python -m pytest_chroma_compat.snapshot.writers``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, Iterable

from packaging.version import Version

from .. import pins, releases

TABLE = Path(__file__).with_name("writers.json")
LEGACY_SERIES = "0.3"


def _load() -> dict[str, Any]:
    return json.loads(TABLE.read_text())


def groups() -> list[dict[str, Any]]:
    """[{"first", "last", "versions", "migrations"}], oldest first."""
    return _load()["groups"]


def _usable(versions: Iterable[str]) -> list[str]:
    return [v for v in versions if not pins.unavailable(v)]


def known_migrations(version: str) -> set[str] | None:
    """The full migration set of ``version`` (None when the table has not measured it)."""
    for g in groups():
        if version in g["versions"]:
            return set(g["migrations"])
    return None


def _range(versions: list[str], evidence: str, **extra: Any) -> dict[str, Any]:
    usable = _usable(versions) or versions
    return {"first": versions[0], "last": versions[-1], "versions": versions,
            "source_release": usable[-1], "evidence": evidence, **extra}


def legacy_range() -> dict[str, Any]:
    """0.3 wrote DuckDB + Parquet and kept no schema history: any 0.3 release may have written it."""
    versions = [v for v in releases.versions() if v.startswith(LEGACY_SERIES + ".")]
    return _range(versions, "DuckDB/Parquet files (chroma-collections.parquet): the 0.3 format")


def writer_range(migrations: Iterable[str]) -> dict[str, Any]:
    """The releases whose migration set is exactly the store's, with the evidence.

    No exact match means either migrations no measured release knows (a store
    from a newer release than this table: ``unknown`` lists them) or a store
    opened by an older release after a newer one; the range is then the
    releases that know every migration present (``exact`` False).
    """
    have = set(migrations)
    table = groups()
    newest = max(have, key=_migration_order, default=None)
    for g in table:
        if set(g["migrations"]) == have:
            return _range(g["versions"], f"{len(have)} migrations applied, newest {newest}", exact=True, unknown=[])
    everything = set().union(*(set(g["migrations"]) for g in table))
    unknown = sorted(have - everything)
    if unknown:
        last = table[-1]["versions"][-1]
        return {"first": None, "last": None, "versions": [], "source_release": None, "exact": False,
                "unknown": unknown, "evidence": f"migrations no measured release (up to {last}) applies: "
                                                f"{', '.join(unknown)}; written by a newer release"}
    supersets = [v for g in table if have <= set(g["migrations"]) for v in g["versions"]]
    return _range(supersets, f"{len(have)} migrations applied, newest {newest}; no release has exactly "
                             "this set (opened by an older release after a newer one?)", exact=False, unknown=[])


def rust_era(migrations: Iterable[str]) -> list[str]:
    """Migrations no 0.x release applies: evidence that a 1.x (Rust core) release opened the store."""
    python_era = set().union(*(set(g["migrations"]) for g in groups() if Version(g["first"]) < Version("1.0.0")))
    return sorted(set(migrations) - python_era)


def _migration_order(name: str) -> tuple[str, str]:
    directory, _, filename = name.partition("/")
    return filename[:5], directory


def unknown_to(version: str, migrations: Iterable[str]) -> list[str] | None:
    """Migrations in the store that ``version`` does not have: non-empty means a rollback."""
    known = known_migrations(version)
    return None if known is None else sorted(set(migrations) - known)


# -- measurement ---------------------------------------------------------------------------------

def measure_one(version: str) -> list[str]:
    """Write a one-record store with ``version`` and read back its migration table."""
    import sqlite3

    import numpy as np

    from ..client import Release

    with tempfile.TemporaryDirectory(prefix=f"writers-{version}-") as tmp, Release(version) as release:
        client = release.persistent(Path(tmp) / "store")
        client.create_collection("writers-probe").add(
            ids=["a"], embeddings=np.ones((1, 3), dtype=np.float32), documents=["a"], metadatas=[{"k": 1}])
        client.close()
        release.close()
        db = sqlite3.connect(f"{(Path(tmp) / 'store' / 'chroma.sqlite3').as_uri()}?mode=ro", uri=True)
        try:
            return [f"{d}/{f}" for d, f in db.execute("select dir, filename from migrations order by dir, version")]
        finally:
            db.close()


def build_table(measured: dict[str, list[str]]) -> dict[str, Any]:
    """Group consecutive releases with identical migration sets."""
    out: list[dict[str, Any]] = []
    for version in sorted(measured, key=Version):
        migs = sorted(measured[version])
        if out and out[-1]["migrations"] == migs:
            out[-1]["versions"].append(version)
            out[-1]["last"] = version
        else:
            out.append({"first": version, "last": version, "versions": [version], "migrations": migs})
    return {"measured": date.today().isoformat(), "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "groups": out}


def main(argv: list[str] | None = None) -> int:
    """Measure every installable SQLite-era release (or those given) and rewrite writers.json."""
    wanted = argv if argv else [v for v in releases.versions()
                                if Version(v) >= Version("0.4.0") and not pins.unavailable(v)]
    measured = {}
    for version in wanted:
        try:
            measured[version] = measure_one(version)
            print(f"{version}: {len(measured[version])} migrations", file=sys.stderr)
        except Exception as exc:  # one broken release must not lose the others' measurements
            print(f"{version}: not measured ({exc})", file=sys.stderr)
    TABLE.write_text(json.dumps(build_table(measured), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
