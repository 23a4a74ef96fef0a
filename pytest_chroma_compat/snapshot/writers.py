"""Which releases could have written a store: every signal it holds, against what each release writes.

Every SQLite-era release (0.4 on, the 1.x Rust core included) applies all the
schema migrations it knows when it opens a store and records each one, with
its hash, in the ``migrations`` table, so a store's set of applied migrations
equals the full set of the newest release that opened it. Many releases share
one set (1.0.0-1.2.2 do), so the answer is a *range*; the other signals
(``signals.py``: hashes, schema, configuration JSON keys, segment layout)
narrow it where releases differ, e.g. 0.4.0's first migration has another
hash than 0.4.1's, which is why 0.4.1-0.4.3 refuse a 0.4.0 store.
``writers.json`` is *measured* (every release in the catalogue writes a store,
then its signals are read), never copied from release notes. Regenerate with
``python -m pytest_chroma_compat.snapshot.writers [--raw FILE] [VERSION ...]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from packaging.version import Version

from pytest_chroma_compat.engine import pins, releases

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


#: signals every open rewrites (chromadb applies all its migrations, and refuses a store whose applied
#: migrations have other hashes): the release that opened the store last left exactly these
LAST_OPENER = ("migration_hashes", "schema", "user_version")
#: signals written once, when a collection is created (its configuration JSON) or its index saved:
#: the release that left them opened the store at or before the last one, so they only bound the range below
CREATOR = ("config_keys", "schema_keys", "segment_types", "segment_files")
#: how the reading release is chosen (docs/validate-report.md): every candidate applies the same migrations,
#: and the newest has every fix for reading them; one that refuses the store gives way to the next older one
READER_RULE = "the newest candidate that opens the store"


def _range(versions: list[str], evidence: str, **extra: Any) -> dict[str, Any]:
    usable = _usable(versions) or versions
    return {
        "first": versions[0],
        "last": versions[-1],
        "versions": versions,
        "source_release": usable[-1],
        "readers": usable[::-1],
        "reader_rule": READER_RULE,
        "evidence": evidence,
        **extra,
    }


def legacy_range() -> dict[str, Any]:
    """0.3 wrote DuckDB + Parquet and kept no schema history: any 0.3 release may have written it."""
    versions = [v for v in releases.versions() if v.startswith(LEGACY_SERIES + ".")]
    return _range(versions, "DuckDB/Parquet files (chroma-collections.parquet): the 0.3 format")


def _measured() -> dict[str, dict[str, list[str]]]:
    """Each measured release's signals (a table from before signals were measured has migrations only)."""
    return {v: g.get("signals") or {"migrations": g["migrations"]} for g in groups() for v in g["versions"]}


