"""Match the rules (rules.py) against one module's syntax tree.

Each match is a ``Match``: where, which rule, and the measured keys the code depends on. Whether
the upgrade crosses it is decided later (scope.py), so one walk serves every --from/--to pair.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from .kinds import Kinds
from .rules import Rule

BOOL_CONTEXTS = (ast.If, ast.While, ast.IfExp, ast.Assert)
FILTER_CALLS = {"get", "query", "delete", "update", "similarity_search", "max_marginal_relevance_search"}


@dataclass(frozen=True)
class Match:
    line: int
    column: int          # 1-based
    rule: Rule
    keys: tuple[str, ...]


def _at(node: ast.AST, rule: Rule, **fill: str) -> Match:
    return Match(node.lineno, node.col_offset + 1, rule, rule.keys(**fill))


def _receiver_ok(kinds: Kinds, node: ast.AST, on: str) -> bool:
    """``any``: a tracked chromadb object, or any receiver in a module that imports chroma."""
    kind = kinds.of(node)
    return kind == on or (on == "any" and (kinds.chroma or kind in ("client", "collection")))


def _method(node: ast.AST) -> Optional[str]:
    return node.func.attr if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else None


def _call(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    name = _method(node)
    if name in rule.names and _receiver_ok(kinds, node.func.value, rule.on):
        given = {k.arg for k in node.keywords}
        wanted = set(rule.keywords)
        if not wanted or (given & wanted if rule.any_keyword else wanted <= given):
            yield _at(node, rule, call=name)


def _attribute(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) \
            and ("*" in rule.names or node.attr in rule.names) and _receiver_ok(kinds, node.value, rule.on):
        yield _at(node, rule)


def _keyword(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    if not isinstance(node, ast.Call):
        return
    func = node.func
    named = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if named in rule.names and kinds.of(func) == "settings-ctor":
        for kw in node.keywords:
            if kw.arg in rule.keywords:
                yield _at(kw, rule, keyword=kw.arg)


def _literal(kinds: Kinds, node: ast.AST) -> Optional[ast.AST]:
    if isinstance(node, ast.Name):
        return kinds.literals.get(node.id)
    return node


def _operators(node: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Every "$op" key in a literal filter, at any depth ($and/$or lists, nested dicts)."""
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith("$"):
                yield key, key.value
            if value is not None:
                yield from _operators(value)
    elif isinstance(node, (ast.List, ast.Tuple)):
        for item in node.elts:
            yield from _operators(item)


