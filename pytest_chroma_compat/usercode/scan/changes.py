"""Where each contract's measured value changes, kept as data for the scan (``usercode/scan/changes.json``).

Why a file: measuring 92 releases takes minutes and needs every release environment; a scan
must be cheap and offline. ``derive`` turns ``measure.histories`` output into the file, and
``python -m pytest_chroma_compat.usercode.scan.changes`` rewrites it from the cached observations.
Contracts that share a probe (list_collections: names in 0.6, objects in 1.0) each *own* the
changes that fall on their documented release, as measure.attribute does for a pair.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_chroma_compat.common.errors import CompatError

CHANGES = Path(__file__).with_name("changes.json")
RANGE = ">=0.3.29"  # the range docs/contracts.md was measured over


def derive(hist: Iterable[Any], versions: list[str]) -> dict:
    """The scan's view of ``measure.histories``: per contract its runs of equal values, every
    measured change, and the changes it owns (all of them unless a sibling on the probe documents one)."""
    from packaging.version import Version

    from pytest_chroma_compat.contracts.measure import documented_release

    hist = [h for h in hist if h.contract.probe]
    documented = {h.contract.id: documented_release(h.contract.documented)[0] for h in hist}
    out: dict[str, Any] = {"versions": versions, "contracts": {}}
    for h in hist:
        siblings = [o.contract.id for o in hist if o.contract.probe == h.contract.probe]

        def owners(ch: dict) -> list[str]:
            return [
                cid
                for cid in siblings  # noqa: B023  (owners is called within this iteration only)
                if documented[cid] and Version(ch["after"]) < Version(documented[cid]) <= Version(ch["at"])
            ]

        out["contracts"][h.contract.id] = {
            "probe": h.contract.probe,
            "changes": [ch["at"] for ch in h.changes],
            "owned": [ch["at"] for ch in h.changes if h.contract.id in (owners(ch) or siblings)],
            "runs": [{"first": r["first"], "last": r["last"], "value": r["value"]} for r in h.runs],
        }
    return out


def regenerate(path: Path = CHANGES) -> dict:
    """Rewrite ``usercode/scan/changes.json`` from the observation cache (measuring whatever is missing)."""
    from pytest_chroma_compat.contracts.measure import histories, observe_many
    from pytest_chroma_compat.engine import releases

    versions = releases.select(RANGE)
    observations = observe_many(versions, jobs=2)
    failed = sorted(v for v, o in observations.items() if o.failures)
    if failed:
        raise CompatError(f"probes could not run on {', '.join(failed)}: not writing {path}")
    doc = derive(histories(versions, observations), versions)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    return doc


@lru_cache(maxsize=1)
def load() -> dict:
    try:
        return json.loads(CHANGES.read_text())
    except (OSError, ValueError) as exc:
        raise CompatError(f"scan: cannot read the measured changes {CHANGES}: {exc}") from None


if __name__ == "__main__":
    regenerate()
    print(f"wrote {CHANGES}", file=sys.stderr)