def _span(versions: list[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


def _narrow(candidates: list[str], signals: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The candidates every other signal agrees with, and a phrase per signal that narrowed them.

    A signal that agrees with no candidate (a store reshaped by hand, a value no
    measured release writes, such as a SPANN index) is left out, not allowed to
    empty the range: the range stays what the migrations alone support.
    """
    measured = _measured()
    said = []
    for kind in LAST_OPENER:
        if kind not in signals:
            continue
        kept = [v for v in candidates if kind in measured[v] and sorted(measured[v][kind]) == sorted(signals[kind])]
        if kept and kept != candidates:
            said.append(f"{kind.replace('_', ' ')} as only {_span(kept)} write")
            candidates = kept
    order = sorted(measured, key=Version)
    for kind in CREATOR:
        for value in sorted(set(signals.get(kind) or [])):
            if not value:  # an empty JSON: what a migration leaves in a column older releases never wrote
                continue
            makers = [v for v in order if value in (measured[v].get(kind) or [])]
            if not makers:
                continue
            kept = [v for v in candidates if Version(v) >= Version(makers[0])]
            if kept and kept != candidates:
                said.append(f"{kind.replace('_', ' ')} first written by {makers[0]}")
                candidates = kept
    return candidates, said


def writer_range(signals: dict[str, list[str]] | Iterable[str]) -> dict[str, Any]:
    """The releases that could have opened the store last (its writer), with the evidence.

    ``signals``: what :mod:`.signals` read from the store (a bare list of
    migrations is accepted too). The migration set must match exactly; the
    other signals then narrow the range (``LAST_OPENER`` exactly, ``CREATOR``
    from below). No exact migration match means either migrations no measured
    release knows (a store from a newer release than this table: ``unknown``
    lists them) or a store opened by an older release after a newer one; the
    range is then the releases that know every migration present (``exact``
    False), not narrowed further.
    """
    sig = dict(signals) if isinstance(signals, dict) else {"migrations": list(signals)}
    have = set(sig.get("migrations") or [])
    table = groups()
    newest = max(have, key=_migration_order, default=None)
    exact = [v for g in table if set(g["migrations"]) == have for v in g["versions"]]
    if exact:
        candidates, said = _narrow(exact, sig)
        evidence = "; ".join([f"{len(have)} migrations applied, newest {newest}"] + said)
        return _range(candidates, evidence, exact=True, unknown=[], migrations_match=_span(exact))
    everything = set().union(*(set(g["migrations"]) for g in table))
    unknown = sorted(have - everything)
    if unknown:
        last = table[-1]["versions"][-1]
        return {
            "first": None,
            "last": None,
            "versions": [],
            "source_release": None,
            "readers": [],
            "reader_rule": READER_RULE,
            "exact": False,
            "unknown": unknown,
            "evidence": f"migrations no measured release (up to {last}) applies: {', '.join(unknown)}; "
            "written by a newer release",
        }
    supersets = [v for g in table if have <= set(g["migrations"]) for v in g["versions"]]
    return _range(
        supersets,
        f"{len(have)} migrations applied, newest {newest}; no release has exactly "
        "this set (opened by an older release after a newer one?)",
        exact=False,
        unknown=[],
    )


def describe(wr: dict[str, Any]) -> str:
    """ "one of chromadb 1.0.0-1.2.2 (evidence: ...)": the range, never one release stated as the writer."""
    versions = wr.get("versions") or [v for v in (wr.get("first"), wr.get("last")) if v]
    if not versions:
        return f"unknown ({wr.get('evidence', 'no evidence')})"
    count = f" ({len(versions)} releases)" if wr.get("versions") else ""
    who = (
        f"chromadb {versions[0]}"
        if versions[0] == versions[-1]
        else f"one of chromadb {versions[0]}-{versions[-1]}{count}"
    )
    return f"{who} (evidence: {wr.get('evidence', 'none')})"


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


def measure_one(version: str) -> dict[str, list[str]]:
    """Write a one-record store with ``version`` and read back every signal it leaves (``signals.py``)."""
    import numpy as np

    from pytest_chroma_compat.engine.client import Release
    from pytest_chroma_compat.snapshot import signals

    with tempfile.TemporaryDirectory(prefix=f"writers-{version}-") as tmp, Release(version) as release:
        client = release.persistent(Path(tmp) / "store")
        client.create_collection("writers-probe").add(
            ids=["a"], embeddings=np.ones((1, 3), dtype=np.float32), documents=["a"], metadatas=[{"k": 1}]
        )
        client.close()
        release.close()
        return signals.read_path(Path(tmp) / "store")


def build_table(measured: dict[str, dict[str, list[str]]]) -> dict[str, Any]:
    """Group consecutive releases that leave identical signals."""
    out: list[dict[str, Any]] = []
    for version in sorted(measured, key=Version):
        sig = {k: sorted(v) for k, v in sorted(measured[version].items())}
        if out and out[-1]["signals"] == sig:
            out[-1]["versions"].append(version)
            out[-1]["last"] = version
        else:
            out.append(
                {
                    "first": version,
                    "last": version,
                    "versions": [version],
                    "migrations": sig["migrations"],
                    "signals": sig,
                }
            )
    return {
        "measured": date.today().isoformat(),
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "groups": out,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure every installable SQLite-era release (or those given) and rewrite writers.json.

    ``--raw FILE`` keeps each measurement as it is made and reuses those already
    there, so an interrupted run of ~90 releases resumes where it stopped.
    """
    args = list(argv or [])
    raw_path = Path(args.pop(args.index("--raw") + 1)) if "--raw" in args else None
    args = [a for a in args if a != "--raw"]
    if any(a.startswith("-") for a in args):
        print("usage: python -m pytest_chroma_compat.snapshot.writers [--raw FILE] [VERSION ...]", file=sys.stderr)
        return 2
    wanted = args or [v for v in releases.versions() if Version(v) >= Version("0.4.0") and not pins.unavailable(v)]
    measured: dict[str, Any] = json.loads(raw_path.read_text()) if raw_path and raw_path.exists() else {}
    for version in wanted:
        if version in measured:
            continue
        try:
            measured[version] = measure_one(version)
            print(f"{version}: {len(measured[version]['migrations'])} migrations", file=sys.stderr, flush=True)
        except Exception as exc:  # one broken release must not lose the others' measurements
            print(f"{version}: not measured ({exc})", file=sys.stderr, flush=True)
            continue
        if raw_path:
            raw_path.write_text(json.dumps(measured, indent=1))
    done = {v: measured[v] for v in wanted if v in measured}
    if not done:  # never replace the table with an empty one
        print("nothing measured; writers.json left as it was", file=sys.stderr)
        return 1
    TABLE.write_text(json.dumps(build_table(done), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
