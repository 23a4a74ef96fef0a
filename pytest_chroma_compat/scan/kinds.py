"""What a name in the user's module holds, as far as a scan can tell without running it.

Flow-insensitive and per module: ``import chromadb as c``, ``from chromadb import Client``,
``client = c.PersistentClient(...)``, ``col = client.get_collection(...)``, ``self.col = ...``,
``for item in client.list_collections()`` and parameters annotated with chromadb's types bind a
dotted name to a kind. Rules that need a receiver (``client.persist()``) only match tracked
names, which is what keeps ``vectordb.persist()`` of another library out of the findings.
"""

from __future__ import annotations

import ast
from typing import Optional

CLIENT_CTORS = {"Client", "PersistentClient", "EphemeralClient", "HttpClient", "CloudClient", "AsyncHttpClient"}
COLLECTION_GETTERS = {"get_collection", "create_collection", "get_or_create_collection"}
RESULT_CALLS = {"get", "query", "peek"}
CLIENT_TYPES = {"ClientAPI", "API", "AsyncClientAPI", "ServerAPI"}
COLLECTION_TYPES = {"Collection", "AsyncCollection"}
# unannotated parameters with these names hold a client / collection, in a module that imports chroma
PARAMETER_NAMES = {"client": "client", "chroma_client": "client", "chromadb_client": "client",
                   "collection": "collection", "chroma_collection": "collection", "coll": "collection"}


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


def _imports_chroma(node: "ast.Import | ast.ImportFrom") -> bool:
    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
    return any("chroma" in n.lower() for n in names)


class Kinds:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}          # dotted name -> kind
        self.literals: dict[str, ast.AST] = {}   # name -> the dict/list literal assigned to it
        self.chroma = False                      # the module imports chromadb (or an integration of it)
        self._returns: dict[int, list[ast.AST]] = {}  # function -> the values it returns

    # -- what an expression is ---------------------------------------------------------------
    def of(self, node: ast.AST) -> Optional[str]:
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = dotted(node)
            if name is not None and name in self.names:
                return self.names[name]
            if isinstance(node, ast.Attribute):
                base = self.of(node.value)
                if base == "chromadb":  # chromadb.PersistentClient, chromadb.config, chromadb.config.Settings
                    return ("client-ctor" if node.attr in CLIENT_CTORS else "settings-ctor"
                            if node.attr == "Settings" else "collection-type" if node.attr in COLLECTION_TYPES
                            else "client-type" if node.attr in CLIENT_TYPES else "chromadb")
            return None
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                base = self.of(func.value)
                if base == "client":
                    return ("collection" if func.attr in COLLECTION_GETTERS
                            else "listing" if func.attr == "list_collections" else None)
                if base == "collection" and func.attr in RESULT_CALLS:
                    return "result"
            kind = self.of(func) or ""
            return "client" if kind == "client-ctor" else kind[len("returns:"):] if kind.startswith("returns:") \
                else None
        if isinstance(node, ast.Subscript) and self.of(node.value) == "listing":
            return "listed"
        if isinstance(node, ast.Await):
            return self.of(node.value)
        if isinstance(node, ast.BoolOp):   # client or chromadb.PersistentClient(...)
            return next((k for k in map(self.of, node.values) if k), None)
        if isinstance(node, ast.IfExp):
            return self.of(node.body) or self.of(node.orelse)
        return None

    def annotation(self, node: Optional[ast.AST]) -> Optional[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(node, ast.Subscript):  # Optional[Collection]
            return self.annotation(node.slice)
        if isinstance(node, ast.BinOp):      # Collection | None
            return self.annotation(node.left) or self.annotation(node.right)
        kind = self.of(node) if node is not None else None
        return {"collection-type": "collection", "client-type": "client"}.get(kind or "")

    # -- binding ---------------------------------------------------------------------------------
    def bind(self, target: ast.AST, kind: Optional[str]) -> None:
        name = dotted(target)
        if name is not None and kind is not None:
            self.names[name] = kind

    def learn(self, nodes: list[ast.AST]) -> None:
        """Two passes over the module's nodes, so a binding made below its first use still counts."""
        self.chroma = any(_imports_chroma(n) for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom)))
        for _ in range(2):
            for node in nodes:
                self._learn(node)

    def _learn(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "chromadb" or alias.name.startswith("chromadb."):
                    self.names[alias.asname or "chromadb"] = "chromadb"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "chromadb":
            for alias in node.names:
                kind = ("client-ctor" if alias.name in CLIENT_CTORS else "settings-ctor" if alias.name == "Settings"
                        else "collection-type" if alias.name in COLLECTION_TYPES
                        else "client-type" if alias.name in CLIENT_TYPES else None)
                if kind:
                    self.names[alias.asname or alias.name] = kind
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            kind = self.of(value) if value is not None else None
            if kind is None and isinstance(node, ast.AnnAssign):
                kind = self.annotation(node.annotation)
            for t in targets:
                self.bind(t, kind)
                if isinstance(t, ast.Name) and isinstance(value, (ast.Dict, ast.List)):
                    self.literals[t.id] = value
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            if self.of(node.iter) == "listing":
                self.bind(node.target, "listed")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                kind = self.annotation(arg.annotation)
                if kind is None and arg.annotation is None and self.chroma:
                    kind = PARAMETER_NAMES.get(arg.arg)
                self.bind(ast.Name(arg.arg), kind)
            if id(node) not in self._returns:  # walked once, not once per pass
                self._returns[id(node)] = [n.value for n in ast.walk(node) if isinstance(n, ast.Return) and n.value]
            returned = {self.of(value) for value in self._returns[id(node)]}
            returned.discard(None)
            if len(returned) == 1 and returned <= {"client", "collection"}:
                self.names[node.name] = f"returns:{returned.pop()}"
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, self.of(item.context_expr))
