"""What validate runs on each collection besides its own checks: the data checks and the user's filters.

One object per validation: it measures once which data-check contracts the upgrade crosses
(``data_checks.crossed_ids``), decides each check's budget (``data_checks.budgets``), and on
every collection runs both on the same two passes over the source's records
(``data_checks.run_collection``), turning the user's filters into their check (``user_filters.result``).
"""

from __future__ import annotations

import time
from typing import Any

from pytest_chroma_compat.common.errors import ChromaError, CompatError, WorkerError
from pytest_chroma_compat.engine.client import Collection
from pytest_chroma_compat.snapshot import user_filters
from pytest_chroma_compat.snapshot.data_checks import (
    DEFAULT_BUDGET,
    PAGE,
    DataCheck,
    budgets,
    crossed_ids,
    run_collection,
    table_checks,
)
from pytest_chroma_compat.snapshot.result import Check


class Options:
    """What validate runs on every collection besides its own checks: the data checks at ``budget``
    values per key (0: only those the upgrade crosses), and the user's own filters (``user_filters``)."""

    def __init__(
        self, budget: int = DEFAULT_BUDGET, filters: list | None = None, measure_contracts: bool = True, seed: int = 0
    ) -> None:
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
            raise CompatError(f"--data-budget must be a whole number of values, 0 or more, not {budget!r}")
        filters = [
            f if not isinstance(f, dict) else user_filters.checked(f, f"filter {i}")
            for i, f in enumerate(filters or [])
        ]
        self.budget, self.filters, self.measure, self.seed = budget, filters, measure_contracts, seed
        self.checks: list[DataCheck] | None = None
        self.mandatory: set[str] | None = None
        self.per_check: dict[str, int] = {}
        self.used: set[str] = set()
        self.lookup: Any = None  # validate's ``measure.Lookup`` of the pair, when one is under way

    def _start(self, old: str, new: str) -> None:
        every = table_checks()
        self.mandatory = crossed_ids(old, new, self.lookup) if self.measure else None
        self.checks, self.per_check = budgets(every, self.budget, self.mandatory)

    def run(
        self, label: str, name: str, src_client: Any, dst_client: Any, count: int, batch_size: int = PAGE
    ) -> list[Check]:
        """The data checks and the user's filters on one collection (before the write check writes to it)."""
        if self.checks is None:
            self._start(src_client.release.version, dst_client.release.version)
        src = Collection(src_client, {"name": name, "id": ""})
        tgt = Collection(dst_client, {"name": name, "id": ""})
        mine = user_filters.asked_for(self.filters, name, label)
        self.used.update(f.collection for f in self.filters if f.collection in (name, label))
        started = time.monotonic()
        try:
            checks, judged = run_collection(
                label,
                src,
                tgt,
                count=count,
                checks=self.checks or [],
                budget=self.per_check,
                mandatory=self.mandatory,
                seed=self.seed,
                batch_size=batch_size,
                user=mine,
            )
        except (ChromaError, WorkerError) as exc:  # the source failed reading its own records: not a verdict
            from pytest_chroma_compat.snapshot.compare import _err

            return [
                Check(
                    "data-checks",
                    "error",
                    f"reading the records for the data checks failed: {_err(exc)}",
                    label,
                    {"error": _err(exc)},
                    time.monotonic() - started,
                )
            ]
        versions = (src_client.release.version, dst_client.release.version)
        mine_check = user_filters.result(label, judged, versions, time.monotonic() - started)
        if not self.checks and self.budget == 0:
            checks.append(
                Check(
                    "data-checks",
                    "skip",
                    "data checks off (--data-budget 0), and the upgrade crosses "
                    "no contract whose effect depends on stored data",
                    label,
                )
            )
        return checks + ([mine_check] if mine_check else [])

    def finish(self) -> list[Check]:
        """A filter naming a collection the store does not hold: the user's input, said once."""
        unknown = sorted({f.collection for f in self.filters if f.collection is not None} - self.used)
        if not unknown:
            return []
        return [
            Check(
                user_filters.CHECK,
                "error",
                f"{len(unknown)} filter collection(s) not in the store (or not selected): {', '.join(unknown[:5])}",
                None,
                {"unknown collections": unknown},
            )
        ]
