"""What a name in the user's module holds, as far as a scan can tell without running it.

Flow-insensitive and per module: ``import chromadb as c``, ``from chromadb import Client``,
``client = c.PersistentClient(...)``, ``col = client.get_collection(...)``, ``self.col = ...``,
``for item in client.list_collections()`` and parameters annotated with chromadb's types bind a
dotted name to a kind. Rules that need a receiver (``client.persist()``) only match tracked
names, which is what keeps ``vectordb.persist()`` of another library out of the findings.

Why scopes: plain names are bound per function (and per comprehension), as Python binds them, so
a ``name`` one method takes from ``list_collections()`` says nothing about another method's
``name`` parameter. Attribute chains (``self._client``) are module-wide: a class sets them in one
method and uses them in the others. Wrapper code is followed too: a ``@property`` (or a method)
returning a client or collection, a class-level annotation, and an object handed to ``__init__``
and kept on ``self`` whose uses in the module are chromadb-only methods (see EVIDENCE).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Optional

CLIENT_CTORS = {"Client", "PersistentClient", "EphemeralClient", "HttpClient", "CloudClient", "AsyncHttpClient"}
COLLECTION_GETTERS = {"get_collection", "create_collection", "get_or_create_collection"}
RESULT_CALLS = {"get", "query", "peek"}
CLIENT_TYPES = {"ClientAPI", "API", "AsyncClientAPI", "ServerAPI"}
COLLECTION_TYPES = {"Collection", "AsyncCollection"}
# unannotated parameters with these names hold a client / collection, in a module that imports chroma
PARAMETER_NAMES = {
    "client": "client",
    "chroma_client": "client",
    "chromadb_client": "client",
    "collection": "collection",
    "chroma_collection": "collection",
    "coll": "collection",
}
# An object handed to __init__ in a module that may not import chromadb is a client / collection only
# when the module calls on it something no other common library has. list_collections, get_collection,
# create_collection, delete_collection are NOT evidence: pymongo's Database, pymilvus and qdrant have them.
CLIENT_EVIDENCE_METHODS = {"get_or_create_collection", "count_collections", "get_max_batch_size"}
CLIENT_EVIDENCE_KEYWORDS = {"embedding_function"}  # on get/create_collection: chromadb's signature
COLLECTION_EVIDENCE_METHODS = {"peek"}
COLLECTION_EVIDENCE_KEYWORDS = {"query_embeddings", "query_texts", "where_document", "n_results"}
PROPERTY_DECORATORS = {"property", "cached_property"}

SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
LEARNED = (
    ast.Import,
    ast.ImportFrom,
    ast.Assign,
    ast.AnnAssign,
    ast.For,
    ast.AsyncFor,
    ast.comprehension,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.With,
    ast.AsyncWith,
    ast.ClassDef,
)
_SKIP_FIELDS = {
    "ctx",
    "type_comment",
    "id",
    "attr",
    "arg",
    "name",
    "module",
    "level",
    "kind",
    "conversion",
    "is_async",
    "simple",
    "names",
    "type_ignores",
}
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


class Known(ast.expr):
    """A receiver whose kind was decided elsewhere (inside a helper function the code calls)."""

    _fields = ()

    def __init__(self, kind: Optional[str]) -> None:
        super().__init__()
        self.kind = kind


def walk(tree: ast.AST, keep: frozenset) -> tuple[list[ast.AST], list[int], dict[int, int]]:
    """Every node whose type is in ``keep``, in source order (pre-order), with the id of the scope
    it is in (0 = the module) and each scope's parent. Iterative, and it does not descend into
    ``ctx`` singletons or string fields, which is most of the cost of ``ast.walk``."""
    nodes: list[ast.AST] = []
    scopes: list[int] = []
    parents: dict[int, int] = {}
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    pop, push = stack.pop, stack.append
    fields_of = _CHILD_FIELDS
    AST = ast.AST
    while stack:
        node, scope = pop()
        t = type(node)
        if t in keep:
            nodes.append(node)
            scopes.append(scope)
        if t in _SCOPE_TYPES:
            parents[id(node)] = scope
            scope = id(node)
        fields = fields_of.get(t)
        if fields is None:
            fields = fields_of[t] = tuple(f for f in t._fields if f not in _SKIP_FIELDS)
        for f in reversed(fields):
            v = getattr(node, f, None)
            if type(v) is list:
                for x in reversed(v):
                    if isinstance(x, AST):
                        push((x, scope))
            elif isinstance(v, AST):
                push((v, scope))
    return nodes, scopes, parents


_SCOPE_TYPES = frozenset(SCOPES)


def dotted(node: ast.AST) -> Optional[str]:
    """``a.b.c`` for a chain of names and attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _imports_chroma(node: ast.Import | ast.ImportFrom) -> bool:
    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
    return any("chroma" in n.lower() for n in names)


