"""Tenants and databases: which ones a store holds, how their collections are named and picked.

From 0.4.15 a store can hold collections in several tenants and databases, and
a client sees only the one it was opened with. The harness opens one client per
(tenant, database) and names a collection outside the default database
``tenant/database:name``, so two ``orders`` collections never read as one.
"""

from __future__ import annotations

from collections.abc import Iterable

Scope = tuple  # (tenant, database); DEFAULT_SCOPE is what a client opens when given neither
DEFAULT_SCOPE: Scope = (None, None)
DEFAULT_DATABASE = "default_tenant/default_database"  # the default scope's name in a store's tables


def database_label(scope: Scope) -> str | None:
    """``tenant/database``, or None for the default database."""
    return None if scope == DEFAULT_SCOPE else f"{scope[0]}/{scope[1]}"


def scope_label(scope: Scope, name: str) -> str:
    """How a collection is named in reports: plain in the default database, else ``tenant/database:name``."""
    database = database_label(scope)
    return name if database is None else f"{database}:{name}"


def in_scope(collection: dict, scope: Scope) -> bool:
    """Whether an inventory collection lives in ``scope`` (stores before 0.4.15 have no databases)."""
    return (collection.get("database") or DEFAULT_DATABASE) == (database_label(scope) or DEFAULT_DATABASE)


def store_scopes(inventory: dict) -> tuple[list[Scope], list[str]]:
    """Every (tenant, database) that holds a collection, the default first; and the collections
    that belong to no database the store lists (damage: no client can open them).

    Why from the inventory: chromadb has no call that lists a store's tenants;
    the store's own ``databases`` table does.
    """
    by_label = {f"{d['tenant']}/{d['name']}": (d["tenant"], d["name"]) for d in inventory.get("databases") or []}
    others, unplaced = set(), []
    for c in inventory.get("collections") or []:
        database = c.get("database") or DEFAULT_DATABASE
        if database == DEFAULT_DATABASE:
            continue
        if database in by_label:
            others.add(by_label[database])
        else:
            unplaced.append(f"{database}:{c['name']}")
    return [DEFAULT_SCOPE, *sorted(others)], unplaced


def inventory_collections(inventory: dict, scopes: list[Scope]) -> list[tuple[Scope, str]]:
    """(scope, name) of every collection the inventory found in one of ``scopes``."""
    return [(scope, c["name"]) for c in inventory.get("collections") or [] for scope in scopes if in_scope(c, scope)]


class Selection:
    """The collections a user asked for (``--collection``).

    A plain name matches in every database; ``tenant/database:name`` in that
    one database, ``default_tenant/default_database:name`` included.
    """

    def __init__(self, names: Iterable[str] | str) -> None:
        self.names = {names} if isinstance(names, str) else set(names)

    def matches(self, scope: Scope, name: str) -> bool:
        return bool({name, f"{database_label(scope) or DEFAULT_DATABASE}:{name}"} & self.names)

    def unknown(self, found: list[tuple[Scope, str]]) -> list[str]:
        """Names that match no collection in ``found``."""
        return sorted(x for x in self.names if not any(Selection([x]).matches(sc, n) for sc, n in found))
