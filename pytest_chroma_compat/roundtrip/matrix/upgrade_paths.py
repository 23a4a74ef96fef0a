"""Safe upgrade paths: from each release, the newest release it reaches with every hop SAFE.

Why: a matrix answers "is A -> B safe?", but a user on 0.4.24 asks "how far can I get, and
how?". An unsafe direct upgrade may still have a safe route through an intermediate release.
Only upgrade edges (old < new) count; a hop is SAFE for a path when that path ran on the pair
and held *as asked*: a pre-existing defect not allowed, or a cell an older harness carried through
export/import when in place was asked (a 0.3 store), is not a safe hop. The chain found is a
shortest one (fewest hops), the first in version order among equals, so the same cells give the
same summary.
"""

from __future__ import annotations

from collections.abc import Iterable

# the ways a store is carried to a newer release, in the order an "any path" hop prefers them
ROUTES = {"in-place": "in place", "export-import": "export/import"}
ANY = "any"


# what harnesses before issue 23 wrote on an in-place cell of a 0.3 store that they ran as export/import
REROUTED = "routed through export/import"


def safe_as_asked(path_report: dict, cell: dict) -> bool:
    """The path ran, held, carried no pre-existing defect the run did not allow, and was not rerouted."""
    p = path_report
    if not (p.get("invariants") and p.get("ok")):
        return False
    if p.get("pre_existing") and not cell.get("allow_pre_existing"):
        return False
    return not any(REROUTED in note for note in p.get("notes") or ())


def _safe_edges(cells: Iterable[dict], rank: dict[str, int]) -> dict[str, dict[tuple[str, str], str]]:
    """route -> {(old, new): the path that carries that hop}; ``any`` takes the first safe route."""
    edges: dict[str, dict[tuple[str, str], str]] = {route: {} for route in (*ROUTES, ANY)}
    for cell in cells:
        pair = (cell["old"], cell["new"])
        if rank[pair[0]] >= rank[pair[1]]:
            continue
        held = [p["path"] for p in cell.get("paths", []) if p["path"] in ROUTES and safe_as_asked(p, cell)]
        for route in held:
            edges[route][pair] = route
        for route in ROUTES:
            if route in held:
                edges[ANY][pair] = route
                break
    return edges


def _furthest(source: str, versions: list[str], edges: dict[tuple[str, str], str]) -> dict | None:
    """Breadth first from ``source``: the newest release reached, and the hops of the chain to it."""
    parent: dict[str, str] = {source: source}
    frontier = [source]
    while frontier:
        nxt = []
        for here in frontier:
            for there in versions:
                if there not in parent and (here, there) in edges:
                    parent[there] = here
                    nxt.append(there)
        frontier = nxt
    reached = [v for v in versions if v in parent and v != source]
    if not reached:
        return None
    hops = []
    at = reached[-1]
    while at != source:
        hops.append({"old": parent[at], "new": at, "path": edges[(parent[at], at)]})
        at = parent[at]
    return {"to": reached[-1], "hops": hops[::-1]}


def summary(versions: list[str], cells: Iterable[dict], paths: list[str]) -> list[dict]:
    """One row per release but the newest: per route the paths ran, and ``any``, the furthest chain."""
    cells = list(cells)
    rank = {v: i for i, v in enumerate(versions)}
    edges = _safe_edges(cells, rank)
    routes = [r for r in ROUTES if r in paths]
    shown = routes + ([ANY] if routes else [])
    return [{"from": v, "routes": {r: _furthest(v, versions, edges[r]) for r in shown}} for v in versions[:-1]]


def chain_text(source: str, found: dict | None, *, label_hops: bool) -> str:
    """``0.4.24 -> 0.6.3 (in place) -> 1.0.21 (export/import)``; hop labels only where paths mix."""
    if found is None:
        return f"none: stay on {source}"
    words = [source]
    for hop in found["hops"]:
        words.append(f"{hop['new']} ({ROUTES[hop['path']]})" if label_hops else hop["new"])
    return f"**{found['to']}**: " + " -> ".join(words)