def _decorated(node: ast.AST, names: set[str]) -> bool:
    for d in getattr(node, "decorator_list", ()):
        name = d.attr if isinstance(d, ast.Attribute) else d.id if isinstance(d, ast.Name) else None
        if name in names:
            return True
    return False


class Kinds:
    def __init__(self) -> None:
        self.attrs: dict[str, str] = {}  # dotted attribute chain -> kind (module-wide)
        self.local: dict[int, dict[str, Optional[str]]] = {}  # scope -> plain name -> kind (None: bound, unknown)
        self.lits: dict[int, dict[str, ast.AST]] = {}  # scope -> name -> the dict/list literal assigned
        self.added: dict[tuple[int, str], list[tuple[str, ast.AST]]] = {}  # kwargs["where"] = ... per scope
        self.parents: dict[int, int] = {}
        self.scope = 0  # the scope ``of`` looks names up from
        self.chroma = False  # the module imports chromadb (or an integration)
        self.returns: dict[int, list[ast.AST]] = {}  # function -> the values it returns
        self.methods: dict[int, ast.ClassDef] = {}  # method -> its class
        self.class_level: set[int] = set()  # statements directly in a class body
        self.functions: dict[int, ast.AST] = {}  # scope id -> its function node
        self.self_uses: dict[str, list[ast.Call]] = {}  # "self.x" -> calls made on it

    # -- names -----------------------------------------------------------------------------------
    def _lookup(self, name: str) -> Optional[str]:
        s = self.scope
        while True:
            d = self.local.get(s)
            if d is not None and name in d:
                return d[name]
            if not s:
                return None
            s = self.parents.get(s, 0)

    def _home(self, name: str) -> int:
        """The scope ``name`` is bound in, seen from the current one (0: the module, or unbound)."""
        s = self.scope
        while s and name not in self.local.get(s, ()):
            s = self.parents.get(s, 0)
        return s

    def literal(self, name: str) -> Optional[ast.AST]:
        """The dict/list literal ``name`` holds in the current scope (or an enclosing one)."""
        return self.lits.get(self._home(name), {}).get(name)

    @property
    def literals(self) -> dict[str, ast.AST]:
        """Module-level literals (kept for callers of the flat view)."""
        return self.lits.get(0, {})

    # -- what an expression is ---------------------------------------------------------------
    def of(self, node: ast.AST) -> Optional[str]:
        t = type(node)
        if t is ast.Name:
            return self._lookup(node.id)
        if t is ast.Attribute:
            name = dotted(node)
            if name is not None:
                kind = self.attrs.get(name)
                if kind is not None:
                    return kind
            base = self.of(node.value)
            if base == "chromadb":  # chromadb.PersistentClient, chromadb.config, chromadb.config.Settings
                return (
                    "client-ctor"
                    if node.attr in CLIENT_CTORS
                    else "settings-ctor"
                    if node.attr == "Settings"
                    else "collection-type"
                    if node.attr in COLLECTION_TYPES
                    else "client-type"
                    if node.attr in CLIENT_TYPES
                    else "chromadb"
                )
            return None
        if t is ast.Call:
            func = node.func
            if isinstance(func, ast.Attribute):
                base = self.of(func.value)
                if base == "client":
                    return (
                        "collection"
                        if func.attr in COLLECTION_GETTERS
                        else "listing"
                        if func.attr == "list_collections"
                        else None
                    )
                if base == "collection" and func.attr in RESULT_CALLS:
                    return "result"
            kind = self.of(func) or ""
            return (
                "client" if kind == "client-ctor" else kind[len("returns:") :] if kind.startswith("returns:") else None
            )
        if t is ast.Subscript and self.of(node.value) == "listing":
            return "listed"
        if t is ast.Await:
            return self.of(node.value)
        if t is ast.BoolOp:  # client or chromadb.PersistentClient(...)
            return next((k for k in map(self.of, node.values) if k), None)
        if t is ast.IfExp:
            return self.of(node.body) or self.of(node.orelse)
        if t is Known:
            return node.kind
        return None

    def annotation(self, node: Optional[ast.AST]) -> Optional[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(node, ast.Subscript):  # Optional[Collection]
            return self.annotation(node.slice)
        if isinstance(node, ast.BinOp):  # Collection | None
            return self.annotation(node.left) or self.annotation(node.right)
        kind = self.of(node) if node is not None else None
        return {"collection-type": "collection", "client-type": "client"}.get(kind or "")

    # -- keywords, with ``**dict`` unpacked ------------------------------------------------------
    def keywords(self, call: ast.Call) -> list[ast.keyword]:
        """The call's keywords, with ``**{...}``, ``**kwargs`` (a dict literal or ``dict(...)`` bound
        in scope, plus ``kwargs["k"] = v`` assignments to it) and ``**dict(...)`` spelled out."""
        kws = call.keywords
        if all(k.arg is not None for k in kws):
            return kws
        out = []
        for kw in kws:
            if kw.arg is not None:
                out.append(kw)
            else:
                out.extend(self._unpacked(kw.value))
        return out

    def _unpacked(self, value: ast.AST) -> Iterator[ast.keyword]:
        extra: list[tuple[str, ast.AST]] = []
        if isinstance(value, ast.Name):
            home = self._home(value.id)
            extra = self.added.get((home, value.id), [])
            value = self.lits.get(home, {}).get(value.id)
        pairs: list[tuple[str, ast.AST]] = []
        if isinstance(value, ast.Dict):
            pairs = [
                (k.value, v)
                for k, v in zip(value.keys, value.values)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            ]
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
            pairs = [(k.arg, k.value) for k in value.keywords if k.arg]
        for key, v in pairs + extra:
            kw = ast.keyword(arg=key, value=v)
            kw.lineno, kw.col_offset = v.lineno, v.col_offset
            yield kw

    # -- binding ---------------------------------------------------------------------------------
    def bind(self, target: ast.AST, kind: Optional[str], scope: Optional[int] = None) -> None:
        if isinstance(target, ast.Name):
            d = self.local.setdefault(self.scope if scope is None else scope, {})
            if kind is not None or target.id not in d:  # a known kind wins over an unknown one in a scope
                d[target.id] = kind
            return
        name = dotted(target)
        if name is not None and kind is not None:
            self.attrs[name] = kind

    def learn(self, nodes: list[ast.AST], scopes: list[int], parents: dict[int, int]) -> None:
        """Three passes over the module's binding nodes, so a binding made below its first use (a
        property defined after the method using it, returning a client set up further down) counts."""
        self.parents = parents
        pairs = [(n, s) for n, s in zip(nodes, scopes) if type(n) in _LEARNED_TYPES]
        self.chroma = any(_imports_chroma(n) for n, _ in pairs if isinstance(n, (ast.Import, ast.ImportFrom)))
        for n, s in zip(nodes, scopes):
            t = type(n)
            if t is ast.Return and n.value is not None and s:
                self.returns.setdefault(s, []).append(n.value)
            elif (
                t is ast.Call
                and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Attribute)
                and isinstance(n.func.value.value, ast.Name)
                and n.func.value.value.id == "self"
            ):
                self.self_uses.setdefault("self." + n.func.value.attr, []).append(n)
        for n, _s in pairs:
            if type(n) is ast.ClassDef:
                for item in n.body:
                    self.class_level.add(id(item))
                    if isinstance(item, FUNCTIONS):
                        self.methods[id(item)] = n
            elif isinstance(n, FUNCTIONS):
                self.functions[id(n)] = n
        self._injected(pairs)
        for _ in range(3):
            for n, s in pairs:
                self.scope = s
                self._learn(n, s)
        self.scope = 0

    def _learn(self, node: ast.AST, scope: int) -> None:
        t = type(node)
        if t is ast.Import:
            for alias in node.names:
                if alias.name == "chromadb" or alias.name.startswith("chromadb."):
                    self.bind(ast.Name(alias.asname or "chromadb"), "chromadb")
        elif t is ast.ImportFrom and (node.module or "").split(".")[0] == "chromadb":
            for alias in node.names:
                kind = (
                    "client-ctor"
                    if alias.name in CLIENT_CTORS
                    else "settings-ctor"
                    if alias.name == "Settings"
                    else "collection-type"
                    if alias.name in COLLECTION_TYPES
                    else "client-type"
                    if alias.name in CLIENT_TYPES
                    else None
                )
                if kind:
                    self.bind(ast.Name(alias.asname or alias.name), kind)
        elif t is ast.Assign or t is ast.AnnAssign:
            targets = node.targets if t is ast.Assign else [node.target]
            value = node.value
            kind = self.of(value) if value is not None else None
            if kind is None and t is ast.AnnAssign:
                kind = self.annotation(node.annotation)
            for tg in targets:
                self.bind(tg, kind)
                if isinstance(tg, ast.Name) and (
                    isinstance(value, (ast.Dict, ast.List))
                    or (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict")
                ):
                    self.lits.setdefault(scope, {})[tg.id] = value
                elif isinstance(tg, ast.Name) and id(node) in self.class_level and kind is not None:
                    self.attrs["self." + tg.id] = kind  # a class-level `_collection: Collection`
                elif (
                    isinstance(tg, ast.Subscript)
                    and isinstance(tg.value, ast.Name)
                    and isinstance(tg.slice, ast.Constant)
                    and isinstance(tg.slice.value, str)
                ):
                    added = self.added.setdefault((scope, tg.value.id), [])
                    if not any(v is value for _, v in added):
                        added.append((tg.slice.value, value))
        elif t is ast.For or t is ast.AsyncFor or t is ast.comprehension:
            kind = "listed" if self.of(node.iter) == "listing" else None
            self.bind(node.target, kind)
        elif t is ast.FunctionDef or t is ast.AsyncFunctionDef:
            self._function(node, scope)
        elif t is ast.With or t is ast.AsyncWith:
            for item in node.items:
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, self.of(item.context_expr))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: int) -> None:
        own = id(node)
        args = node.args
        for arg in args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]:
            self.scope = scope  # annotations are read where the function is defined
            kind = self.annotation(arg.annotation)
            if kind is None and arg.annotation is None and self.chroma:
                kind = PARAMETER_NAMES.get(arg.arg)
            self.bind(ast.Name(arg.arg), kind, own)
        self.scope = own
        returned = {self.of(value) for value in self.returns.get(own, ())}
        self.scope = scope
        returned.discard(None)
        if len(returned) != 1 or not returned <= {"client", "collection", "listing"}:
            return
        kind = returned.pop()
        if id(node) in self.methods:  # self.collection (a property) / self._get_collection() (a method)
            if _decorated(node, PROPERTY_DECORATORS):
                self.attrs["self." + node.name] = kind
            else:
                self.attrs["self." + node.name] = self.attrs["cls." + node.name] = f"returns:{kind}"
        elif kind != "listing":
            self.bind(ast.Name(node.name), f"returns:{kind}")

    def _injected(self, pairs: list[tuple[ast.AST, int]]) -> None:
        """``def __init__(self, client): self._client = client``: the attribute is a client (or a
        collection) when the module calls chromadb-only methods on it, importing chromadb or not."""
        for n, _ in pairs:
            if type(n) is not ast.FunctionDef or n.name != "__init__" or id(n) not in self.methods:
                continue
            params = {a.arg for a in n.args.posonlyargs[1:] + n.args.args[1:] + n.args.kwonlyargs}
            for stmt in n.body:
                if not (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name) and stmt.value.id in params):
                    continue
                for tg in stmt.targets:
                    name = dotted(tg)
                    if name and name.startswith("self.") and name.count(".") == 1:
                        kind = self._evidence(self.self_uses.get(name, ()))
                        if kind:
                            self.attrs[name] = kind

    @staticmethod
    def _evidence(calls: list[ast.Call] | tuple) -> Optional[str]:
        for call in calls:
            method = call.func.attr
            given = {k.arg for k in call.keywords}
            if method in CLIENT_EVIDENCE_METHODS or (method in COLLECTION_GETTERS and given & CLIENT_EVIDENCE_KEYWORDS):
                return "client"
            if method in COLLECTION_EVIDENCE_METHODS or given & COLLECTION_EVIDENCE_KEYWORDS:
                return "collection"
        return None


_LEARNED_TYPES = frozenset(LEARNED)
