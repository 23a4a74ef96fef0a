"""A collection's settings read from one release and re-created in another (``chroma-compat migrate``).

Runs inside a release's worker (``Release.run``) with the client the host opened.
Records travel through the worker's own ``export`` and ``upsert`` ops (binary
vectors); what those cannot carry is here: the collection's metadata and its
configuration, and its distance space as the release itself reports it.

Why the configuration is read live: 0.6 and 1.x keep it beside the metadata
(``configuration_json``), in shapes that differ by era; 0.4 and 0.5 keep the
HNSW settings in the metadata (``hnsw:*``). Which attributes exist is probed
with ``getattr``, never by comparing versions. Stdlib only (plus the release).
"""

from __future__ import annotations

from typing import Any


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("pytest-chroma-compat never embeds text: pass explicit embeddings")


def _embedding_function(client: Any) -> Any:
    # 0.3 replaces None with a sentence-transformers model (a download): give it one that refuses.
    import chromadb  # type: ignore

    return None if hasattr(chromadb, "PersistentClient") else _refuse


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _configuration(col: Any) -> dict | None:
    for attr in ("configuration_json", "_model"):
        value = getattr(col, attr, None)
        if attr == "_model" and value is not None:
            value = getattr(value, "configuration_json", None)
        if isinstance(value, dict):
            return _jsonable(value)
    return None


def _space(metadata: dict | None, configuration: dict | None) -> str:
    """The distance space the collection uses: ``hnsw:space`` metadata where set (0.4-0.6 use only
    it, and 1.x honours it), else 1.x's configuration, else l2 (every release's default).

    Not 0.5/0.6's ``hnsw_configuration``: it says l2 for a collection its release queries as
    cosine (measured on 0.5.23 and 0.6.3: distance 0 between [1, 0] and [2, 0]).
    """
    if (metadata or {}).get("hnsw:space"):
        return str(metadata["hnsw:space"])  # type: ignore[index]
    for section in ("hnsw", "spann"):
        part = (configuration or {}).get(section)
        if isinstance(part, dict) and part.get("space"):
            return str(part["space"])
    return "l2"


def describe(client: Any, name: str) -> dict:
    col = client.get_collection(name=name, embedding_function=_embedding_function(client))
    metadata = _jsonable(col.metadata) if col.metadata is not None else None
    configuration = _configuration(col)
    return {
        "name": col.name,
        "metadata": metadata,
        "configuration": configuration,
        "space": _space(metadata, configuration),
    }


def create(client: Any, name: str, metadata: dict | None = None, configuration: dict | None = None) -> dict:
    """Create the collection; ``configuration`` is passed only when given (1.x to 1.x)."""
    kwargs: dict = {"name": name, "embedding_function": _embedding_function(client)}
    if metadata:
        kwargs["metadata"] = metadata
    if configuration:
        kwargs["configuration"] = configuration
    client.create_collection(**kwargs)
    return describe(client, name)


def list_databases(client: Any, tenant: str) -> list[str] | None:
    """The databases of ``tenant`` on a server, where the release's AdminClient can list them (None: it cannot)."""
    import chromadb  # type: ignore

    admin_class = getattr(chromadb, "AdminClient", None)
    if admin_class is None:
        return None
    admin = admin_class(client.get_settings())
    lister = getattr(admin, "list_databases", None)
    if lister is None:
        return None
    return sorted(str(getattr(d, "name", None) or d["name"]) for d in lister(tenant=tenant))
