"""Which chromadb names one release has: runs INSIDE the release (``Release.run``), stdlib only.

Measured, not read from docs or changelogs: the public names of the ``chromadb`` module after
import, the public attributes of the client class ``chromadb.Client()`` gives (an in-memory
client, nothing written), the public attributes of the Collection class, and every module file
of the installed package (found on disk, not imported: importing all of them would run server
code). The host keeps these as data (scan/names.json) for ``chroma-compat scan --needs``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

#: submodules users import names from (measured name by name); other submodules count as a whole
SUBMODULES = (
    "chromadb.api",
    "chromadb.api.types",
    "chromadb.api.models.Collection",
    "chromadb.config",
    "chromadb.errors",
    "chromadb.utils.embedding_functions",
    "chromadb.utils.batch_utils",
    "chromadb.auth.token",
    "chromadb.auth.token_authn",
    "chromadb.types",
    "chromadb.base_types",
)


def _public(obj: Any) -> list[str]:
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def _modules(root: str) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        parts = [] if rel == "." else rel.split(os.sep)
        # a folder without __init__.py is still importable (a namespace package: chromadb/api/models)
        dirs[:] = sorted(d for d in dirs if d not in ("test", "tests", "__pycache__") and d.isidentifier())
        for name in sorted(files):
            if name.endswith(".py"):
                stem = name[:-3]
                out.append(".".join(["chromadb", *parts] + ([] if stem == "__init__" else [stem])))
    return sorted(set(out))


def measure() -> dict:
    import chromadb

    found: dict[str, Any] = {"version": getattr(chromadb, "__version__", "?"), "top": _public(chromadb)}
    try:
        client = chromadb.EphemeralClient() if hasattr(chromadb, "EphemeralClient") else chromadb.Client()
        found["client"] = _public(type(client))
    except Exception as exc:  # noqa: BLE001 - reported, not guessed
        found["client_error"] = f"{type(exc).__name__}: {exc}"[:300]
    try:
        from chromadb.api.models.Collection import Collection

        found["collection"] = _public(Collection)
    except Exception as exc:  # noqa: BLE001
        found["collection_error"] = f"{type(exc).__name__}: {exc}"[:300]
    found["modules"] = _modules(os.path.dirname(os.path.abspath(chromadb.__file__)))
    found["submodules"] = {}
    for name in SUBMODULES:
        if name in found["modules"]:
            try:
                found["submodules"][name] = _public(importlib.import_module(name))
            except Exception as exc:  # noqa: BLE001 - present on disk, not importable here: said, not guessed
                found.setdefault("submodule_errors", {})[name] = f"{type(exc).__name__}: {exc}"[:300]
    return found
