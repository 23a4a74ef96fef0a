"""``chroma-compat scan --needs PATHS``: the lowest chromadb release that has every chromadb name the
code imports or calls, from a measured catalogue (``usercode/scan/names.json``), so a project can set its real
lower bound instead of guessing one.

What counts as a name the code needs (found with the scan's own tracking, usercode/scan/kinds.py):
``import chromadb.x.y`` / ``from chromadb.x import ...`` (the module must exist), ``chromadb.X``
and ``from chromadb import X`` (a top-level name), and ``M`` called or read on a tracked client
(``client.M``) or collection (``collection.M``).

Why a catalogue: which names a release has is measured by running each release's worker
(engine/release_side/chroma_compat_names.py); a scan stays offline and quick. Regenerate with
``python -m pytest_chroma_compat.usercode.scan.needs`` (a representative set: the first and last release of
every minor series plus every release with a cached environment) or ``... --all`` (every release
in the range, minutes each to build). The answer is "the lowest *measured* release": a name that
appeared between two measured releases is reported at the later one, and the output says which
measured release before it lacks what.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pytest_chroma_compat.common.errors import EXIT_OK, EXIT_UNSAFE, CompatError
from pytest_chroma_compat.usercode.scan.kinds import Kinds, dotted, walk

CATALOGUE = Path(__file__).with_name("names.json")
RANGE = ">=0.3.29"
RELEASE_SIDE = Path(__file__).resolve().parent.parent.parent / "engine" / "release_side"
_USE_TYPES = frozenset(
    {
        ast.Import,
        ast.ImportFrom,
        ast.Attribute,
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
    }
)


# -- the catalogue ---------------------------------------------------------------------------------
def _runs(present: list[bool], versions: list[str]) -> list[list[str]]:
    out: list[list[str]] = []
    for v, here in zip(versions, present):
        if here and out and out[-1][1] == versions[versions.index(v) - 1]:
            out[-1][1] = v
        elif here:
            out.append([v, v])
    return out


def build(measured: dict[str, dict]) -> dict:
    """The catalogue from each release's measurement (release -> chroma_compat_names.measure())."""
    from packaging.version import Version

    versions = sorted(measured, key=Version)
    sets = {
        v: {f"chromadb.{n}" for n in m.get("top", ())}
        | {f"client.{n}" for n in m.get("client", ())}
        | {f"collection.{n}" for n in m.get("collection", ())}
        | {f"import {n}" for n in m.get("modules", ())}
        | {f"{mod}.{n}" for mod, names in m.get("submodules", {}).items() for n in names}
        for v, m in measured.items()
    }
    every = sorted(set().union(*sets.values()))
    return {
        "measured": versions,
        "submodules": sorted(set().union(*(m.get("submodules", {}) for m in measured.values()))),
        "how": "engine/release_side/chroma_compat_names.py in each release's worker; "
        "python -m pytest_chroma_compat.usercode.scan.needs [--all] rewrites this file",
        "names": {n: _runs([n in sets[v] for v in versions], versions) for n in every},
    }


def representative(cached: Iterable[str] = ()) -> list[str]:
    """First and last release of every minor series in RANGE, and the releases already built here."""
    from packaging.version import Version

    from pytest_chroma_compat.engine import releases

    every = releases.select(RANGE)
    by_minor: dict[str, list[str]] = {}
    for v in every:
        by_minor.setdefault(".".join(v.split(".")[:2]), []).append(v)
    chosen = {s[0] for s in by_minor.values()} | {s[-1] for s in by_minor.values()} | (set(cached) & set(every))
    return sorted(chosen, key=Version)


