"""The few places where releases differ in how a client is made, found and let go.

The host picks the adapter by name from its version table (adapters.toml) and
passes it on the worker's command line, so no version comparison happens here.
Inside a family, differences are probed with ``getattr`` on the live module,
never by parsing version strings. Stdlib only: this runs inside a release's env.
"""

from __future__ import annotations

from typing import Any

HERMETIC_SETTINGS = {"anonymized_telemetry": False, "allow_reset": True}


def _never_embed(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("pytest-chroma-compat never embeds text: pass explicit embeddings")


class SqliteFamily:
    """0.4 to 0.6: PersistentClient/EphemeralClient/HttpClient and a SQLite store."""

    name = "sqlite"

    def __init__(self, chromadb: Any) -> None:
        self.chromadb = chromadb
        from chromadb.config import Settings  # type: ignore

        self.Settings = Settings

    def settings(self, extra: dict | None = None) -> Any:
        values = dict(HERMETIC_SETTINGS)
        values.update(extra or {})
        return self.Settings(**values)

    def persistent(
        self, path: str, settings: dict | None, tenant: str | None = None, database: str | None = None
    ) -> Any:
        # only what the caller set: releases before 0.4.15 have no tenants and take neither
        scope = {k: v for k, v in (("tenant", tenant), ("database", database)) if v is not None}
        return self.chromadb.PersistentClient(path=path, settings=self.settings(settings), **scope)

    def ensure_database(self, client: Any, tenant: str, database: str) -> None:
        """Create the tenant and database if they are missing (export-import, test stores)."""
        admin = self.chromadb.AdminClient(client.get_settings())
        try:
            admin.get_tenant(tenant)
        except Exception:  # NotFoundError, or ValueError in 0.4
            admin.create_tenant(tenant)
        try:
            admin.get_database(database, tenant=tenant)
        except Exception:
            admin.create_database(database, tenant=tenant)

    def ephemeral(self, settings: dict | None) -> Any:
        return self.chromadb.EphemeralClient(settings=self.settings(settings))

    def http(
        self,
        host: str,
        port: int,
        settings: dict | None,
        headers: dict | None,
        tenant: str | None = None,
        database: str | None = None,
    ) -> Any:
        # 0.4-0.5 clients send JSON bodies without a Content-Type; the FastAPI that resolves
        # today rejects them (measured: create_collection fails on 0.4.24 and 0.5.23)
        kwargs: dict = {
            "host": host,
            "port": port,
            "settings": self.settings(settings),
            "headers": {"Content-Type": "application/json", **(headers or {})},
        }
        kwargs.update({k: v for k, v in (("tenant", tenant), ("database", database)) if v is not None})
        return self.chromadb.HttpClient(**kwargs)

    def flush(self, client: Any) -> None:
        """Writes are durable on return from 0.4 on; nothing to do."""

    def close(self, client: Any) -> None:
        """Stop the client's system and forget it, so the path can be opened afresh.

        Releases keep one System per path in a class-level cache; a stopped
        system left there would be handed back to the next open of that path.
        Clients of other databases in the same store share that System, so
        the first of them to close stops it for all.
        """
        try:
            system = getattr(client, "_system", None)
        except KeyError:  # a property over that cache: another client of the store let it go already
            return
        if system is not None and hasattr(system, "stop"):
            system.stop()
        for klass in type(client).__mro__:
            cache = vars(klass).get("_identifer_to_system") or vars(klass).get("_identifier_to_system")
            if isinstance(cache, dict):
                for key in [k for k, v in cache.items() if v is system]:
                    del cache[key]

    def embedding_function(self) -> Any:
        return None

    def collection_names(self, client: Any) -> tuple[list, str]:
        listed = client.list_collections()
        kinds = {type(c).__name__ for c in listed}
        names = [c if isinstance(c, str) else c.name for c in listed]
        return names, (kinds.pop() if len(kinds) == 1 else ("empty" if not kinds else "mixed"))

    def get_collection(self, client: Any, name: str) -> Any:
        return client.get_collection(name=name, embedding_function=self.embedding_function())

    def create_collection(self, client: Any, name: str, metadata: dict | None, get_or_create: bool) -> Any:
        kwargs: dict = {"name": name, "embedding_function": self.embedding_function()}
        if metadata is not None:
            kwargs["metadata"] = metadata
        if get_or_create:
            return client.get_or_create_collection(**kwargs)
        return client.create_collection(**kwargs)


class RustFamily(SqliteFamily):
    """1.x: the Rust core behind the same Python API; the store stays SQLite + HNSW."""

    name = "rust"


class DuckdbParquetFamily(SqliteFamily):
    """0.3: DuckDB + Parquet, written to disk only by ``persist()``."""

    name = "duckdb-parquet"

    def persistent(
        self, path: str, settings: dict | None, tenant: str | None = None, database: str | None = None
    ) -> Any:
        if tenant is not None or database is not None:
            raise ValueError("0.3 has no tenants or databases")
        values = {"chroma_db_impl": "duckdb+parquet", "persist_directory": path}
        values.update(settings or {})
        return self.chromadb.Client(self.settings(values))

    def ephemeral(self, settings: dict | None) -> Any:
        return self.chromadb.Client(self.settings(settings))

    def http(
        self,
        host: str,
        port: int,
        settings: dict | None,
        headers: dict | None,
        tenant: str | None = None,
        database: str | None = None,
    ) -> Any:
        if tenant is not None or database is not None:
            raise ValueError("0.3 has no tenants or databases")
        values = {"chroma_api_impl": "rest", "chroma_server_host": host, "chroma_server_http_port": str(port)}
        values.update(settings or {})
        return self.chromadb.Client(self.settings(values))

    def settings(self, extra: dict | None = None) -> Any:
        values = {"anonymized_telemetry": False}
        values.update(extra or {})
        return self.Settings(**values)

    def flush(self, client: Any) -> None:
        settings = getattr(getattr(client, "_system", None), "settings", None)
        if (
            hasattr(client, "persist")
            and getattr(settings, "persist_directory", None)
            and getattr(settings, "chroma_db_impl", "") == "duckdb+parquet"
        ):
            client.persist()  # an in-memory 0.3 client refuses persist()

    def close(self, client: Any) -> None:
        self.flush(client)

    def embedding_function(self) -> Any:
        # 0.3 replaces None with a sentence-transformers model: hand it one that refuses
        return _never_embed


FAMILIES = {cls.name: cls for cls in (DuckdbParquetFamily, SqliteFamily, RustFamily)}


def load(name: str) -> Any:
    import chromadb  # type: ignore

    return FAMILIES[name](chromadb)
