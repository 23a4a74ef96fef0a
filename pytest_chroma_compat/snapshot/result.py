"""What a validation found, as plain data: the one shape every report renders.

Reports (terminal, JSON, JUnit, Markdown) and the pytest items are all views
of :class:`Validation`; :meth:`Validation.to_json` *is* the documented JSON
report (``docs/validate-report.md``), so a field added here is a field users
can rely on, and ``SCHEMA_VERSION`` changes when one is removed or renamed.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA = "pytest-chroma-compat/validate-report"
SCHEMA_VERSION = 2  # 2: the `error` status means "could not check" (exit 2), no longer "not safe"

Status = Literal["pass", "fail", "pre-existing", "error", "skip", "info"]
#: statuses that make the upgrade "not safe" (exit 1): a failure caused by the
#: upgrade, and damage the store already had (the upgrade cannot be vouched for)
FAILING: frozenset[str] = frozenset({"fail", "pre-existing"})
#: "error": the check could not be made (the store's own release cannot read that
#: part, or it belongs to no database a client can open). Not a verdict on the
#: upgrade, so it makes the run "could not validate" (exit 2) unless a check failed.
UNCHECKED: frozenset[str] = frozenset({"error"})

EXIT_SAFE = 0
EXIT_UNSAFE = 1
EXIT_INVALID = 2


@dataclass
class Check:
    """One named check, store-wide (``collection`` None) or for one collection."""

    name: str
    status: Status
    detail: str = ""
    collection: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass
class CollectionSummary:
    """Per-collection numbers for the report: counts and content digests.

    A digest is a sha256 (first 128 bits) over every record's id, document,
    metadata (types included) and float32 embedding, in the order the *source*
    release returns records, for both sides; so equal digests mean the target
    returns bit-identical records, and a digest is stable across runs of the same
    snapshot with the same source release, whatever the page size.
    """

    name: str
    source_count: int | None = None
    target_count: int | None = None
    records_compared: int = 0
    dimension: int | None = None
    space: str | None = None
    source_digest: str | None = None
    target_digest: str | None = None
    max_embedding_ulps: int = 0
    max_metadata_ulps: int = 0
    stream_seconds: float = 0.0  # reading and comparing every record (queries, filters, write excluded)


@dataclass
class Validation:
    """The whole result: verdict, source evidence, inventory, checks, collections."""

    source: dict[str, Any]  # location, kind, hash_before, hash_after, unchanged, objects, bytes
    source_release: str | None = None
    source_release_evidence: str = ""
    target_release: str | None = None
    direction: str | None = None  # upgrade | same | same schema | rollback
    path: str = "in-place"
    inventory: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    collections: list[CollectionSummary] = field(default_factory=list)
    contracts_crossed: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # set when the store could not be validated (exit 2)
    #: --allow-pre-existing: defects the store had before the upgrade are shown but do not fail validate
    allow_pre_existing: bool = False
    rollback: dict[str, Any] | None = None  # the reading release reopening the target's copy (validate.py)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.failed and not self._allowed(c)]

    def _allowed(self, check: Check) -> bool:
        return self.allow_pre_existing and check.status == "pre-existing"

    @property
    def allowed(self) -> list[Check]:
        """Pre-existing defects shown but not failed on (``--allow-pre-existing``)."""
        return [c for c in self.checks if self._allowed(c)]

    @property
    def tally(self) -> str:
        """ "21 pass, 1 info": how many checks ended in each status."""
        counts: dict[str, int] = {}
        for c in self.checks:
            counts[c.status] = counts.get(c.status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in counts.items())

    @property
    def findings(self) -> list[Check]:
        """What a reader must see: checks that failed and checks that could not be made, in order."""
        return [c for c in self.checks if c.failed or c.status in UNCHECKED]

    @property
    def unchecked(self) -> list[Check]:
        return [c for c in self.checks if c.status in UNCHECKED]

    @property
    def exit_code(self) -> int:
        """1 only when a release misbehaved on this data; what could not be checked is 2, never "safe"."""
        if self.error is not None:
            return EXIT_INVALID
        if self.source.get("unchanged") is False:
            return EXIT_INVALID  # the source changed under us: the copy we judged may be torn, no verdict
        if self.failed:
            return EXIT_UNSAFE
        return EXIT_INVALID if self.unchecked else EXIT_SAFE

    @property
    def verdict(self) -> str:
        return {EXIT_SAFE: "safe", EXIT_UNSAFE: "unsafe", EXIT_INVALID: "error"}[self.exit_code]

    @property
    def source_label(self) -> str:
        """The writer as the evidence has it: "1.0.0-1.2.2" when auto-detected, never the reading release alone."""
        versions = (self.inventory.get("writer_range") or {}).get("versions") or []
        if self.source_release_evidence.startswith("written by") and len(versions) > 1:
            return f"{versions[0]}-{versions[-1]}"
        return self.source_release or "?"

    @property
    def summary(self) -> str:
        pair = f"chromadb {self.source_label} -> {self.target_release or '?'}"
        if self.error is not None:
            return f"could not validate: {self.error}"
        if self.source.get("unchanged") is False:
            return f"{pair}: the source changed while it was copied (a live writer?); validate a quiescent snapshot"
        if not self.failed and self.unchecked:
            first = self.unchecked[0]
            where = f" in {first.collection!r}" if first.collection else ""
            return (
                f"{pair}: could not validate {len(self.unchecked)} part(s) of the store; first: "
                f"{first.name}{where}: {first.detail}"
            )
        if not self.failed:
            n = sum(c.records_compared for c in self.collections)
            passed = sum(c.status == "pass" for c in self.checks)
            allowed = self.allowed
            extra = (
                (
                    f"; {len(allowed)} pre-existing defect(s) in the store allowed (--allow-pre-existing), first: "
                    f"{allowed[0].name}{_where(allowed[0])}: {allowed[0].detail}"
                )
                if allowed
                else ""
            )
            rule = [c for c in self.checks if c.name == "rollback" and c.status == "info"]
            if rule:  # a downgrade the measured checks pass: the rule is said beside the verdict, as a caveat
                extra += f"; caveat: {rule[0].detail}"
            skipped = [c for c in self.checks if c.status == "skip"]
            if skipped:  # a check that did not run is said beside the verdict, never only in a tally
                extra += (
                    f"; {len(skipped)} check(s) skipped, first: {skipped[0].name}{_where(skipped[0])}: "
                    f"{skipped[0].detail}"
                )
            return (
                f"{pair}: safe to upgrade ({len(self.collections)} collection(s), {n} record(s) identical "
                f"within tolerance, {passed} check(s) passed){extra}"
            )
        first = self.failed[0]
        where = f" in {first.collection!r}" if first.collection else ""
        return f"{pair}: NOT safe, {len(self.failed)} check(s) failed; first: {first.name}{where}: {first.detail}"

    def to_json(self) -> dict[str, Any]:
        from pytest_chroma_compat import __version__

        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "pytest-chroma-compat", "version": __version__},
            "created": self.created,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "summary": self.summary,
            "error": self.error,
            "source": self.source,
            "releases": {
                "source": self.source_release,
                "source_evidence": self.source_release_evidence,
                "target": self.target_release,
                "direction": self.direction,
            },
            "path": self.path,
            "allow_pre_existing": self.allow_pre_existing,
            "rollback": self.rollback,
            "inventory": self.inventory,
            "checks": [asdict(c) for c in self.checks],
            "collections": [asdict(c) for c in self.collections],
            "contracts_crossed": self.contracts_crossed,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def _where(check: Check) -> str:
    return f" in {check.collection!r}" if check.collection else ""
