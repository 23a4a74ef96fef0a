"""Validate stores written by every minor series for every 1.x target; a table of measured verdicts.

    python scenarios/validate_matrix.py [--writers 0.3,0.4,...] [--targets 1.0,...,latest]
                                        [--markdown FILE] [--json FILE]

Each writer is the latest patch of its series and writes the same sample store
(fixtures/stores.py). Every cell is a real ``validate`` run; nothing in the
table is expected in advance. The run fails (exit 1) only if a store could not
be validated at all or a source changed, never because a verdict is "unsafe":
an unsafe verdict is a finding.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures import stores  # noqa: E402
from pytest_chroma_compat.engine import releases  # noqa: E402
from pytest_chroma_compat.engine.client import Release  # noqa: E402
from pytest_chroma_compat.snapshot import tree_hash  # noqa: E402
from pytest_chroma_compat.snapshot.validate import validate  # noqa: E402

WRITERS = "0.3,0.4,0.5,0.6,1.0,1.1,1.2,1.3,1.4,latest"
TARGETS = "1.0,1.1,1.2,1.3,1.4,latest"


def _cell(result) -> str:
    if result.error is not None:
        return f"could not validate: {result.error[:80]}"
    if not result.failed:
        return "safe"
    names = sorted({c.name for c in result.failed})
    return "NOT safe: " + ", ".join(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", default=WRITERS)
    parser.add_argument("--targets", default=TARGETS)
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    writers = [releases.resolve(v) for v in args.writers.split(",")]
    targets = [releases.resolve(v) for v in args.targets.split(",")]
    rows: dict[str, dict[str, dict]] = {}
    bad = 0
    with tempfile.TemporaryDirectory(prefix="validate-matrix-") as tmp:
        for writer in writers:
            store = Path(tmp) / writer
            with Release(writer) as release:
                stores.sample(release, store)
            before = tree_hash(store)
            rows[writer] = {}
            for target in targets:
                path = "export-import" if writer.startswith("0.3.") else "in-place"
                result = validate(str(store), target, path=path, workdir=Path(tmp) / "work")
                unchanged = tree_hash(store) == before and result.source.get("unchanged") is True
                bad += (result.error is not None) + (not unchanged)
                rows[writer][target] = {
                    "verdict": result.verdict,
                    "cell": _cell(result),
                    "path": path,
                    "source_unchanged": unchanged,
                    "summary": result.summary,
                }
                print(f"{writer:>7} -> {target:<7} [{path}] {_cell(result)}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"measured": date.today().isoformat(), "rows": rows}, indent=1) + "\n")
    if args.markdown:
        lines = [
            f"# Validate matrix (measured {date.today().isoformat()})",
            "",
            "A sample store written by each release (rows), validated for each target (columns) with "
            "`chroma-compat validate`; 0.3 stores through export/import, the others in place. "
            "Regenerate: `nox -s validate-matrix`.",
            "",
            "| written by | " + " | ".join(targets) + " |",
            "|---|" + "---|" * len(targets),
        ]
        for writer, cells in rows.items():
            lines.append(f"| {writer} | " + " | ".join(cells[t]["cell"] for t in targets) + " |")
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
