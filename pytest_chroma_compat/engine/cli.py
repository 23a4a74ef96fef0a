"""``chroma-compat env`` and ``chroma-compat releases``: the cached environments and the catalogue."""

from __future__ import annotations

import argparse
import json

from pytest_chroma_compat.cli.verb_args import say as _say
from pytest_chroma_compat.common.errors import EXIT_OK, CompatError


def register(sub: argparse._SubParsersAction) -> None:
    env = sub.add_parser("env", help="isolated environments, one per chromadb release")
    env_sub = env.add_subparsers(dest="env_command", required=True)
    ensure = env_sub.add_parser("ensure", help="install (or reuse) environments")
    ensure.add_argument(
        "versions",
        nargs="+",
        help="exact releases, a series like 0.5, or 'latest'; client-V for release V's thin chromadb-client package",
    )
    ensure.add_argument("--rebuild", action="store_true", help="rebuild even if present")
    ensure.set_defaults(handler=cmd_env_ensure)
    lst = env_sub.add_parser("list", help="environments in the cache")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_env_list)
    prune = env_sub.add_parser("prune", help="remove outdated, corrupt or unused environments")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="also remove those unused for DAYS")
    prune.set_defaults(handler=cmd_env_prune)

    rel = sub.add_parser("releases", help="the catalogue of chromadb releases")
    rel.add_argument("--refresh", action="store_true", help="rewrite the catalogue from the package index")
    rel.add_argument("--json", action="store_true")
    rel.set_defaults(handler=cmd_releases)


# -- env ------------------------------------------------------------------------------------


def cmd_env_ensure(args: argparse.Namespace) -> int:
    import time

    from pytest_chroma_compat.engine import envs
    from pytest_chroma_compat.servers.skew import parse_client

    empty = [item for item in args.versions if not item.replace(",", " ").strip()]
    if empty:  # `env ensure ''` (a variable that was never set) did nothing and said nothing, exit 0
        raise CompatError("env ensure needs a release (such as 1.5.9, 0.5 or latest), not an empty name")
    wanted = [parse_client(part) for item in args.versions for part in item.split(",") if part.strip()]
    for kind, version in wanted:  # checked first: a bad name is one line before any build
        started = time.monotonic()
        env = envs.ensure(version, rebuild=args.rebuild, note=_say, kind=kind)
        print(f"{env.label}\t{env.path}\t{time.monotonic() - started:.2f}s")
    return EXIT_OK


def cmd_env_list(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.engine import envs

    found = envs.list_envs()
    rows = [e.describe() if isinstance(e, envs.Environment) else {"error": str(e)} for e in found]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print("no environments yet: `chroma-compat env ensure VERSION` builds one")
    for row in rows:
        if "error" in row:
            print(f"corrupt\t{row['error']}")
            continue
        pins = ",".join(p["id"] for p in row["pins"]) or "-"
        print(f"{row['version']}\tpy{row['python']}\t{row['size_bytes'] / 2**20:.0f} MiB\tpins:{pins}\t{row['path']}")
    return EXIT_OK


def cmd_env_prune(args: argparse.Namespace) -> int:
    """Lists only what is really gone; anything that would not go is one error line (exit 2)."""
    import math

    from pytest_chroma_compat.engine import cache_dirs, envs, leftovers, project_envs

    if args.older_than is not None and not (math.isfinite(args.older_than) and args.older_than >= 0):
        raise CompatError(f"--older-than must be a number of days, 0 or more, not {args.older_than}")
    failed: list[tuple[str, str]] = []
    sizes: dict[str, int] = {}
    projects = cache_dirs.home() / "projects"
    before = leftovers.size_of(projects)
    removed = envs.prune(args.older_than, failed=failed, sizes=sizes) + project_envs.prune()
    if args.older_than is not None:  # kept runs (usercode/run_history.py) go by age only
        from pytest_chroma_compat.usercode import run_history

        removed += run_history.prune(args.older_than, sizes=sizes)
    freed = sum(sizes.values()) + max(0, before - leftovers.size_of(projects))
    for path in removed:
        print(f"removed {path}", flush=True)
    if removed:
        entries = "1 entry" if len(removed) == 1 else f"{len(removed)} entries"
        print(f"freed {freed / 2**20:.1f} MiB ({freed} bytes) in {entries}", flush=True)
    if failed:
        path, why = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise CompatError(
            f"could not remove {path}: {why}{more}; fix its permissions (or unmount what is "
            "mounted inside it) and run `chroma-compat env prune` again"
        )
    if not removed:
        print("nothing to prune")
    return EXIT_OK


# -- releases -------------------------------------------------------------------------------


def cmd_releases(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.engine import releases

    if args.refresh:
        n = releases.refresh()
        _say(f"catalogue rewritten: {n} releases")
    rows = releases.catalogue()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
        return EXIT_OK
    latest = set(releases.latest_per_minor())
    for r in rows:
        flags = " ".join(f for f, on in (("yanked", r.yanked), ("latest-of-minor", r.version in latest)) if on)
        print(f"{r.version}\t{r.uploaded}\t{flags}".rstrip())
    return EXIT_OK
