"""Match the rules (usercode/scan/rules.py) against one module's syntax tree.

Each match is a ``Match``: where, which rule, and the measured keys the code depends on. Whether
the upgrade crosses it is decided later (usercode/scan/scope.py), so one walk serves every --from/--to pair.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable, Optional

from pytest_chroma_compat.usercode.scan.kinds import Kinds, Known, walk
from pytest_chroma_compat.usercode.scan.rules import Rule

BOOL_CONTEXTS = (ast.If, ast.While, ast.IfExp, ast.Assert)
FILTER_CALLS = {"get", "query", "delete", "update", "similarity_search", "max_marginal_relevance_search"}
# what the project's own helpers are followed for: a parameter handed on as one of these keywords
FORWARDED = ("where", "where_document", "limit", "offset")
# the rules a call through a helper is matched against: those that read the literal the caller passes
# (a `call` rule already matched the helper's own call, whose keyword is there by name)
THROUGH_HELPERS = ("filter", "empty-argument")


@dataclass(frozen=True)
class Match:
    line: int
    column: int  # 1-based
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
        given = {k.arg for k in kinds.keywords(node)}
        wanted = set(rule.keywords)
        if not wanted or (given & wanted if rule.any_keyword else wanted <= given):
            if _value_ok(kinds, node, rule):
                yield _at(node, rule, call=name)


def _value_ok(kinds: Kinds, node: ast.Call, rule: Rule) -> bool:
    """The rule's `values` / `except_values` / `dict_keys` (usercode/scan/rules.py) on the keywords it names: a
    rule about ``embedding_function=None`` must not match ``embedding_function=my_ef``."""
    if not (rule.values or rule.except_values or rule.dict_keys):
        return True
    for kw in kinds.keywords(node):
        if kw.arg not in rule.keywords:
            continue
        text = ast.unparse(kw.value)
        if rule.values and text not in rule.values or text in rule.except_values:
            continue
        if rule.dict_keys:
            value = _literal(kinds, kw.value)
            if not (
                isinstance(value, ast.Dict)
                and any(isinstance(k, ast.Constant) and k.value in rule.dict_keys for k in value.keys)
            ):
                continue
        return True
    return False


def _attribute(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Load)
        and ("*" in rule.names or node.attr in rule.names)
        and _receiver_ok(kinds, node.value, rule.on)
    ):
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
        return kinds.literal(node.id)
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
    for kw in kinds.keywords(node):
        if kw.arg in rule.keywords:
            for key, op in _operators(_literal(kinds, kw.value)):
                if op in rule.operators:
                    yield _at(key, rule, operator=op, keyword=kw.arg)


def _empty(kinds: Kinds, node: ast.AST, rule: Rule) -> Iterator[Match]:
    name = _method(node)
    if name not in rule.names or not _receiver_ok(kinds, node.func.value, rule.on):
        return
    for kw in kinds.keywords(node):
        value = kw.value
        empty = (
            (isinstance(value, ast.Dict) and not value.keys)
            or (isinstance(value, ast.List) and not value.elts)
            or (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in ("dict", "list")
                and not value.args
                and not value.keywords
            )
        )
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
        if _keyed(expr, rule.names) and (
            kinds.chroma or kinds.of(getattr(expr, "value", None) or expr.func.value) == "result"
        ):
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
    for kw in kinds.keywords(node):
        if kw.arg not in rule.keywords:
            continue
        value = _literal(kinds, kw.value)
        dicts = (
            value.elts
            if isinstance(value, (ast.List, ast.Tuple))
            else [value.elt]
            if isinstance(value, ast.ListComp)
            else [value]
        )
        for d in dicts:
            if isinstance(d, ast.Dict):
                for v in d.values:
                    if isinstance(v, ast.Constant) and v.value is None:
                        yield _at(v, rule, call=name)


MATCHERS: dict[str, Callable[[Kinds, ast.AST, Rule], Iterator[Match]]] = {
    "call": _call,
    "attribute": _attribute,
    "keyword": _keyword,
    "filter": _filter,
    "empty-argument": _empty,
    "truthiness": _truthiness,
    "method-param": _method_param,
    "import": _import,
    "name-use": _name_use,
    "metadata-none": _metadata_none,
}


# the node types each kind of rule can match: the walk asks only those rules about a node
NODE_TYPES: dict[str, tuple[type, ...]] = {
    "call": (ast.Call,),
    "keyword": (ast.Call,),
    "filter": (ast.Call,),
    "empty-argument": (ast.Call,),
    "metadata-none": (ast.Call,),
    "attribute": (ast.Attribute,),
    "method-param": (ast.ClassDef,),
    "import": (ast.Import, ast.ImportFrom),
    "name-use": (ast.Call, ast.Compare),
    "truthiness": (*BOOL_CONTEXTS, ast.UnaryOp, ast.BoolOp, ast.Call, ast.comprehension),
}


def _guarded(nodes: list[ast.AST]) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of every ``if hasattr(x, "name"):`` body: code that already
    checks for the attribute is written for both sides of the change."""
    out = []
    for node in nodes:
        if isinstance(node, ast.If):
            for call in ast.walk(node.test):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id == "hasattr"
                    and len(call.args) == 2
                    and isinstance(call.args[1], ast.Constant)
                ):
                    last = max(getattr(n, "end_lineno", 0) or 0 for n in node.body)
                    out.append((str(call.args[1].value), node.body[0].lineno, last))
    return out


