"""The ``order`` data check: ids and ordering of ``get()``, asked of *this* store on both releases.

Why: ``get()``'s order changed twice (contract ``get-order-internal-ids``: sorted by user id from
0.4.20, by insertion again from 0.5.9), and code that pages with ``get(limit, offset)`` meets it only
where the store's insertion order is not its id order. So both releases (the old one on the original
copy, the new one on the upgraded copy) are asked for the collection's ids as user code pages them
(``get(limit=ORDER_PAGE, offset=...)``, the first pages only: a budget of 64 reads 8 pages, 800 ids)
and for ``get(ids=[...])`` with a shuffled sample of those ids (the records returned must be exactly
the ids asked; their order is reported). Same sequences: the contract's change cannot touch this
data, pass. Different: ``info``, worded as a change of this store's paging where the upgrade crosses
the contract as measured (mandatory): the records survive, and whether code depends on the order is
the scan's to say, not the store's. A wrong record set from ``get(ids=...)`` is ``fail``. A row with
``data_check = { kind = "order" }`` links a contract to this check.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

from pytest_chroma_compat.common.errors import ChromaError, WorkerError
from pytest_chroma_compat.engine.client import Collection
from pytest_chroma_compat.snapshot.result import Check

#: ids per page, as user code pages (``get(limit=100, offset=...)``)
ORDER_PAGE = 100
#: pages asked per budget unit: a budget of 64 (the default) asks 8 pages, the mandatory 32 asks 4
BUDGET_PER_PAGE = 8
EXAMPLES = 5


def _ask(col: Collection, **args: Any) -> list | str:
    """The ids one ``get`` returns, or ``"error: ..."``."""
    try:
        return list(col.get(include=[], **args)["ids"])
    except (ChromaError, WorkerError) as exc:
        from pytest_chroma_compat.snapshot.compare import _err

        return f"error: {_err(exc)}"


def _pages(col: Collection, pages: int) -> list[list] | str:
    out: list[list] = []
    for i in range(pages):
        got = _ask(col, limit=ORDER_PAGE, offset=i * ORDER_PAGE)
        if isinstance(got, str):
            return got
        out.append(got)
        if len(got) < ORDER_PAGE:
            break
    return out


def order_name(ids: list, asked: list | None = None, paged: list | None = None) -> str:
    """How a sequence of ids is ordered, in words (``paged``: the same release's get() order)."""
    if asked is not None and ids == asked:
        return "in the order asked"
    if ids == sorted(ids):
        return "sorted by id"
    if ids == sorted(ids, reverse=True):
        return "in reverse id order"
    where = {rid: i for i, rid in enumerate(paged or [])}
    if paged is not None and all(r in where for r in ids) and [where[r] for r in ids] == sorted(where[r] for r in ids):
        return "in get() order"
    return "by insertion (internal id), not by id" if asked is None else "in neither the order asked nor by id"


def _first_difference(old: list[list], new: list[list]) -> tuple[int, list, list] | None:
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else []
        b = new[i] if i < len(new) else []
        if a != b:
            return i, a, b
    return None


def order_result(
    contract_id: str,
    title: str,
    label: str,
    src: Collection,
    tgt: Collection,
    *,
    count: int,
    budget: int,
    mandatory: bool | None,
    seed: int = 0,
) -> Check:
    """Both releases' ``get()`` pages and ``get(ids=...)`` on one collection, judged (module docstring)."""
    started = time.monotonic()
    name = f"data:{contract_id}"
    old, new = src.client.release.version, tgt.client.release.version
    pages = min(max(1, math.ceil(count / ORDER_PAGE)), max(1, budget // BUDGET_PER_PAGE))
    evidence: dict[str, Any] = {
        "contract": contract_id,
        "kind": "order",
        "page size": ORDER_PAGE,
        "pages asked": pages,
        "budget per key": budget,
        "mandatory": mandatory,
    }
    if mandatory:
        evidence["why mandatory"] = f"the upgrade crosses contract {contract_id} (measured)"
    if count == 0:
        return Check(
            name,
            "pass",
            f"the collection is empty: nothing to ask ({title})",
            label,
            evidence,
            time.monotonic() - started,
        )
    s_pages, t_pages = _pages(src, pages), _pages(tgt, pages)
    if isinstance(s_pages, str) or isinstance(t_pages, str):
        evidence.update(
            {
                "source": s_pages if isinstance(s_pages, str) else "answered",
                "target": t_pages if isinstance(t_pages, str) else "answered",
            }
        )
        status = (
            "fail"
            if isinstance(t_pages, str) and not isinstance(s_pages, str)
            else "pre-existing"
            if isinstance(t_pages, str)
            else "info"
        )
        return Check(
            name,
            status,
            f"get(limit={ORDER_PAGE}, offset=...): chromadb {old} {evidence['source']}, {new} {evidence['target']}",
            label,
            evidence,
            time.monotonic() - started,
        )
    s_ids = [i for p in s_pages for i in p]
    t_ids = [i for p in t_pages for i in p]
    rng = random.Random(seed)
    distinct = list(dict.fromkeys(s_ids))  # 0.3.x pages can overlap (measured: 0.3.29, ids twice across pages)
    if len(distinct) < len(s_ids):
        evidence["ids paged twice by the old release"] = len(s_ids) - len(distinct)
    sample = rng.sample(distinct, min(budget, len(distinct)))
    s_got, t_got = _ask(src, ids=sample), _ask(tgt, ids=sample)
    evidence.update(
        {
            "ids paged": len(s_ids),
            "ids asked by id": len(sample),
            "source order": order_name(s_ids),
            "target order": order_name(t_ids),
            "source get(ids) order": s_got if isinstance(s_got, str) else order_name(s_got, sample, s_ids),
            "target get(ids) order": t_got if isinstance(t_got, str) else order_name(t_got, sample, t_ids),
        }
    )
    tried = (
        f"ids in get() order asked of both releases: {len(s_ids)} id(s) in {len(s_pages)} page(s) of "
        f"get(limit={ORDER_PAGE}, offset=...), and get(ids=[...]) with {len(sample)} of them shuffled"
        + ("; mandatory: the upgrade crosses this contract" if mandatory else "")
    )

    def exact(got: list | str) -> bool:
        return not isinstance(got, str) and sorted(got) == sorted(sample)

    if not exact(t_got):  # a wrong record set is a defect whatever the contract says about order
        what = (
            t_got
            if isinstance(t_got, str)
            else f"{len(set(sample) - set(t_got))} asked id(s) missing, {len(set(t_got) - set(sample))} other(s)"
        )
        status = (
            "pre-existing"
            if not exact(s_got) and (isinstance(s_got, str) or sorted(s_got) == sorted(t_got))
            else "fail"
        )
        evidence["examples"] = [
            {
                "asked": sample[:EXAMPLES],
                "source": s_got if isinstance(s_got, str) else s_got[:EXAMPLES],
                "target": t_got if isinstance(t_got, str) else t_got[:EXAMPLES],
            }
        ]
        return Check(
            name,
            status,
            f"get(ids=[{len(sample)} stored ids]) on chromadb {new}: {what}; {tried}",
            label,
            evidence,
            time.monotonic() - started,
        )
    diff = _first_difference(s_pages, t_pages)
    by_id_differs = not isinstance(s_got, str) and s_got != t_got
    if diff is None and not by_id_differs:
        return Check(
            name,
            "pass",
            f"{tried}; both releases return the same ids in the same order "
            f"({evidence['source order']}): the change of order of {contract_id} cannot "
            f"touch this data",
            label,
            evidence,
            time.monotonic() - started,
        )
    # the records and every answer but their order survive: an order change is reported on the store's own
    # ids, and `chroma-compat scan` (rule get-order-internal-ids) names the lines of code that page
    status = "info"
    parts = []
    if diff is not None:
        i, a, b = diff
        other = len(set(b) - set(a))
        moved = f"returns {other} other id(s)" if other else "returns the same ids in another order"
        parts.append(
            f"page {i + 1} of get(limit={ORDER_PAGE}) {moved}: chromadb {old} pages "
            f"{evidence['source order']} ({', '.join(a[:3])}, ...), {new} {evidence['target order']} "
            f"({', '.join(b[:3])}, ...)"
        )
        evidence["examples"] = [{"page": i + 1, "source": a[:EXAMPLES], "target": b[:EXAMPLES]}]
        evidence["first page that differs"] = i + 1
    if by_id_differs:
        parts.append(
            f"get(ids=[...]) returns the same records {evidence['source get(ids) order']} on chromadb "
            f"{old}, {evidence['target get(ids) order']} on {new}"
        )
    words = (
        "the upgrade changes the order get() returns this store's ids in (contract "
        f"{contract_id}): the records are unchanged, but code that pages with get(limit, offset) or relies "
        "on get() order sees other records per page (`chroma-compat scan` names those lines; sort explicitly)"
        if mandatory
        else f"get() order differs between the releases (contract {contract_id} is "
        + ("not crossed by this upgrade)" if mandatory is False else "not measured here: --no-contracts)")
    )
    return Check(name, status, f"{words}: {'; '.join(parts)}; {tried}", label, evidence, time.monotonic() - started)
