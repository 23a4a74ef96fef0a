"""The scan's value constraints (issue 23, part 7): `values`, `except_values`, `dict_keys` and
`text_calls` on `call` rules, as the embedding-function and hnsw:space contracts use them.

The rules are the contract table's own (contracts/table.toml); whether an upgrade crosses them is
usercode/scan/changes.json's business, measured on real releases (tests/test_scan_corpus.py scans the corpus).
"""

from __future__ import annotations

import ast

from pytest_chroma_compat.usercode.scan import finder, rules


def _rule(contract_id: str) -> rules.Rule:
    return next(r for r in rules.load() if r.contract_id == contract_id)


def _lines(src: str, contract_id: str) -> list[int]:
    return [m.line for m in finder.find(ast.parse(src), (_rule(contract_id),))]


HEAD = "import chromadb\nclient = chromadb.PersistentClient(path='x')\n"


def test_embedding_function_none_only_where_the_module_hands_chromadb_text():
    none = HEAD + "col = client.get_collection('c', embedding_function=None)\n"
    assert _lines(none + "col.add(ids=['a'], documents=['t'])\n", "embedding-function-none") == [3]
    assert _lines(none + "col.query(query_texts=['t'], n_results=1)\n", "embedding-function-none") == [3]
    # explicit vectors: unaffected by what None means
    assert _lines(none + "col.add(ids=['a'], embeddings=[[1.0]], documents=['t'])\n", "embedding-function-none") == []
    assert _lines(none + "col.query(query_embeddings=[[1.0]])\n", "embedding-function-none") == []
    # a function given: not this contract
    ef = HEAD + "col = client.get_collection('c', embedding_function=MyEF())\ncol.add(ids=['a'], documents=['t'])\n"
    assert _lines(ef, "embedding-function-none") == []


def test_persisted_embedding_function_skips_none_and_other_receivers():
    assert _lines(
        HEAD + "c = client.get_collection('c', embedding_function=MyEF())\n", "persisted-embedding-function"
    ) == [3]
    assert (
        _lines(HEAD + "c = client.get_collection('c', embedding_function=None)\n", "persisted-embedding-function") == []
    )
    assert _lines(HEAD + "c = client.get_collection('c')\n", "persisted-embedding-function") == []
    assert (
        _lines(
            "import chromadb\nc = other.get_collection('c', embedding_function=MyEF())\n",
            "persisted-embedding-function",
        )
        == []
    )


def test_modify_hnsw_space_only_when_the_metadata_names_the_space():
    col = HEAD + "col = client.get_collection('c')\n"
    assert _lines(col + "col.modify(metadata={'hnsw:space': 'cosine'})\n", "modify-hnsw-space") == [4]
    assert _lines(col + "meta = {'hnsw:space': 'ip'}\ncol.modify(metadata=meta)\n", "modify-hnsw-space") == [5]
    assert _lines(col + "col.modify(metadata={'owner': 'x'})\n", "modify-hnsw-space") == []
    assert _lines(col + "col.modify(name='renamed')\n", "modify-hnsw-space") == []