def regenerate(versions: list[str], path: Path = CATALOGUE) -> dict:
    """Run the measurement in each release's worker (building environments as needed) and write ``path``."""
    from pytest_chroma_compat.engine.client import Release

    measured, failed = {}, []
    for v in versions:
        print(f"measuring chromadb {v} ...", file=sys.stderr, flush=True)
        try:
            with Release(v) as release:
                m = release.run("chroma_compat_names:measure", sys_path=[str(RELEASE_SIDE)])
        except Exception as exc:  # noqa: BLE001 - a release that cannot run is named, never guessed
            failed.append(f"{v}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if m.get("client_error") or m.get("collection_error") or m.get("submodule_errors"):
            failed.append(f"{v}: {m.get('client_error') or m.get('collection_error') or m.get('submodule_errors')}")
            continue
        measured[v] = m
    if failed:
        raise CompatError(f"could not measure {len(failed)} release(s), not writing {path}: {'; '.join(failed)}")
    doc = build(measured)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


@lru_cache(maxsize=1)
def load() -> dict:
    try:
        return json.loads(CATALOGUE.read_text())
    except (OSError, ValueError) as exc:
        raise CompatError(f"scan --needs: cannot read the measured names {CATALOGUE}: {exc}") from None


# -- what the code uses ----------------------------------------------------------------------------
def uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, catalogue name) for every chromadb name the module imports or calls."""
    nodes, scopes, parents = walk(tree, _USE_TYPES)
    kinds = Kinds()
    kinds.learn(nodes, scopes, parents)
    out: list[tuple[int, str]] = []
    for node, scope in zip(nodes, scopes):
        t = type(node)
        if t is ast.Import:
            out += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] == "chromadb"]
        elif t is ast.ImportFrom and not node.level and (node.module or "").split(".")[0] == "chromadb":
            out.append((node.lineno, f"import {node.module}"))
            for a in node.names:
                if a.name == "*":
                    continue
                out.append(
                    (
                        node.lineno,
                        f"chromadb.{a.name}" if node.module == "chromadb" else f"from {node.module} import {a.name}",
                    )
                )  # resolved against the catalogue
        elif t is ast.Attribute:
            kinds.scope = scope
            base = kinds.of(node.value)
            if base == "chromadb" and dotted(node.value) and "." not in dotted(node.value):
                out.append((node.lineno, f"chromadb.{node.attr}"))
            elif base in ("client", "collection"):
                out.append((node.lineno, f"{base}.{node.attr}"))
    return out


@dataclass
class Needs:
    files: int = 0
    used: dict[str, list[str]] = field(default_factory=dict)  # name -> where (path:line)
    unreadable: list[str] = field(default_factory=list)

    def answer(self) -> dict:
        """The lowest measured release with every known name, what the one before lacks, and
        where a needed name is gone again in a later measured release."""
        from packaging.version import Version

        cat = load()
        versions, names = cat["measured"], cat["names"]

        def has(name: str, v: str) -> bool:
            return any(Version(a) <= Version(v) <= Version(b) for a, b in names.get(name, ()))

        known = sorted(n for n in self.used if n in names)
        unknown = sorted(n for n in self.used if n not in names)
        ok = [v for v in versions if all(has(n, v) for n in known)]
        lowest = ok[0] if ok else None
        before = versions[versions.index(lowest) - 1] if lowest and versions.index(lowest) else None
        gone = {n: [v for v in versions if lowest and Version(v) > Version(lowest) and not has(n, v)] for n in known}
        return {
            "lowest": lowest,
            "measured": versions,
            "previous_measured": before,
            "previous_lacks": sorted(n for n in known if before and not has(n, before)),
            "gone_later": {n: vs[0] for n, vs in gone.items() if vs},
            "names": {n: self.used[n] for n in known},
            "unknown": {n: self.used[n] for n in unknown},
            "files": self.files,
            "unreadable": self.unreadable,
        }


def needs(paths: Iterable[str], max_file_bytes: int | None = None) -> Needs:
    """What the files under ``paths`` use (read as ``scan`` reads them: regular files of the tree only)."""
    from pytest_chroma_compat.usercode.scan.reader import DEFAULT_MAX_FILE_BYTES, candidates, read_source

    limit = max_file_bytes or DEFAULT_MAX_FILE_BYTES
    cat = load()
    names, measured_modules = cat["names"], set(cat.get("submodules", ()))
    result = Needs()
    for cand in candidates(paths, limit):
        if cand.why:
            result.unreadable.append(f"{cand.path}: {cand.why}")
            continue
        result.files += 1
        try:
            found = uses(ast.parse(read_source(cand.path, limit), filename=str(cand.path)))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError, RecursionError) as exc:
            result.unreadable.append(f"{cand.path}: {type(exc).__name__}: {exc}")
            continue
        for line, name in found:
            if name.startswith("from "):  # from chromadb.x import y: y is a submodule, or a measured name
                module, _, attr = name[len("from ") :].partition(" import ")
                name = (
                    f"import {module}.{attr}"
                    if f"import {module}.{attr}" in names
                    else f"{module}.{attr}"
                    if module in measured_modules
                    else ""
                )
                if not name:
                    continue  # a name inside a module measured as a whole: the module's import counts
            result.used.setdefault(name, []).append(f"{cand.path}:{line}")
    return result


def text(answer: dict) -> str:
    lines = []
    n = len(answer["names"])
    if answer["lowest"] is None:
        lines.append(f"no measured chromadb release has all {n} chromadb name(s) the code uses")
    else:
        lines.append(
            f"chromadb>={answer['lowest']}: the lowest measured release with all {n} chromadb name(s) "
            f"the code imports or calls ({len(answer['measured'])} releases measured, "
            f"{answer['measured'][0]}..{answer['measured'][-1]})"
        )
        if answer["previous_measured"]:
            lacks = ", ".join(answer["previous_lacks"])
            lines.append(f"  {answer['previous_measured']} (the measured release before it) lacks: {lacks}")
            for name in answer["previous_lacks"]:
                lines.append(f"    {name}: {', '.join(answer['names'][name][:3])}")
    for name, v in sorted(answer["gone_later"].items()):
        lines.append(
            f"  note: {name} is absent from measured release {v} on (used at {', '.join(answer['names'][name][:3])})"
        )
    for name, where in sorted(answer["unknown"].items()):
        lines.append(f"  not in any measured release (not chromadb's, or misspelt): {name} at {where[0]}")
    for u in answer["unreadable"]:
        lines.append(f"  not scanned: {u}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """The ``scan --needs`` door: text or json; exit 1 when no measured release has every name."""
    answer = needs(args.paths, getattr(args, "max_file_bytes", None)).answer()
    out = json.dumps(answer, indent=1, sort_keys=True) + "\n" if args.format == "json" else text(answer)
    if args.output:
        try:
            Path(args.output).write_text(out)
        except OSError as exc:
            raise CompatError(f"scan: cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(out)
    return EXIT_OK if answer["lowest"] is not None or not answer["names"] else EXIT_UNSAFE


def main(argv: list[str] | None = None) -> int:
    from pytest_chroma_compat.engine import envs

    p = argparse.ArgumentParser(
        prog="python -m pytest_chroma_compat.usercode.scan.needs", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--all", action="store_true", help=f"measure every release in {RANGE} (slow)")
    p.add_argument("--versions", help="comma-separated releases to measure instead")
    args = p.parse_args(argv)
    from pytest_chroma_compat.engine import releases

    if args.versions:
        versions = [releases.resolve(v.strip()) for v in args.versions.split(",") if v.strip()]
    elif args.all:
        versions = releases.select(RANGE)
    else:
        cached = [e.version for e in envs.list_envs() if getattr(e, "kind", "") == "full"]
        versions = representative(cached)
    doc = regenerate(versions)
    print(f"wrote {CATALOGUE}: {len(doc['names'])} names over {len(doc['measured'])} releases", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
