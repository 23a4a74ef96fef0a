"""How approximate is a healthy HNSW index? The numbers behind the ``query`` check's rule (``snapshot/query_check.py``).

For each release and data shape, a fresh store is written by that release and
read back by it: stored vectors are queried at n_results=10 and graded against
brute force (recall@10), checked for finding their own record (self-hit), and
those that missed are asked again at n_results=1000 (a quarter of the collection
at most): a record still missing is "lost". The intrinsic dimension is estimated
from the exact neighbour distances with the check's own estimator. With
``--damage SHARE`` a copy of each store gets ``SHARE`` of its records cut off
the HNSW graph (``fixtures/damaged_index.py``) and is measured again, read in
place by each ``--readers`` release.

    python benchmarks/query_health.py [--releases 0.4.24,0.6.3,1.0.21,1.5.9] [--sizes 1000,10000]
        [--kinds clustered48,random] [--spaces l2,cosine] [--dim 384] [--queries 500] [--m 16]
        [--damage 0.2 --readers 0.6.3,1.5.9] [--json FILE]

Measured (2 cores; 500-1000 queries): clustered48 (dimension 6-31): recall@10 0.98-1.0, self-hit 1.0, lost 0
on every release at 1k and 10k (0.1% at 100k); random 384-d (dimension 100-120): recall@10 0.54 (0.4.24,
search_ef 10) to 0.90 (0.6.3+, search_ef 100) for l2 and 0.68-0.80 for cosine at 10k, self-hit 0.59-0.92,
lost 1-2% at 10k and 13-16% at 100k; random 64-d at 100k: lost 0.6%. A fifth of the records cut off: lost 18-20%
on 0.6.3, 1.0.21 and 1.5.9 alike, id for id.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fixtures import damaged_index  # noqa: E402
from pytest_chroma_compat.engine.client import Release  # noqa: E402
from pytest_chroma_compat.snapshot.query_check import Queries, intrinsic_dimension  # noqa: E402

TIMEOUT = 3600.0


def _lid(result: dict) -> float | None:
    queries = Queries(result["query_ids"], np.zeros((len(result["query_ids"]), 0)), result["space"])
    for j, (ids, dists) in enumerate(result["neighbours"]):
        queries.best_ids[j], queries.best_d[j] = ids, np.asarray(dists)
    return intrinsic_dimension(queries)


def _measure(version: str, store: Path, names: list[str], queries: int) -> list[dict]:
    out = []
    with Release(version, timeout=TIMEOUT) as rel:
        client = rel.persistent(store)
        for name in names:
            got = rel.run(
                "_query_health_worker:measure",
                client=client,
                sys_path=[str(HERE)],
                name=name,
                queries=queries,
                deep=1000,
            )
            lid = _lid(got)
            row = {
                "reader": version,
                "collection": name,
                "dimension": None if lid is None else round(lid, 1),
                **{k: got[k] for k in ("n", "recall", "self_hit", "lost", "queries", "deep", "deep_error")},
            }
            print(
                f"  read by {version:7} {name:28} dim {row['dimension']!s:6} recall@10 {got['recall']:.3f} "
                f"self-hit {got['self_hit']:.3f} lost {got['lost']}/{got['queries']} at {got['deep']}"
                + (f" ({got['deep_error']})" if got["deep_error"] else ""),
                flush=True,
            )
            out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--releases", default="0.4.24,0.6.3,1.0.21,1.5.9")
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--kinds", default="clustered48,random")
    p.add_argument("--spaces", default="l2,cosine")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--m", type=int, default=16, help="hnsw:M of the collections written")
    p.add_argument("--damage", type=float, default=0.0, help="share of records to cut off the graph in a copy")
    p.add_argument("--readers", default="", help="releases that read the damaged copy (default: the writer)")
    p.add_argument("--json", help="write every row as JSON")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="query-health-") as tmp:
        for version in args.releases.split(","):
            store = Path(tmp) / version
            names = []
            with Release(version, timeout=TIMEOUT) as rel:
                client = rel.persistent(store)
                for size in map(int, args.sizes.split(",")):
                    for kind in args.kinds.split(","):
                        for space in args.spaces.split(","):
                            name = f"{kind}-{space}-{size}"
                            rel.run(
                                "_query_health_worker:write",
                                client=client,
                                sys_path=[str(HERE)],
                                name=name,
                                kind=kind,
                                space=space,
                                n=size,
                                dim=args.dim,
                                m=args.m,
                            )
                            names.append(name)
                client.close()
            print(f"written by {version}", flush=True)
            rows += [{"writer": version, "damaged": 0, **r} for r in _measure(version, store, names, args.queries)]
            if args.damage:
                for reader in (args.readers or version).split(","):
                    copy = Path(shutil.copytree(store, Path(tmp) / f"{version}-damaged-{reader}"))
                    for name in names:
                        damaged_index.unreachable(copy, name, args.damage)
                    print(f"written by {version}, {args.damage:.0%} of each index cut off", flush=True)
                    rows += [
                        {"writer": version, "damaged": args.damage, **r}
                        for r in _measure(reader, copy, names, args.queries)
                    ]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
