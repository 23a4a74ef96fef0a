"""``chroma-compat serve`` and ``chroma-compat skew``: real servers of any release, and the skew matrix.

    chroma-compat serve 0.6.3 [--port P] [--path DIR] [--auth token]
    chroma-compat skew --clients 0.4.24,1.5.9 --servers 0.6.3,1.5.9 [--markdown F] [--json F]

``serve`` prints one line on stdout (the URL, then the token when auth is on)
and runs until Ctrl-C or SIGTERM, which stop the server with its whole process
group and exit 130 or 143. ``skew`` exits 0 when every cell was measured
(compatible or not: the matrix is the answer) and 2 when some cell could not
be (a server that did not start, a client worker that failed). Bad input (an
unknown release, a port in use, a path that is a file): one line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pytest_chroma_compat.common.errors import EXIT_OK, CompatError, HarnessFault


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run a real server of a release on 127.0.0.1 until Ctrl-C",
        description="Run the release's own server (its cached environment) on 127.0.0.1.",
    )
    p.add_argument("version", help="the release (exact, a series such as 0.6, or latest)")
    p.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    p.add_argument("--path", help="data directory, created if missing (default: a private one, removed at exit)")
    p.add_argument(
        "--auth",
        choices=("token",),
        help="token auth the way the release's era documents it; the generated token is printed after the URL",
    )
    p.add_argument("--timeout", type=_positive, default=60.0, help="seconds to wait for the heartbeat (default 60)")
    p.add_argument(
        "--backend",
        choices=("local", "docker"),
        default="local",
        help="local: the release's cached environment (default); docker: its official image "
        "chromadb/chroma:<version> on your Docker engine",
    )
    p.add_argument(
        "--pull",
        action="store_true",
        help="with --backend docker: pull the image if it is absent (otherwise an absent image is an error)",
    )
    p.set_defaults(handler=cmd_serve)

    s = subparsers.add_parser(
        "skew",
        help="which client releases work against which server releases",
        description="Every client release's HttpClient against a fresh server of every "
        "server release: connect, heartbeat, version, collections, writes, "
        "filtered reads, query, count, delete.",
    )
    s.add_argument("--clients", required=True, nargs="+", help="client releases, comma- or space-separated")
    s.add_argument("--servers", required=True, nargs="+", help="server releases, comma- or space-separated")
    s.add_argument("--markdown", metavar="FILE", help="write the matrix as Markdown")
    s.add_argument("--json", metavar="FILE", help="write every cell's operations as JSON")
    s.add_argument(
        "--timeout",
        type=_positive,
        default=120.0,
        help="seconds a server start or a cell's client calls may take (default 120)",
    )
    s.set_defaults(handler=cmd_skew)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.servers import launcher

    if args.pull and args.backend != "docker":
        raise CompatError("--pull needs --backend docker")
    server = launcher.start(
        args.version,
        port=args.port,
        path=args.path,
        auth=args.auth,
        timeout=args.timeout,
        backend=args.backend,
        pull=args.pull,
    )
    try:
        where = f"data in {server.path}" + ("" if args.path else " (private: removed when the server stops)")
        _say(
            f"chromadb {server.version} server ({server.launcher}, heartbeat {server.api}/heartbeat); {where}; "
            "Ctrl-C stops it"
        )
        if server.token and server.auth_enforced is False:
            _say(
                f"warning: chromadb {server.version} ignores the token auth it was configured with: an "
                f"unauthenticated request was answered ({launcher.describe(server.version)['token_auth']})"
            )
        # the URL last: whoever waits for it (a script, a test) has every note already
        print(server.url + (f" token {server.token}" if server.token else ""), flush=True)
        while server.running():
            time.sleep(0.5)
        code = (
            server.exit_status()
            if server.backend == "docker"
            # type: ignore[attr-defined]
            else (server.proc.returncode if server.proc is not None else None)
        )
        how = f"was killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exited (status {code})"
        raise HarnessFault(
            f"chromadb {server.version} server {how}, not by chroma-compat; "
            f"its log ends: {' | '.join(server.log_tail(5).splitlines()) or '(empty)'}"
        )
    finally:
        server.stop()


def _versions(raw: list[str]) -> list[str]:
    from pytest_chroma_compat.engine import releases

    out = [releases.resolve(part) for item in raw for part in item.split(",") if part.strip()]
    if not out:
        raise CompatError("name at least one release")
    return list(dict.fromkeys(out))


def _report_path(value: str | None) -> str | None:
    if value:
        from pytest_chroma_compat.engine import cache_dirs

        cache_dirs.writable_dir(Path(value).expanduser().resolve().parent, "the report's folder", "choose another file")
        if Path(value).is_dir():
            raise CompatError(f"{value} is a directory; name a file")
    return value


def cmd_skew(args: argparse.Namespace) -> int:
    from pytest_chroma_compat.common.progress import bar
    from pytest_chroma_compat.servers import skew

    clients, server_list = skew.client_names(args.clients), _versions(args.servers)
    markdown, json_path = _report_path(args.markdown), _report_path(args.json)

    def show(cell: skew.Cell) -> None:
        print(f"client {cell.client} -> server {cell.server}: {cell.text}", flush=True)

    with bar(True) as progress:
        result = skew.run(clients, server_list, timeout=args.timeout, progress=progress, on_cell=show)
    command = f"chroma-compat skew --clients {','.join(clients)} --servers {','.join(server_list)}"
    command += (f" --markdown {args.markdown}" if args.markdown else "") + (f" --json {args.json}" if args.json else "")
    skew.write(result, markdown_path=markdown, json_path=json_path, command=command)
    counts = {v: sum(c.verdict == v for c in result.cells) for v in (skew.COMPATIBLE, skew.INCOMPATIBLE, skew.UNKNOWN)}
    _say(f"{len(result.cells)} cells in {result.seconds:g} s: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    for version, answer in result.auth.items():  # the reason for an exit 2 the cells do not explain
        if answer.get("error"):
            _say(f"token auth of chromadb {version} could not be checked: {answer['error']}")
    return result.exit_code if result.exit_code else EXIT_OK
