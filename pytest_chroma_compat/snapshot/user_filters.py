"""The user's own filters, asked of both releases on the user's store: ``validate --filters / --filters-from``.

Why: the filters validate picks itself are chosen to mean the same on every
release, so a filter the user's code relies on whose meaning changed is never
asked. A filter the old release refuses with an error and the new one answers
with ``[]`` is the worst of them: code that caught the error now silently gets
nothing ("now silently matches nothing", not safe). Each filter runs on the
release that wrote the store (copy A, its own format) and on the target (copy
B, after the upgrade), and each answer is judged against the records the source
reads back (``filter_oracle.record_matches``), on the passes the data checks
make (``data_checks.run_collection``).

Two sources: a JSON file (a list of ``{"where", "where_document", "collection"}``),
or the user's Python code, where the literal filters are found as the scan finds
them (the files ``scan.engine`` reads, the calls of ``scan.finder.FILTER_CALLS``):
dict literals, names bound to them, dicts under ``$and``/``$or``, and values
passed through the project's own helper
functions one level deep (``def search(col, where): return col.get(where=where)``
called with a literal). A filter built at run time cannot be read; it is counted,
not guessed.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.snapshot.data_checks import STATUS, Asked, explain
from pytest_chroma_compat.snapshot.result import Check

MAX_FILTERS = 500
MAX_FILE_BYTES = 5_000_000
MAX_PY_FILES = 5000
KEYS = ("where", "where_document", "collection")
CHECK = "user-filters"


@dataclass(frozen=True)
class UserFilter:
    where: Any
    where_document: Any
    collection: str | None
    origin: str

    def as_dict(self) -> dict:
        return {
            "where": self.where,
            "where_document": self.where_document,
            "collection": self.collection,
            "origin": self.origin,
        }


def checked(item: Any, origin: str) -> UserFilter:
    if not isinstance(item, dict):
        raise CompatError(
            f"{origin}: a filter must be an object with where / where_document, not {type(item).__name__}"
        )
    unknown = sorted(set(item) - set(KEYS))
    if unknown:
        raise CompatError(f"{origin}: unknown field(s) {', '.join(unknown)}; a filter has {', '.join(KEYS)}")
    where, doc, coll = item.get("where"), item.get("where_document"), item.get("collection")
    for name, value in (("where", where), ("where_document", doc)):
        if value is not None and not isinstance(value, dict):
            raise CompatError(f"{origin}: {name} must be an object or null, not {type(value).__name__}")
    if where is None and doc is None:
        raise CompatError(f"{origin}: a filter needs where or where_document")
    if coll is not None and (not isinstance(coll, str) or not coll):
        raise CompatError(f"{origin}: collection must be a collection name")
    return UserFilter(where, doc, coll, origin)


def load(path: str | Path) -> list[UserFilter]:
    """``--filters FILE``: a JSON list of filters; a clear one-line error (exit 2) for anything else."""
    from pytest_chroma_compat.common.plain_names import size_at_most

    p = Path(path)
    size_at_most(p, MAX_FILE_BYTES, "--filters file")  # a FIFO would hang the read, /dev/zero fill memory
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompatError(f"--filters {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CompatError(f"--filters {path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CompatError(f"--filters {path}: not JSON: {exc}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise CompatError(f'--filters {path}: expected a JSON list of filters ({{"where": ...}})')
    if len(data) > MAX_FILTERS:
        raise CompatError(f"--filters {path}: {len(data)} filters; at most {MAX_FILTERS}")
    return [checked(item, f"{p.name}[{i}]") for i, item in enumerate(data)]


# -- extraction from the user's code -----------------------------------------------------------------------


class NotLiteral(Exception):
    """Part of the filter is computed at run time."""


def _value(node: ast.AST, literals: dict, env: dict, depth: int = 0) -> Any:
    """The Python value of a literal filter expression; names resolve to the literals bound to them
    (``env`` first: a helper's parameters, bound to the caller's arguments)."""
    if depth > 20:
        raise NotLiteral("too deep")
    if isinstance(node, ast.Name):
        if node.id in env:
            bound, bound_literals = env[node.id]
            return _value(bound, bound_literals, {}, depth + 1)  # one level: the caller's names only
        if node.id in literals:
            return _value(literals[node.id], literals, env, depth + 1)
        raise NotLiteral(node.id)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise NotLiteral("**")
        return {
            _value(k, literals, env, depth + 1): _value(v, literals, env, depth + 1)
            for k, v in zip(node.keys, node.values)
        }
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(e, literals, env, depth + 1) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, literals, env, depth + 1)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    raise NotLiteral(type(node).__name__)


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


@dataclass
class _Module:
    path: Path
    tree: ast.AST
    literals: dict


def _literals(tree: ast.AST) -> dict[str, ast.AST]:
    """Names bound to a dict or list literal anywhere in the module (flow-insensitive, as the scan's
    ``Kinds.literals``: ``cond = {...}`` then ``where=cond`` or ``{"$and": [cond, ...]}``)."""
    out: dict[str, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, (ast.Dict, ast.List)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value
    return out


def _read(path: Path) -> str:
    """The file's text as the scan reads it (regular files only, bounded)."""
    from pytest_chroma_compat.usercode.scan.reader import read_source

    return read_source(path, MAX_FILE_BYTES)


