"""The scan rules, read from the ``scan`` tables of contracts/table.toml.

A rule is data: which syntax to look for (``kind``), which names, what the receiver must be, and
which keys of the contract's measured value the matched code depends on (``observed``). Matching
lives in usercode/scan/finder.py; nothing here knows a contract by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pytest_chroma_compat.common.errors import CompatError

KINDS = (
    "call",
    "attribute",
    "keyword",
    "filter",
    "empty-argument",
    "truthiness",
    "method-param",
    "import",
    "name-use",
    "metadata-none",
)
RECEIVERS = ("any", "chromadb", "client", "collection", "result", "listed", "listing")


@dataclass(frozen=True)
class Rule:
    contract_id: str
    kind: str
    fix: str
    names: tuple[str, ...] = ()
    on: str = "any"
    keywords: tuple[str, ...] = ()
    any_keyword: bool = False
    operators: tuple[str, ...] = ()
    observed: tuple[str, ...] = ()
    # `call` rules: the `keywords` value as written (ast.unparse) must be one of `values` ("None") and
    # none of `except_values`; `dict_keys`: the value is a dict literal (or a name bound to one) with one of them
    values: tuple[str, ...] = ()
    except_values: tuple[str, ...] = ()
    dict_keys: tuple[str, ...] = ()
    # only in a module that hands chromadb text to embed (add/upsert/update with documents= and no
    # embeddings=, query with query_texts=): `embedding_function=None` with explicit embeddings is unaffected
    text_calls: bool = False

    def keys(self, **fill: str) -> tuple[str, ...]:
        """The measured keys this match depends on, with {operator}/{keyword}/{call}/{literal} filled."""
        return tuple(k.format(**fill) for k in self.observed)


@lru_cache(maxsize=1)
def load() -> tuple[Rule, ...]:
    from pytest_chroma_compat.contracts.measure import load_table

    out = []
    for c in load_table():
        for raw in c.scan:
            row = dict(raw)
            try:
                rule = Rule(
                    contract_id=c.id,
                    kind=row.pop("kind"),
                    fix=row.pop("fix"),
                    **{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()},
                )
            except (KeyError, TypeError) as exc:
                raise CompatError(f"contract {c.id}: bad scan table ({exc})") from None
            if rule.kind not in KINDS or rule.on not in RECEIVERS:
                raise CompatError(
                    f"contract {c.id}: scan kind {rule.kind!r} / on {rule.on!r} is not one of "
                    f"{', '.join(KINDS)} / {', '.join(RECEIVERS)}"
                )
            out.append(rule)
    return tuple(out)