@dataclass(frozen=True)
class Helper:
    """One of the project's own functions that hands a parameter on to a chromadb call."""

    params: tuple[str, ...]  # positional parameters, ``self`` left out for a method
    names: frozenset  # every parameter name
    method: str  # the chromadb call it makes (get, query, delete, ...)
    kind: Optional[str]  # what the receiver of that call is, seen inside the helper
    mapping: tuple[tuple[str, str], ...]  # helper parameter -> chromadb keyword
    passthrough: bool  # ``**kwargs`` handed on whole


def _helpers(kinds: Kinds, calls: list[tuple[ast.Call, int]]) -> dict[str, list[Helper]]:
    """``def search(self, flt=None): return self._col.query(..., where=flt)``: keyed ``self.search``
    (a method) or ``search`` (a function). One level: a helper calling a helper is not followed."""
    out: dict[str, list[Helper]] = {}
    for call, scope in calls:
        fn = kinds.functions.get(scope)
        if fn is None or _method(call) not in FILTER_CALLS:
            continue
        kinds.scope = scope
        if not _receiver_ok(kinds, call.func.value, "any"):
            continue
        a = fn.args
        positional = [x.arg for x in a.posonlyargs + a.args]
        method = id(fn) in kinds.methods and not any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list
        )
        if method:
            positional = positional[1:]
        names = frozenset(positional + [x.arg for x in a.kwonlyargs])
        mapping = tuple(
            (kw.value.id, kw.arg)
            for kw in kinds.keywords(call)
            if kw.arg in FORWARDED and isinstance(kw.value, ast.Name) and kw.value.id in names
        )
        passthrough = a.kwarg is not None and any(
            kw.arg is None and isinstance(kw.value, ast.Name) and kw.value.id == a.kwarg.arg for kw in call.keywords
        )
        if mapping or passthrough:
            key = f"self.{fn.name}" if method else fn.name
            out.setdefault(key, []).append(
                Helper(tuple(positional), names, call.func.attr, kinds.of(call.func.value), mapping, passthrough)
            )
    kinds.scope = 0
    return out


