"""Settings a store was created with, detected from the store, and the releases that can repeat them.

Why: chromadb keeps some choices of the creating client only implicitly in the
store (``migrations_hash_algorithm="sha256"`` leaves SHA-256 digests in the
``migrations`` table) and re-checks them on every open against the *client's*
Settings. Opened with the defaults, such a store is refused by every release,
the one that wrote it included, and used to be called "damaged". The settings
are data (``store_settings.toml``: name, default, the releases whose Settings
take it, and which reader detects it); this module reads them from the store
with read-only SQLite and turns them into the ``settings`` a worker opens with.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from pytest_chroma_compat.engine.releases import _load_toml

TABLE = Path(__file__).with_name("store_settings.toml")
_HEX = re.compile(r"^[0-9a-f]+$")
#: digest length (hex characters) -> algorithm, for the algorithms chromadb offers
DIGESTS = {32: ("md5", hashlib.md5), 64: ("sha256", hashlib.sha256)}


@lru_cache(maxsize=1)
def table() -> tuple[dict[str, Any], ...]:
    return tuple(_load_toml(TABLE).get("setting", []))


def _migration_hash_digest(conn: sqlite3.Connection) -> tuple[str | None, str]:
    """(algorithm, evidence) from the stored hashes, each checked against the stored SQL it hashes."""
    cols = {r[1] for r in conn.execute("pragma table_info('migrations')")}
    if "hash" not in cols:
        return None, "no hash column in migrations"
    rows = conn.execute("select hash, " + ("sql" if "sql" in cols else "null") + " from migrations").fetchall()
    if not rows:
        return None, "no migration applied"
    seen: dict[str, int] = {}
    confirmed = 0
    for digest, sql in rows:
        digest = str(digest or "").lower()
        algo = DIGESTS.get(len(digest)) if _HEX.match(digest) else None
        name = algo[0] if algo else "unknown"
        seen[name] = seen.get(name, 0) + 1
        if algo and isinstance(sql, str) and algo[1](sql.encode("utf-8")).hexdigest() == digest:
            confirmed += 1
    if len(seen) != 1 or "unknown" in seen:
        mix = ", ".join(f"{n} {k}" for k, n in sorted(seen.items()))
        return None, f"migration hashes of mixed or unknown kinds ({mix}): no one setting opens this store"
    algo = next(iter(seen))
    return algo, (
        f"{len(rows)} of {len(rows)} migration hashes are {algo.upper()} digests"
        f" ({confirmed} checked against the SQL the store records)"
    )


READERS: dict[str, Callable[[sqlite3.Connection], tuple[str | None, str]]] = {
    "migration_hash_digest": _migration_hash_digest,
}


def detect(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """{name: {"value", "default", "versions", "evidence"}} for every setting the store reveals.

    ``value`` is None when the store does not say (then the release's default is used).
    """
    out = {}
    for row in table():
        value, evidence = READERS[row["detect"]](conn)
        out[row["name"]] = {
            "value": value,
            "default": row["default"],
            "versions": row["versions"],
            "evidence": evidence,
        }
    return out


def to_open(detected: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    """The settings a worker must open the store with: those whose value is not the default."""
    return {
        name: s["value"]
        for name, s in (detected or {}).items()
        if isinstance(s, dict) and s.get("value") not in (None, s.get("default"))
    }


def describe(settings: dict[str, str]) -> str:
    """``migrations_hash_algorithm="sha256"``, as the user would have written it."""
    return ", ".join(f'{k}="{v}"' for k, v in sorted(settings.items()))


def cannot_take(version: str, settings: dict[str, str]) -> list[str]:
    """The settings ``version``'s Settings has no field for (a store created with them is closed to it)."""
    from packaging.specifiers import SpecifierSet

    rows = {r["name"]: r for r in table()}
    return [k for k in sorted(settings) if k in rows and version not in SpecifierSet(rows[k]["versions"])]


def restrict(wr: dict[str, Any], detected: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The writer range without the releases that cannot take the store's settings (they never wrote it).

    The range keeps its evidence, with the setting named; a range left empty keeps
    its versions (the store then says which setting no candidate takes).
    """
    wanted = to_open(detected)
    if not wanted or not wr.get("versions"):
        return wr
    able = [v for v in wr["versions"] if not cannot_take(v, wanted)]
    if not able or able == wr["versions"]:
        return {**wr, "settings": wanted}
    readers = [v for v in wr.get("readers") or [] if v in able]
    dropped = [v for v in wr["versions"] if v not in able]
    span = dropped[0] if len(dropped) == 1 else f"{dropped[0]}-{dropped[-1]}"
    return {
        **wr,
        "first": able[0],
        "last": able[-1],
        "versions": able,
        "readers": readers,
        "source_release": readers[0] if readers else wr.get("source_release"),
        "settings": wanted,
        "evidence": f"{wr.get('evidence', '')}; created with {describe(wanted)}, which chromadb {span} cannot take",
    }
