"""No import cycles between the package's modules, and the allowed directions between its packages.

A cycle hides which module owns what (the pytest wiring was spread over three packages borrowing
option helpers from each other), and makes import order decide behaviour. Every import statement
counts, at any depth: a cycle broken only by moving an import into a function is still a cycle. The
package's imports are read with stdlib ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_chroma_compat"

# Which package may import which: the direction data flows (a release's worker at the bottom, the doors
# at the top). A package is its dotted path under pytest_chroma_compat ("engine.worker"); a rule names a
# package and covers its subpackages. "(top)" is the modules directly in pytest_chroma_compat/. A
# capability's cli.py counts as part of cli/ (the door), wherever it lives.
ONLY_FROM_ITSELF = {
    # run INSIDE a release's environment, with the stdlib only
    "engine.worker": {"engine.worker"},
    "engine.release_side": {"engine.release_side", "engine.worker"},
    # the shared small things sit under everything
    "common": {"common"},
}
NEVER = {
    # releases and their workers know nothing of what is built on them
    "engine": {"roundtrip", "contracts", "snapshot", "transfer", "servers", "usercode", "plugin", "cli"},
    # the contract table and its measurements know nothing of the commands built on them
    "contracts": {"roundtrip", "usercode", "snapshot", "transfer", "plugin", "cli"},
    # the round trip runs stores it generates; the matrix is built on the pair runner, never the reverse
    "roundtrip": {"snapshot", "transfer", "servers", "usercode", "plugin"},
    # the static scan reads code, never stores
    "usercode.scan": {"snapshot", "transfer", "plugin", "cli"},
    # validate does not move stores
    "snapshot": {"transfer", "servers", "plugin", "cli"},
    "transfer": {"servers", "usercode", "plugin", "cli"},
    "servers": {"roundtrip", "snapshot", "transfer", "usercode", "plugin", "cli"},
    "usercode": {"roundtrip", "snapshot", "transfer", "plugin"},
    # the pytest wiring is a door: the commands never go through it
    "cli": {"plugin"},
}
# the pair runner never reaches up into the matrix built on it (the rule is for the package itself,
# not its subpackages)
NEVER_FROM_EXACTLY = {"roundtrip": {"roundtrip.matrix"}}


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (relative and absolute, at any depth)."""

    def owner(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    prefix = base[: len(base) - (node.level - 1)]
                    target = ".".join(prefix + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in mods]
                targets = subs + ([target] if len(subs) < len(node.names) else [])
            for target in targets:
                name = owner(target)
                if name and name != module and name.startswith(PACKAGE.name):
                    edges[module].add(name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_of(module: str, mods: dict[str, Path]) -> str:
    """A capability's ``cli.py`` (its verbs' handlers) lives with the capability but belongs to the door."""
    parts = module.split(".")[1:]
    if parts and parts[-1] == "cli" and mods[module].name != "__init__.py":
        return "cli"
    if mods[module].name != "__init__.py":
        parts = parts[:-1]
    return ".".join(parts) or "(top)"


def within(package: str, rule: str) -> bool:
    return package == rule or package.startswith(rule + ".")


def rule_for(package: str, table: dict[str, set[str]]) -> tuple[str, set[str]] | None:
    """The most specific rule covering the package."""
    keys = sorted((k for k in table if within(package, k)), key=len, reverse=True)
    return (keys[0], table[keys[0]]) if keys else None


def direction_problems(edges: dict[str, set[str]], mods: dict[str, Path]) -> list[str]:
    problems = []
    for module, targets in sorted(edges.items()):
        source = package_of(module, mods)
        for target in sorted(targets):
            other = package_of(target, mods)
            only = rule_for(source, ONLY_FROM_ITSELF)
            if only and not any(within(other, allowed) for allowed in only[1]):
                problems.append(f"{module} imports {target}: {only[0]}/ may import only {sorted(only[1])}")
            never = rule_for(source, NEVER)
            if never and not within(other, source) and any(within(other, banned) for banned in never[1]):
                problems.append(f"{module} imports {target}: {never[0]}/ never imports {other}/")
            if any(within(other, banned) for banned in NEVER_FROM_EXACTLY.get(source, ())):
                problems.append(f"{module} imports {target}: {source}/ never imports {other}/ (built on it)")
    return problems


def test_the_package_has_no_import_cycles():
    found = cycles(imports(modules()))
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_packages_import_in_the_allowed_direction():
    mods = modules()
    assert direction_problems(imports(mods), mods) == []


def test_the_checks_see_a_planted_cycle_and_a_wrong_direction(tmp_path):
    """The two checks fail on a package that breaks them (so a pass means something)."""
    root = tmp_path / "pytest_chroma_compat"
    (root / "engine" / "worker").mkdir(parents=True)
    (root / "engine" / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from . import b\n")
    (root / "b.py").write_text("def f():\n    from .a import x\n")  # a function-level import still counts
    (root / "engine" / "worker" / "__init__.py").write_text("")
    (root / "engine" / "worker" / "main.py").write_text("from ...a import thing\n")
    mods = modules(root)
    edges = imports(mods)
    assert cycles(edges) == [["pytest_chroma_compat.a", "pytest_chroma_compat.b"]]
    [problem] = direction_problems(edges, mods)
    assert problem.startswith("pytest_chroma_compat.engine.worker.main imports pytest_chroma_compat.a: engine.worker/")