def _modules(root: str | Path) -> Iterator[_Module]:
    """The Python files under ``root`` that the scan would read (``scan.engine.python_files``), parsed."""
    from pytest_chroma_compat.usercode.scan.reader import python_files

    for n, path in enumerate(python_files([str(root)])):
        if n >= MAX_PY_FILES:
            raise CompatError(f"--filters-from {root}: more than {MAX_PY_FILES} Python files")
        try:
            tree = ast.parse(_read(path), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue  # the scan names unreadable files; here they simply hold no filter
        yield _Module(path, tree, _literals(tree))


def _filter_calls(tree: ast.AST) -> Iterator[tuple[ast.Call, dict[str, ast.AST]]]:
    """Every ``x.get/query/delete/...(where=..., where_document=...)``: the user named these files,
    so any receiver counts."""
    from pytest_chroma_compat.usercode.scan.finder import FILTER_CALLS

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FILTER_CALLS:
            given = {k.arg: k.value for k in node.keywords if k.arg in ("where", "where_document")}
            if given:
                yield node, given


def _enclosing(tree: ast.AST) -> dict[int, ast.AST]:
    """id(call) -> the function it is in (the innermost)."""
    out: dict[int, ast.AST] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Call):
                    out[id(node)] = fn  # walked outer first: inner functions overwrite
    return out


def _params(fn: ast.AST) -> list[str]:
    a = fn.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]


