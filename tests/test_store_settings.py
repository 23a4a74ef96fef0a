"""Settings a store was created with (issue 23, part 6), on stores real releases wrote with them.

A store created with ``migrations_hash_algorithm="sha256"`` is refused by
every release opened with the defaults, its own writer included; validate
used to call it "damaged" (exit 2). The inventory now reads the setting from
the stored hashes, every release opens the store with it, and the report
names it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pytest_chroma_compat.common.errors import ChromaError, WorkerError
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot import inventory, reports, store_settings
from pytest_chroma_compat.snapshot.validate import validate

SHA = {"migrations_hash_algorithm": "sha256"}
WRITERS = ("0.4.24", "1.5.9")


def _write(version: str, path: Path, settings: dict | None = SHA) -> Path:
    with Release(version) as release:
        with release.persistent(path, settings) as client:
            col = client.create_collection("notes")
            col.add(
                ids=[f"n{i}" for i in range(12)],
                embeddings=[[float(i), 1.0, 0.5] for i in range(12)],
                documents=[f"note {i}" for i in range(12)],
                metadatas=[{"k": i} for i in range(12)],
            )
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sha256-stores")
    return {v: _write(v, root / v) for v in WRITERS}


@pytest.mark.parametrize("version", WRITERS)
def test_the_inventory_reads_the_setting_from_the_stored_hashes(stores, version):
    inv = inventory.take(stores[version])
    found = inv["store_settings"]["migrations_hash_algorithm"]
    assert found["value"] == "sha256" and found["default"] == "md5", found
    assert store_settings.to_open(inv["store_settings"]) == SHA
    # the hashes are normalised to the SQL's MD5, so the range is what an MD5 store of that release gets
    assert version in inv["writer_range"]["versions"], inv["writer_range"]


def test_the_default_open_really_refuses_it(stores):
    """What made validate say "damaged": the writer itself, opened with the defaults, refuses its store."""
    with Release("1.5.9") as release:
        with pytest.raises((ChromaError, WorkerError), match="(?i)inconsistent hash"):
            release.persistent(stores["1.5.9"]).list_collection_names()


def test_an_md5_store_has_no_setting_to_repeat(tmp_path):
    store = _write("1.5.9", tmp_path / "md5", settings=None)
    inv = inventory.take(store)
    assert inv["store_settings"]["migrations_hash_algorithm"]["value"] == "md5"
    assert store_settings.to_open(inv["store_settings"]) == {}
    assert "created with" not in reports.terminal(_fake(inv))


def _fake(inv):
    from pytest_chroma_compat.snapshot.result import Validation

    v = Validation(source={"location": "x"})
    v.inventory = inv
    return v


@pytest.mark.parametrize("version,from_", [("0.4.24", None), ("1.5.9", "1.5.9")])
def test_a_sha256_store_validates_with_a_real_verdict_naming_the_setting(stores, tmp_path, version, from_):
    result = validate(str(stores[version]), "1.5.9", from_=from_, workdir=tmp_path / "work", contracts=False)
    assert result.error is None, result.error
    assert result.exit_code == 0, result.summary
    named = [c for c in result.checks if c.name == "store-settings"]
    assert named and 'migrations_hash_algorithm="sha256"' in named[0].detail
    text = reports.terminal(result)
    assert 'created with: migrations_hash_algorithm="sha256"' in text
    assert result.rollback and result.rollback.get("checked"), result.rollback


def test_a_sha256_store_rules_out_releases_without_the_setting():
    """0.4.15-0.4.24 share a migration set; only 0.4.18 on can have written a sha256 store."""
    wr = {
        "first": "0.4.15",
        "last": "0.4.24",
        "versions": [f"0.4.{i}" for i in range(15, 25)],
        "readers": [f"0.4.{i}" for i in range(24, 14, -1)],
        "source_release": "0.4.24",
        "evidence": "e",
    }
    detected = {"migrations_hash_algorithm": {"value": "sha256", "default": "md5"}}
    out = store_settings.restrict(wr, detected)
    assert out["first"] == "0.4.18" and out["readers"][-1] == "0.4.18"
    assert "0.4.15-0.4.17 cannot take" in out["evidence"]
    assert store_settings.cannot_take("0.4.17", SHA) == ["migrations_hash_algorithm"]
    assert store_settings.cannot_take("0.4.18", SHA) == []


def test_mixed_hashes_name_no_setting(tmp_path, stores):
    db = tmp_path / "chroma.sqlite3"
    src = sqlite3.connect(stores["0.4.24"] / "chroma.sqlite3")
    src.backup(sqlite3.connect(db))
    src.close()
    conn = sqlite3.connect(db)
    conn.execute("update migrations set hash = 'd41d8cd98f00b204e9800998ecf8427e' where rowid = 1")
    conn.commit()
    found = store_settings.detect(conn)["migrations_hash_algorithm"]
    conn.close()
    assert found["value"] is None and "mixed" in found["evidence"]


@pytest.mark.slow
def test_the_measured_boundary_0_4_17_has_no_setting_0_4_18_has(tmp_path):
    """The table's ``versions = ">=0.4.18"``, measured: 0.4.17's Settings refuses the field."""
    with Release("0.4.17") as release:
        with pytest.raises((ChromaError, WorkerError), match="extra fields not permitted|migrations_hash_algorithm"):
            release.persistent(tmp_path / "a", SHA)
    store = _write("0.4.18", tmp_path / "b")
    assert inventory.take(store)["store_settings"]["migrations_hash_algorithm"]["value"] == "sha256"


def test_a_store_no_setting_opens_names_what_was_tried(stores, tmp_path):
    """Hashes of two kinds (a store hand-edited, or opened with both settings): the default open is tried,
    refused, and the message says which settings were used and why no other was."""
    import shutil

    store = tmp_path / "mixed"
    shutil.copytree(stores["0.4.24"], store)
    conn = sqlite3.connect(store / "chroma.sqlite3")
    conn.execute("update migrations set hash = 'd41d8cd98f00b204e9800998ecf8427e' where rowid = 1")
    conn.commit()
    conn.close()
    result = validate(str(store), "1.5.9", from_="0.4.24", workdir=tmp_path / "work", contracts=False)
    assert result.exit_code == 2, result.summary
    assert "chromadb 0.4.24 refused it" in result.error
    assert "with the default settings (migrations_hash_algorithm: migration hashes of mixed" in result.error
