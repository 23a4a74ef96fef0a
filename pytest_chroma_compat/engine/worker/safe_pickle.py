"""Unpickling restricted to plain data, installed in every worker before chromadb is imported.

Why: chromadb 0.3.x-0.6.x keep HNSW bookkeeping in pickles inside the store
(``<segment>/index_metadata.pickle``; 0.3's ``index/*_<collection>.pkl``) and
read them with ``pickle.load`` when a segment is opened. A pickle is a
program: a crafted file in a store someone hands us runs any callable it names
(``os.system``, ``builtins.exec``) with the worker's privileges. The harness
opens stores it did not write, so every unpickling in a worker may resolve only
the globals these releases are measured to write; anything else stops the load
with :class:`PickleHoldsCode`, which the worker sends back as an ordinary
chromadb-side error naming the file.

Stdlib only: this file runs inside release environments. The host imports it
too (``snapshot/pickles.py`` reads ``ALLOWED``), so importing it changes nothing;
only :func:`install` does.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from typing import Any

#: Every global a chromadb store's pickle names, MEASURED, not guessed: real stores
#: written by 0.3.29, 0.4.24, 0.5.23, 0.6.3, 1.0.21 and 1.5.9 (a collection with
#: hnsw:batch_size/sync_threshold 3, 12 records, one deleted, so each segment
#: persists), every ``*.pickle``/``*.pkl`` walked with ``pickletools.genops`` for
#: GLOBAL/STACK_GLOBAL/INST. 1.x (Rust) writes plain dicts (no global at all);
#: tests/test_trust_pickles.py re-measures 0.4.24 and 0.6.3 stores against this.
MEASURED: dict[tuple[str, str], str] = {
    (
        "chromadb.segment.impl.vector.local_persistent_hnsw",
        "PersistentData",
    ): "0.4.x-0.6.x <segment>/index_metadata.pickle",
    ("uuid", "UUID"): "0.3.x index/id_to_uuid_<collection>.pkl",
}
#: Protocols 0-3 spell these plain-data types as globals; calling them builds data and runs no code of the file's.
PLAIN_TYPES: dict[tuple[str, str], str] = {
    ("builtins", "set"): "protocol <= 3 set",
    ("builtins", "frozenset"): "protocol <= 3 frozenset",
    ("builtins", "bytearray"): "protocol <= 3 bytearray",
    ("builtins", "complex"): "a complex number",
    ("__builtin__", "set"): "protocol 0-2 set (Python 2)",
    ("__builtin__", "frozenset"): "protocol 0-2 frozenset",
}
ALLOWED: frozenset[tuple[str, str]] = frozenset(MEASURED) | frozenset(PLAIN_TYPES)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class PickleHoldsCode(pickle.UnpicklingError):
    """A pickle named a callable outside ``ALLOWED``: it holds code, not data. Nothing of it ran."""


def describe(path: str | None) -> str:
    """How a message names a pickle: "index_metadata.pickle in segment <uuid>" for a segment's file."""
    if not path:
        return "a pickle"
    path = os.fsdecode(path)
    parent, name = os.path.basename(os.path.dirname(path)), os.path.basename(path)
    if _UUID.match(parent):
        return f"{name} in segment {parent}"
    return f"{parent}/{name}" if parent else name


def refusal(where: str, module: str, name: str) -> str:
    return f"{where} holds code, not data (references {module}.{name})"


class _Restricted:
    """Asks :data:`ALLOWED` before any global is resolved (extension codes go through here too)."""

    def __init__(self, file: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(file, *args, **kwargs)  # type: ignore[call-arg]
        name = getattr(file, "name", None)
        self._where = describe(name if isinstance(name, (str, bytes)) else None)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise PickleHoldsCode(refusal(self._where, module, name))
        return super().find_class(module, name)  # type: ignore[misc]


class RestrictedUnpickler(_Restricted, pickle.Unpickler):
    """The C unpickler, restricted."""


class RestrictedPyUnpickler(_Restricted, pickle._Unpickler):  # type: ignore[name-defined,misc]
    """The pure-Python unpickler, restricted: libraries subclass it and copy its ``dispatch``
    table at import time (pandas' pickle_compat, imported by chromadb 0.3), so it stays that class."""


def load(
    file: Any, *, fix_imports: bool = True, encoding: str = "ASCII", errors: str = "strict", buffers: Any = None
) -> Any:
    return RestrictedUnpickler(file, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers).load()


def loads(
    data: Any, /, *, fix_imports: bool = True, encoding: str = "ASCII", errors: str = "strict", buffers: Any = None
) -> Any:
    if isinstance(data, str):
        raise TypeError("Can't load pickle from unicode string")
    return load(io.BytesIO(data), fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers)


def install() -> None:
    """Replace every way in: ``pickle.load/loads/Unpickler``, the pure-Python ``pickle._Unpickler``
    family, and the C module ``_pickle`` (a ``from _pickle import load`` made later gets ours too).

    Must run before chromadb is imported: releases call ``pickle.load`` through the
    module, but anything that bound the original earlier would keep it.
    """
    import _pickle

    for module in (pickle, _pickle):
        module.load, module.loads, module.Unpickler = load, loads, RestrictedUnpickler
    pickle._Unpickler = RestrictedPyUnpickler  # type: ignore[attr-defined]
    pickle._load = lambda file, **kw: RestrictedPyUnpickler(file, **kw).load()  # type: ignore[attr-defined]
    pickle._loads = lambda data, /, **kw: RestrictedPyUnpickler(io.BytesIO(data), **kw).load()  # type: ignore


def installed() -> bool:
    return pickle.load is load and pickle.Unpickler is RestrictedUnpickler
