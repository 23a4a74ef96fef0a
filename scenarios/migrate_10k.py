"""Issue 14's proof for ``chroma-compat migrate --verify``: 10k records x 384-d, both ways across eras.

    python scenarios/migrate_10k.py [--records 10000] [--markdown docs/migrate.md] [--json FILE]

1. a 0.6.3 server (real, ``servers/launcher.py``) holding the store -> a new 1.5.9 persistent directory;
2. a 0.4.24 persistent directory -> a 1.5.9 server.
The store is shaped like a receipts application's: structured ids, str/int/float
metadata, documents, written by batched upsert plus single-record updates, l2
(the default) and one cosine collection. Every number on the page comes from the
real ``chroma-compat migrate`` command run here; exit 1 if a move is not verified.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_chroma_compat.engine.client import Release  # noqa: E402
from pytest_chroma_compat.servers import launcher  # noqa: E402
from pytest_chroma_compat.snapshot.sources import tree_hash  # noqa: E402

DIM = 384
COLLECTIONS = {"receipt_words": {}, "receipt_lines": {"hnsw:space": "cosine"}}


def fill(client, n: int, seed: int) -> None:
    """n records over the collections, batched upserts of 500 and one update per 1000 records."""
    rng = np.random.default_rng(seed)
    share = {"receipt_words": n - n // 5, "receipt_lines": n // 5}
    for name, metadata in COLLECTIONS.items():
        col = client.create_collection(name, metadata=metadata or None)
        count = share[name]
        ids = [
            f"IMAGE#{uuid.UUID(int=int(rng.integers(1 << 62)))}#RECEIPT#{i // 40:05d}#LINE#{i % 40:05d}"
            for i in range(count)
        ]
        for start in range(0, count, 500):
            end = min(start + 500, count)
            col.upsert(
                ids=ids[start:end],
                embeddings=rng.standard_normal((end - start, DIM)).astype(np.float32),
                documents=[f"word {i} of receipt {i // 40}" for i in range(start, end)],
                metadatas=[
                    {
                        "receipt": i // 40,
                        "line": i % 40,
                        "confidence": float(np.float32(rng.random())),
                        "label": ["TOTAL", "DATE", "ITEM"][i % 3],
                    }
                    for i in range(start, end)
                ],
            )
        for i in range(0, count, 1000):
            col.update(
                ids=[ids[i]], metadatas=[{"receipt": i // 40, "line": i % 40, "confidence": 1.0, "label": "VERIFIED"}]
            )


def migrate(source: str, target: str, *extra: str, report: Path) -> dict:
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chroma_compat",
            "migrate",
            source,
            target,
            "--verify",
            "--json",
            str(report),
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    print(proc.stdout + proc.stderr, flush=True)
    data = json.loads(report.read_text()) if report.exists() else {}
    return {
        "exit": proc.returncode,
        "seconds": round(seconds, 1),
        "stderr_last": proc.stderr.strip().splitlines()[-1],
        "report": data,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--markdown", default="docs/migrate.md")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="migrate-10k-") as tmp:
        work = Path(tmp)
        with launcher.serve("0.6.3") as server:
            with Release("0.6.3") as rel:
                fill(rel.http(server.host, server.port), args.records, 1)
            runs["0.6.3 server -> 1.5.9 directory"] = migrate(
                server.url, str(work / "new-1.5.9"), "--target-version", "1.5.9", report=work / "a.json"
            )
        store = work / "store-0.4.24"
        with Release("0.4.24") as rel:
            client = rel.persistent(store)
            fill(client, args.records, 2)
            client.close()
        before = tree_hash(store)
        with launcher.serve("1.5.9") as server:
            runs["0.4.24 directory -> 1.5.9 server"] = migrate(
                str(store), server.url, "--target-version", "1.5.9", report=work / "b.json"
            )
        runs["0.4.24 directory -> 1.5.9 server"]["source unchanged"] = tree_hash(store) == before
    lines = [
        "# `chroma-compat migrate --verify`, measured",
        "",
        f"Generated {date.today()} by `python scenarios/migrate_10k.py --records {args.records}` "
        "(`nox -s migrate-10k`). Each store holds "
        f"{args.records} records x {DIM}-d float32 in two collections (`receipt_words`: l2, 80%; "
        "`receipt_lines`: cosine, 20%), structured ids, str/int/float metadata and documents, written by "
        "batched upserts and single-record updates. Every row is one real `chroma-compat migrate SOURCE TARGET "
        "--verify` run.",
        "",
        "| move | exit | seconds | collection | records | source digest | target digest | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    for move, run in runs.items():
        ok &= run["exit"] == 0 and run.get("source unchanged", True)
        for v in run["report"].get("verified") or []:
            if not v["ok"]:
                verdict = "DIFFERS: " + "; ".join(v["differences"])
            elif v["source_digest"] == v["target_digest"]:
                verdict = "digests match"
            else:
                verdict = (
                    f"digests match once {v['release_changes']} records are taken as the target release stores "
                    f"them (`{v['expected_digest']}`): e.g. {v['release_examples'][0]}"
                )
            lines.append(
                f"| {move} | {run['exit']} | {run['seconds']} | {v['label']} | {v['target_count']} | "
                f"`{v['source_digest']}` | `{v['target_digest']}` | {verdict} |"
            )
    lines += [
        "",
        "Why a cosine collection's digests differ: chromadb stores a cosine collection's vectors normalized "
        "in its HNSW index and returns them rescaled, up to one float32 step away from what was written "
        "(1.x as it writes them, 0.x once its index is flushed). `--verify` writes each changed record into a "
        "fresh collection of the target release; when that release returns exactly the values the target "
        "holds, the change is the release's own, not the move's. The source is then read again with those "
        "records replaced by the target release's values, and that digest must equal the target's. The same "
        "holds for float metadata: 1.x stores some float64 values one or two steps off (0.9421136975288391 "
        "comes back 0.9421136975288392 from chromadb 1.5.9 whoever writes it; 0.6.3 keeps it). Any other "
        "difference exits 1.",
        "",
    ]
    Path(args.markdown).write_text("\n".join(lines), "utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1), "utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