def _filter(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    if _method(node) not in FILTER_CALLS or not _receiver_ok(kinds, node.func.value, "any"):
        return
    for kw in node.keywords:
        if kw.arg in rule.keywords:
            for key, op in _operators(_literal(kinds, kw.value)):
                if op in rule.operators:
                    yield _at(key, rule, operator=op, keyword=kw.arg)


def _empty(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    name = _method(node)
    if name not in rule.names or not _receiver_ok(kinds, node.func.value, rule.on):
        return
    for kw in node.keywords:
        value = kw.value
        empty = (isinstance(value, ast.Dict) and not value.keys) or (isinstance(value, ast.List) and not value.elts) \
            or (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ("dict", "list")
                and not value.args and not value.keywords)
        if kw.arg in rule.keywords and empty:
            is_dict = isinstance(value, ast.Dict) or (isinstance(value, ast.Call) and value.func.id == "dict")
            literal = "{}" if is_dict else "[]"
            yield _at(kw.value, rule, call=name, keyword=kw.arg, literal=f"{kw.arg}={literal}")


def _keyed(node: ast.AST, names: tuple[str, ...]) -> bool:
    """x["embeddings"] or x.get("embeddings")."""
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and key.value in names
    if _method(node) == "get" and node.args:
        return isinstance(node.args[0], ast.Constant) and node.args[0].value in names
    return False


def _truthiness(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    tested: list[ast.AST] = []
    if isinstance(node, BOOL_CONTEXTS):
        tested.append(node.test)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        tested.append(node.operand)
    elif isinstance(node, ast.BoolOp):
        tested.extend(node.values)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "bool" and node.args:
        tested.append(node.args[0])
    elif isinstance(node, ast.comprehension):
        tested.extend(node.ifs)
    for expr in tested:  # any receiver in a module that uses chroma; a tracked query/get result elsewhere
        if _keyed(expr, rule.names) and (kinds.chroma or kinds.of(getattr(expr, "value", None) or expr.func.value)
                                         == "result"):
            yield _at(expr, rule)


def _method_param(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    if isinstance(node, ast.ClassDef):
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in rule.names:
                for arg in (item.args.posonlyargs + item.args.args)[1:2]:
                    if arg.arg in rule.keywords:
                        yield _at(arg, rule, keyword=arg.arg)


def _import(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    modules: list[str] = []
    if isinstance(node, ast.Import):
        modules = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    if any(m == n or m.startswith(n + ".") for m in modules for n in rule.names):
        yield _at(node, rule)


def _name_use(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    name = _method(node)
    if name in rule.names and kinds.of(node.func.value) == "client":
        given = list(node.args[:1]) + [k.value for k in node.keywords if k.arg == "name"]
        for arg in given:
            if kinds.of(arg) == rule.on:
                yield _at(arg, rule)
    elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
        for op, right in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)) and kinds.of(right) == "listing":
                yield _at(node, rule)


def _metadata_none(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    name = _method(node)
    if name not in rule.names or not _receiver_ok(kinds, node.func.value, rule.on):
        return
    for kw in node.keywords:
        if kw.arg not in rule.keywords:
            continue
        value = _literal(kinds, kw.value)
        dicts = value.elts if isinstance(value, (ast.List, ast.Tuple)) else \
            [value.elt] if isinstance(value, ast.ListComp) else [value]
        for d in dicts:
            if isinstance(d, ast.Dict):
                for v in d.values:
                    if isinstance(v, ast.Constant) and v.value is None:
                        yield _at(v, rule, call=name)


MATCHERS: dict[str, Callable[[Kinds, ast.AST, Rule], Iterator[Match]]] = {
    "call": _call, "attribute": _attribute, "keyword": _keyword, "filter": _filter, "empty-argument": _empty,
    "truthiness": _truthiness, "method-param": _method_param, "import": _import, "name-use": _name_use,
    "metadata-none": _metadata_none,
}


# the node types each kind of rule can match: the walk asks only those rules about a node
NODE_TYPES: dict[str, tuple[type, ...]] = {
    "call": (ast.Call,), "keyword": (ast.Call,), "filter": (ast.Call,), "empty-argument": (ast.Call,),
    "metadata-none": (ast.Call,), "attribute": (ast.Attribute,), "method-param": (ast.ClassDef,),
    "import": (ast.Import, ast.ImportFrom), "name-use": (ast.Call, ast.Compare),
    "truthiness": (*BOOL_CONTEXTS, ast.UnaryOp, ast.BoolOp, ast.Call, ast.comprehension),
}


def _guarded(nodes: list[ast.AST]) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of every ``if hasattr(x, "name"):`` body: code that already
    checks for the attribute is written for both sides of the change."""
    out = []
    for node in nodes:
        if isinstance(node, ast.If):
            for call in ast.walk(node.test):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "hasattr" \
                        and len(call.args) == 2 and isinstance(call.args[1], ast.Constant):
                    last = max(getattr(n, "end_lineno", 0) or 0 for n in node.body)
                    out.append((str(call.args[1].value), node.body[0].lineno, last))
    return out


def find(tree: ast.AST, rules: tuple[Rule, ...]) -> list[Match]:
    nodes = list(ast.walk(tree))
    kinds = Kinds()
    kinds.learn(nodes)
    guarded = _guarded(nodes)
    by_type: dict[type, list[Rule]] = {}
    for r in rules:
        for t in NODE_TYPES[r.kind]:
            by_type.setdefault(t, []).append(r)
    seen: set[tuple[int, str]] = set()
    out = []
    for node in nodes:
        for rule in by_type.get(type(node), ()):
            for m in MATCHERS[rule.kind](kinds, node, rule):
                name = getattr(node, "attr", None) or _method(node)
                if name and any(g == name and a <= m.line <= b for g, a, b in guarded):
                    continue
                if (m.line, rule.contract_id) not in seen:  # one finding per line and contract
                    seen.add((m.line, rule.contract_id))
                    out.append(m)
    return sorted(out, key=lambda m: (m.line, m.column, m.rule.contract_id))