def _bind(fn: ast.AST, call: ast.Call, literals: dict) -> dict | None:
    """The helper's parameters bound to one call's arguments (a method's ``self`` skipped)."""
    a = fn.args
    positional = [x.arg for x in a.posonlyargs + a.args]
    if positional and positional[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        positional = positional[1:]
    env = {}
    for name, arg in zip(positional, call.args):
        if isinstance(arg, ast.Starred):
            return None
        env[name] = (arg, literals)
    for kw in call.keywords:
        if kw.arg is None:
            return None
        env[kw.arg] = (kw.value, literals)
    return env


def extract(root: str | Path) -> tuple[list[UserFilter], int]:
    """``--filters-from PATH``: the literal filters of the Python code under ``root``, and how many
    filter arguments could not be read (built at run time)."""
    if not Path(root).exists():
        raise CompatError(f"--filters-from {root}: no such file or directory")
    modules = list(_modules(root))
    functions: dict[str, list[tuple[ast.AST, _Module]]] = {}
    for m in modules:
        for fn in ast.walk(m.tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.setdefault(fn.name, []).append((fn, m))
    found: dict[str, UserFilter] = {}
    unread = 0

    def keep(values: dict, origin: str) -> None:
        try:
            f = checked({k: values.get(k) for k in ("where", "where_document")}, origin)
        except CompatError:
            return
        key = json.dumps([f.where, f.where_document], sort_keys=True, default=repr)
        found.setdefault(key, f)

    callers: dict[str, list[tuple[ast.Call, _Module]]] = {}
    for m in modules:
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Call):
                name = (
                    node.func.id
                    if isinstance(node.func, ast.Name)
                    else node.func.attr
                    if isinstance(node.func, ast.Attribute)
                    else None
                )
                if name in functions:
                    callers.setdefault(name, []).append((node, m))
    for m in modules:
        inside = _enclosing(m.tree)
        for call, given in _filter_calls(m.tree):
            origin = f"{m.path}:{call.lineno}"
            try:
                keep({k: _value(v, m.literals, {}) for k, v in given.items()}, origin)
                continue
            except NotLiteral:
                pass
            fn = inside.get(id(call))
            used = set().union(*(_names(v) for v in given.values()))
            if fn is None or not used & set(_params(fn)):
                unread += 1
                continue
            # one level: every call of the helper binds its parameters to the caller's literals
            read_any = False
            for site, caller in callers.get(fn.name, []):
                env = _bind(fn, site, caller.literals)
                if env is None:
                    continue
                try:
                    values = {k: _value(v, m.literals, env) for k, v in given.items()}
                except NotLiteral:
                    continue
                keep(values, f"{caller.path}:{site.lineno} (through {fn.name}() at {origin})")
                read_any = True
            unread += 0 if read_any else 1
    filters = list(found.values())
    if len(filters) > MAX_FILTERS:
        filters = filters[:MAX_FILTERS]
    return filters, unread


def from_option(path: str | Path) -> tuple[list[UserFilter], int]:
    """The plugin's ``--chroma-snapshot-filters``: a JSON file, or Python code (a .py file or a directory)."""
    p = Path(path)
    if p.is_dir() or p.suffix == ".py":
        return extract(p)
    return load(p), 0


# -- per collection ----------------------------------------------------------------------------------------


def asked_for(filters: list[UserFilter], collection: str, label: str) -> list[Asked]:
    """The user's filters that apply to one collection (no ``collection``: every one)."""
    return [
        Asked(f.where, f.where_document, CHECK, origin=f.origin)
        for f in filters
        if f.collection is None or f.collection in (collection, label)
    ]


def result(label: str, judged: list, versions: tuple[str, str], seconds: float = 0.0) -> Check | None:
    """One Check per collection for the user's filters: the worst outcome first, every filter in the evidence."""
    if not judged:
        return None
    rows = [
        {
            **a.clause(),
            "origin": a.origin,
            "outcome": what,
            "source": s,
            "target": t,
            "expected from the data": None
            if a.expected is None
            else {k: a.expected.get(k) for k in ("count", "sample", "uncertain")},
        }
        for a, what, s, t in judged
    ]
    statuses = [STATUS[what][1] for _, what, _, _ in judged]
    status = next((st for st in ("fail", "pre-existing", "info") if st in statuses), "pass")
    evidence = {"filters": rows}
    if status == "pass":
        return Check(
            CHECK,
            "pass",
            f"{len(judged)} filter(s) of yours answer on chromadb {versions[1]} as the data "
            f"says (and as {versions[0]} does)",
            label,
            evidence,
            seconds,
        )
    bad = [(a, what, s, t) for a, what, s, t in judged if STATUS[what][1] == status]
    a, what, s, t = bad[0]
    kinds = sorted({w for _, w, _, _ in bad})
    return Check(
        CHECK,
        status,
        f"{len(bad)} of {len(judged)} filter(s) of yours ({', '.join(kinds)}); first, "
        f"from {a.origin}: {explain(a, what, s, t, versions)}",
        label,
        evidence,
        seconds,
    )


def unknown_collections(filters: list[UserFilter], names: set[str]) -> list[str]:
    return sorted({f.collection for f in filters if f.collection is not None and f.collection not in names})