def _through(kinds: Kinds, node: ast.Call, helpers: dict[str, list[Helper]]) -> Iterator[ast.Call]:
    """The chromadb calls a call to a helper makes, with the caller's arguments in place of the
    helper's parameters (so a literal filter passed to the helper is matched where it is written)."""
    func = node.func
    key = (
        func.id
        if isinstance(func, ast.Name)
        else f"self.{func.attr}"
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("self", "cls")
        else None
    )
    for h in helpers.get(key or "", ()):
        given = [(p, v) for p, v in zip(h.params, node.args) if not isinstance(v, ast.Starred)]
        given += [(kw.arg, kw.value) for kw in kinds.keywords(node)]
        mapping = dict(h.mapping)
        kws = []
        for param, value in given:
            arg = mapping.get(param) or (
                param if h.passthrough and param not in h.names and param in FORWARDED else None
            )
            if arg:
                kw = ast.keyword(arg=arg, value=value)
                kw.lineno, kw.col_offset = value.lineno, value.col_offset
                kws.append(kw)
        if kws:
            synth = ast.Call(
                func=ast.Attribute(value=Known(h.kind), attr=h.method, ctx=ast.Load()), args=[], keywords=kws
            )
            synth.lineno, synth.col_offset = node.lineno, node.col_offset
            yield synth


_LEARN_TYPES = (
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
    ast.Return,
    ast.Call,
    ast.If,
)


#: calls that hand chromadb text to embed, by the keyword that carries it and the one that would spare it
TEXT_CALLS = {
    "add": ("documents", "embeddings"),
    "upsert": ("documents", "embeddings"),
    "update": ("documents", "embeddings"),
    "query": ("query_texts", "query_embeddings"),
}


def _text_calls(calls: list) -> bool:
    """Whether the module makes a call that needs chromadb to embed text (a rule's ``text_calls``)."""
    for node, _ in calls:
        wanted = TEXT_CALLS.get(_method(node) or "")
        if wanted:
            given = {k.arg for k in node.keywords}
            if wanted[0] in given and wanted[1] not in given and None not in given:  # no **kwargs to hide one
                return True
    return False


def find(tree: ast.AST, rules: tuple[Rule, ...]) -> list[Match]:
    by_type: dict[type, list[Rule]] = {}
    for r in rules:
        for t in NODE_TYPES[r.kind]:
            by_type.setdefault(t, []).append(r)
    nodes, scopes, parents = walk(tree, frozenset(by_type) | frozenset(_LEARN_TYPES))
    kinds = Kinds()
    kinds.learn(nodes, scopes, parents)
    calls = [(n, s) for n, s in zip(nodes, scopes) if type(n) is ast.Call]
    hasattr_used = any(type(n.func) is ast.Name and n.func.id == "hasattr" for n, _ in calls)
    guarded = _guarded(nodes) if hasattr_used else []
    helpers = _helpers(kinds, calls)
    through = [r for r in by_type.get(ast.Call, ()) if r.kind in THROUGH_HELPERS] if helpers else []
    embeds_text = any(r.text_calls for r in rules) and kinds.chroma and _text_calls(calls)
    seen: set[tuple[int, str]] = set()
    out = []
    for node, scope in zip(nodes, scopes):
        matching = by_type.get(type(node))
        if not matching:
            continue
        kinds.scope = scope
        found = [m for rule in matching for m in MATCHERS[rule.kind](kinds, node, rule)]
        if through and type(node) is ast.Call:
            found += [
                m
                for synth in _through(kinds, node, helpers)
                for rule in through
                for m in MATCHERS[rule.kind](kinds, synth, rule)
            ]
        for m in found:
            name = getattr(node, "attr", None) or _method(node)
            if name and any(g == name and a <= m.line <= b for g, a, b in guarded):
                continue
            if m.rule.text_calls and not embeds_text:  # explicit embeddings everywhere: unaffected
                continue
            if (m.line, m.rule.contract_id) not in seen:  # one finding per line and contract
                seen.add((m.line, m.rule.contract_id))
                out.append(m)
    return sorted(out, key=lambda m: (m.line, m.column, m.rule.contract_id))
