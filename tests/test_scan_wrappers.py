"""The scan follows wrapper code: ``**`` dict unpacking, clients and collections held in properties
and attributes, one level of the project's own helpers that hand ``where``/``limit`` on, objects
handed to a constructor (only on chromadb-only evidence), and names bound per function scope.
The corpus (tests/scan_corpus/wrap_*.py) holds the application-shaped cases; these pin each rule."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pytest_chroma_compat.usercode.scan.reader import scan


def _scan(tmp_path: Path, code: str, old: str = "0.6.3", new: str = "1.5.9") -> list[tuple[int, str]]:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(code))
    return [(f.line, f.contract_id) for f in scan([str(path)], old, new).findings]


def test_a_name_bound_from_list_collections_in_one_method_does_not_mark_another_method_s_name(tmp_path):
    found = _scan(
        tmp_path,
        """
        import chromadb
        class Admin:
            def __init__(self, client: chromadb.ClientAPI):
                self._client = client
            def drop_all(self):
                for name in self._client.list_collections():
                    self._client.delete_collection(name)
            def drop(self, name):
                self._client.delete_collection(name)
            def names(self):
                return [n for n in self._client.list_collections()]
            def get(self, n):
                return self._client.get_collection(n)
    """,
    )
    assert found == [(8, "list-collections-objects")]


def test_get_with_limit_in_an_unpacked_dict_literal_dict_call_or_added_key(tmp_path):
    code = """
        import chromadb
        col = chromadb.PersistentClient(path="x").get_collection("a")
        def a(size):
            kwargs = {"where": None, "limit": size}
            return col.get(**kwargs)
        def b(size):
            return col.get(**dict(offset=size))
        def c(size):
            kwargs = {"include": ["documents"]}
            kwargs["limit"] = size
            return col.get(**kwargs)
        def d(ids):
            kwargs = {"ids": ids}
            return col.get(**kwargs)
        def e():
            limit = 3
            kwargs = {"ids": ["x"]}
            return col.get(**kwargs)
    """
    assert _scan(tmp_path, code, "0.4.24", "1.5.9") == [
        (6, "get-order-internal-ids"),
        (8, "get-order-internal-ids"),
        (12, "get-order-internal-ids"),
    ]


def test_a_client_held_in_a_property_and_a_collection_from_a_method(tmp_path):
    found = _scan(
        tmp_path,
        """
        import chromadb
        class Store:
            @property
            def client(self):
                return chromadb.HttpClient(host="h")
            def _col(self):
                return self.client.get_collection("docs")
            def names(self):
                return [c.name for c in self.client.list_collections()]
            def tagged(self):
                return self._col().get(where={"tags": {"$contains": "x"}})
    """,
        "0.5.23",
        "0.6.3",
    )
    assert found == [(10, "list-collections-names")]
    assert _scan(tmp_path, (tmp_path / "app.py").read_text(), "1.0.21", "1.5.9") == [(12, "where-contains-metadata")]


def test_a_literal_filter_passed_to_the_project_s_own_helper_is_matched_where_it_is_written(tmp_path):
    found = _scan(
        tmp_path,
        """
        import chromadb
        col = chromadb.PersistentClient(path="x").get_collection("a")
        def search(vector, flt=None, k=3):
            return col.query(query_embeddings=[vector], n_results=k, where=flt)
        def relay(vector, where=None):
            return search(vector, flt=where)
        def find(**opts):
            return col.get(**opts)
        hit = search([0.1], {"label": {"$contains": "a"}})
        hit = search([0.1], flt={"$and": [{"label": {"$contains": "a"}}, {"n": 1}]})
        hit = search([0.1], k={"label": {"$contains": "a"}})
        hit = find(where={"label": {"$contains": "a"}})
        hit = relay([0.1], where={"label": {"$contains": "a"}})
    """,
    )
    # k is not handed on as a filter; relay -> search is two levels: not followed
    assert found == [(10, "where-contains-metadata"), (11, "where-contains-metadata"), (13, "where-contains-metadata")]


def test_an_object_handed_to_init_is_a_client_only_on_chromadb_only_evidence(tmp_path):
    mongo_like = """
        class Repo:
            def __init__(self, client):
                self._client = client
            def setup(self):
                if "audit" in self._client.list_collections():
                    self._client.drop_collection("audit")
                self._client.get_collection("audit")
    """
    assert _scan(tmp_path, mongo_like) == []  # list_collections/get_collection: pymongo has them too
    chroma_like = (
        mongo_like
        + """
            def labels(self):
                return self._client.get_or_create_collection("labels", embedding_function=None)
    """
    )
    assert _scan(tmp_path, chroma_like) == [(6, "list-collections-objects")]


def test_a_local_name_shadows_a_module_level_collection(tmp_path):
    found = _scan(
        tmp_path,
        """
        import chromadb
        col = chromadb.PersistentClient(path="x").get_collection("a")
        def other(db):
            col = db.table("t")
            return col.get(limit=3)
        page = col.get(limit=3)
    """,
        "0.4.24",
        "1.5.9",
    )
    assert found == [(7, "get-order-internal-ids")]
