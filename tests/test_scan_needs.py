"""``chroma-compat scan --needs``: the lowest measured chromadb release that has every chromadb name the
code imports or calls, from usercode/scan/names.json (measured in each release's worker); the committed
catalogue agrees with a release measured now."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.usercode.scan import needs

from .conftest import NEW, run_cli


def _write(tmp_path: Path, code: str) -> Path:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(code))
    return path


def test_build_keeps_runs_of_releases_per_name():
    doc = needs.build(
        {
            "0.4.0": {"top": ["A"], "client": ["persist"], "modules": ["chromadb"]},
            "0.5.0": {"top": ["A", "B"], "client": [], "modules": ["chromadb"]},
            "1.0.0": {"top": ["B"], "client": ["persist"], "modules": ["chromadb"]},
        }
    )
    assert doc["measured"] == ["0.4.0", "0.5.0", "1.0.0"]
    assert doc["names"]["chromadb.A"] == [["0.4.0", "0.5.0"]]
    assert doc["names"]["client.persist"] == [["0.4.0", "0.4.0"], ["1.0.0", "1.0.0"]]
    assert doc["names"]["import chromadb"] == [["0.4.0", "1.0.0"]]


def test_uses_follow_the_scan_s_tracking():
    import ast

    tree = ast.parse(
        textwrap.dedent("""
        import chromadb
        from chromadb.config import Settings
        from chromadb import PersistentClient
        client = PersistentClient(path="x")
        col = client.get_or_create_collection("a")
        n = client.get_max_batch_size()
        col.upsert(ids=["1"], embeddings=[[0.0]])
        other = chromadb.HttpClient()
        db.get_max_batch_size()
    """)
    )
    assert sorted({name for _, name in needs.uses(tree)}) == [
        "chromadb.HttpClient",
        "chromadb.PersistentClient",
        "client.get_max_batch_size",
        "client.get_or_create_collection",
        "collection.upsert",
        "from chromadb.config import Settings",
        "import chromadb",
        "import chromadb.config",
    ]


def test_the_lowest_release_with_every_name_and_what_the_one_before_lacks(tmp_path):
    cat = needs.load()
    app = _write(
        tmp_path,
        """
        import chromadb
        client = chromadb.PersistentClient(path="x")
        n = client.get_max_batch_size()
    """,
    )
    answer = needs.needs([str(app)]).answer()

    def ver(v):
        return tuple(map(int, v.split(".")))

    def have(name, v):
        return any(ver(a) <= v <= ver(b) for a, b in cat["names"][name])

    expected = next(
        v
        for v in cat["measured"]
        if have("chromadb.PersistentClient", ver(v)) and have("client.get_max_batch_size", ver(v))
    )
    assert answer["lowest"] == expected and ver(expected) >= (0, 4, 0)  # PersistentClient came with 0.4
    assert answer["previous_lacks"] and set(answer["previous_lacks"]) <= {
        "chromadb.PersistentClient",
        "client.get_max_batch_size",
    }
    assert answer["names"]["client.get_max_batch_size"] == [f"{app}:4"]


def test_the_command_names_gone_and_unknown_names_and_exits_0(tmp_path):
    app = _write(
        tmp_path,
        """
        import chromadb
        client = chromadb.Client()
        client.persist()
        client.frobnicate()
    """,
    )
    proc = run_cli("scan", "--needs", str(app))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("chromadb>=0.3.29: the lowest measured release")
    assert "note: client.persist is absent from measured release 0.4.0 on" in proc.stdout
    assert "not chromadb's, or misspelt): client.frobnicate" in proc.stdout
    doc = json.loads(run_cli("scan", "--needs", str(app), "--format", "json").stdout)
    assert doc["lowest"] == "0.3.29" and doc["gone_later"] == {"client.persist": "0.4.0"}
    bad = run_cli("scan", "--needs", str(app), "--format", "sarif")
    assert bad.returncode == 2 and "text or json" in bad.stderr


def test_the_committed_catalogue_agrees_with_a_release_measured_now():
    cat = needs.load()
    assert NEW in cat["measured"]
    with Release(NEW) as release:
        m = release.run("chroma_compat_names:measure", sys_path=[str(needs.RELEASE_SIDE)])
    fresh = needs.build({NEW: m})["names"]
    assert set(fresh) == {n for n in cat["names"] if _has(cat, n, NEW)}


def _has(cat: dict, name: str, version: str) -> bool:
    from packaging.version import Version

    return any(Version(a) <= Version(version) <= Version(b) for a, b in cat["names"][name])


def test_names_imported_from_measured_submodules_and_submodules_imported_by_name(tmp_path):
    app = _write(
        tmp_path,
        """
        from chromadb.api.types import Documents, NoSuchNameHere
        from chromadb.utils import embedding_functions
        from chromadb.db.base import SqlDB
    """,
    )
    used = needs.needs([str(app)]).used
    assert "chromadb.api.types.Documents" in used and "import chromadb.utils.embedding_functions" in used
    assert "chromadb.api.types.NoSuchNameHere" in used and "import chromadb.db.base" in used
    assert not any(n.endswith("SqlDB") for n in used)  # chromadb.db.base is measured as a whole
    answer = needs.needs([str(app)]).answer()
    assert "chromadb.api.types.NoSuchNameHere" in answer["unknown"]
