"""The client/server skew matrix: which client releases work against which server releases.

Why it is built this way:
- Each cell is a real client release (its full ``chromadb`` package, or with
  ``client-V`` its thin ``chromadb-client`` package, each in its own
  environment, through its worker) against a real server release started for
  that cell alone (``servers/launcher.py``): a collection left behind by one client,
  or a server a previous client broke, cannot decide another cell. The thin
  package is a client of its own: it is what AWS Lambda users install, and it
  resolves other dependencies than the full package of the same release.
- The client is built the way its users build it (release_side/
  engine/release_side/chroma_compat_skew_ops.py: ``chromadb.HttpClient(host, port)``, nothing
  added), every HTTP exchange is observed, and every operation's answer is
  checked against the data. A cell is "compatible" when every operation
  answered right; otherwise "incompatible" with the first failing operation,
  the client's exception and the status and body the server sent.
- A cell the harness could not measure (a server that does not start, a
  worker that dies or hangs) is "could not check", never a verdict.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pytest_chroma_compat.common.errors import ChromaError, CompatError, HarnessFault, WorkerError
from pytest_chroma_compat.servers import launcher as servers

if TYPE_CHECKING:
    from pytest_chroma_compat.engine.client import Release

RELEASE_SIDE = Path(__file__).resolve().parent.parent / "engine" / "release_side"
TARGET = "chroma_compat_skew_ops:exercise"
CELL_TIMEOUT = 120.0
COMPATIBLE, INCOMPATIBLE, UNKNOWN = "compatible", "incompatible", "could not check"
# What a server's environment resolved to can decide a cell as much as its chromadb release. A note is
# printed under the matrix for a server whose environment matches (package, specifier) AND whose column
# shows the symptom (a regular expression over its cells' failures): evidence, not a guess.
SERVER_NOTES: tuple[dict, ...] = (
    {
        "package": "fastapi",
        "versions": ">=0.132",
        "seen": r"HTTP 422 .*Input should be a valid dictionary",
        "note": "FastAPI 0.132 rejects JSON bodies sent without a Content-Type (`strict_content_type`), and older "
        "HttpClients send none: the HTTP 422 cells of this server are its environment's FastAPI, installed "
        "today by pip, not its chromadb release.",
    },
)
#: A client spelled ``client-V`` is release V's thin ``chromadb-client`` package (V: anything
#: ``releases.resolve_thin`` takes: 0.6.3, 0.6, latest); a bare V is the full ``chromadb`` package.
THIN_PREFIX = "client-"
OPERATIONS = (
    "connect",
    "heartbeat",
    "version",
    "create_collection",
    "get_collection",
    "list_collections",
    "add",
    "upsert",
    "get_where",
    "query",
    "count",
    "delete",
    "delete_collection",
)


@dataclass
class Cell:
    client: str
    server: str
    verdict: str
    failure: str = ""
    operations: list[dict] = field(default_factory=list)
    server_info: dict = field(default_factory=dict)
    seconds: float = 0.0
    client_info: dict = field(default_factory=dict)  # the package the worker measured, its transports

    @property
    def text(self) -> str:
        return self.verdict if self.verdict == COMPATIBLE else f"{self.verdict}: {self.failure}"


@dataclass
class Skew:
    clients: list[str]
    servers: list[str]
    cells: list[Cell]
    seconds: float = 0.0
    # server release -> what an unauthenticated request got from it started with token auth (see token_auth)
    auth: dict[str, dict] = field(default_factory=dict)

    def cell(self, client: str, server: str) -> Cell:
        return next(c for c in self.cells if c.client == client and c.server == server)

    @property
    def exit_code(self) -> int:
        """0 when every cell and every server's token auth was measured (compatible or not, enforced or
        not: the page is the answer), 2 otherwise: a server that did not start is ours to explain."""
        unmeasured = any(answer.get("error") for answer in self.auth.values())
        return 2 if unmeasured or any(c.verdict == UNKNOWN for c in self.cells) else 0


def describe_error(op: str, error: dict, limit: int = 400) -> str:
    """``op: HTTP status METHOD path: Type: message``: the server's answer, then the client's words
    (``limit`` characters of each message or body at most)."""
    message = _clip(" ".join(str(error.get("message", "")).split()), limit)
    client_side = f"{error.get('type', 'Exception')}: {message}"
    http = error.get("http") or {}
    if http.get("status", 0) >= 400:
        body = " ".join(str(http.get("body", "")).split())
        shown = f" {_clip(body, limit)}" if body and body[:60] not in message else ""
        return f"{op}: HTTP {http['status']} {http.get('method', '?')} {http.get('path', '?')}{shown}: {client_side}"
    if http:  # the server did what was asked; the client could not read its answer
        return (
            f"{op}: {client_side} (the server answered HTTP {http['status']} to {http.get('method', '?')} "
            f"{http.get('path', '?')})"
        )
    return f"{op}: {client_side}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "..."


def first_failure(operations: list[dict], limit: int = 400) -> str:
    for op in operations:
        if op.get("ok") is False:
            return describe_error(op["op"], op.get("error") or {}, limit)
    return ""


def parse_client(spec: str) -> tuple[str, str]:
    """(environment kind, exact release) of a client as typed: ``0.6.3`` is the full package,
    ``client-0.6.3`` the thin one; a release that published no thin package is one line."""
    from pytest_chroma_compat.engine import releases

    spec = spec.strip()
    if spec.startswith(THIN_PREFIX):
        return "client", releases.resolve_thin(spec[len(THIN_PREFIX) :])
    return "full", releases.resolve(spec)


def client_name(kind: str, version: str) -> str:
    """A client's name in cells and JSON: the full package's is its version, as before thin clients."""
    return version if kind == "full" else f"{THIN_PREFIX}{version}"


def client_names(raw: Iterable[str]) -> list[str]:
    """``--clients`` as typed (comma- or space-separated) made exact: ``0.6,client-latest`` ->
    ``["0.6.3", "client-1.5.9"]``. For the CLI to check its input before any work."""
    out = [client_name(*parse_client(part)) for item in raw for part in item.split(",") if part.strip()]
    if not out:
        raise CompatError("name at least one client release")
    return _unique(out)


def client_label(name: str) -> str:
    """How the page names a client: ``0.6.3`` (the full package), ``chromadb-client 0.6.3``."""
    from pytest_chroma_compat.engine.envs import PACKAGES

    return f"{PACKAGES['client']} {name[len(THIN_PREFIX) :]}" if name.startswith(THIN_PREFIX) else name


def run_cell(
    client: Release, server_version: str, *, timeout: float = CELL_TIMEOUT, headers: dict | None = None
) -> Cell:
    """One client release (its worker) against a fresh server of ``server_version``."""
    from pytest_chroma_compat.engine.envs import PACKAGES

    started = time.monotonic()
    name = client_name(client.kind, client.version)
    try:
        server = servers.start(server_version, timeout=timeout)
    except HarnessFault as exc:
        return Cell(
            name,
            server_version,
            UNKNOWN,
            f"the server did not start: {_one_line(exc)}",
            seconds=round(time.monotonic() - started, 2),
        )
    info = {
        "launcher": server.launcher,
        "reported_version": server.reported_version,
        "packages": _server_packages(server_version),
    }
    try:
        result = client.run(
            TARGET, sys_path=[str(RELEASE_SIDE)], host=server.host, port=server.port, headers=headers or server.headers
        )
    except (ChromaError, WorkerError, HarnessFault) as exc:
        return Cell(
            name,
            server_version,
            UNKNOWN,
            f"the client's worker failed: {_one_line(exc)}",
            server_info=info,
            seconds=round(time.monotonic() - started, 2),
        )
    finally:
        if not server.running():  # the server died under the client: that is an answer, keep its words
            info["server_exit"] = server.cause() or server.log_tail(1)
        server.stop()
    operations = result["operations"]
    client_info = {k: result[k] for k in ("client", "distribution", "transports") if k in result}
    ran = client_info.get("distribution", {})
    if (ran.get("name"), ran.get("version")) != (PACKAGES[client.kind], client.version):
        return Cell(
            name,
            server_version,
            UNKNOWN,
            f"the client's worker ran {ran.get('name')} {ran.get('version')}, "
            f"not {PACKAGES[client.kind]} {client.version}",
            operations,
            info,
            round(time.monotonic() - started, 2),
            client_info,
        )
    failure = first_failure(operations)
    if "server_exit" in info:
        failure = f"{failure or 'every operation answered'}; then the server exited: {info['server_exit']}"
    return Cell(
        name,
        server_version,
        INCOMPATIBLE if failure else COMPATIBLE,
        failure,
        operations,
        info,
        round(time.monotonic() - started, 2),
        client_info,
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]


def _server_packages(version: str) -> dict:
    """What the server's environment resolved to: a 0.x server's FastAPI decides what it accepts."""
    from pytest_chroma_compat.engine import envs

    packages = envs.ensure(version).packages
    return {k: packages[k] for k in ("chromadb", "fastapi", "uvicorn", "pydantic") if k in packages}


def run(
    clients: Iterable[str],
    server_versions: Iterable[str],
    *,
    timeout: float = CELL_TIMEOUT,
    progress: Callable[[str, int, int], None] | None = None,
    on_cell: Callable[[Cell], None] | None = None,
) -> Skew:
    """Every client against every server; environments are built first, once each.

    A client is a release (the full package) or ``client-V`` (its thin package, ``THIN_PREFIX``)."""
    from pytest_chroma_compat.engine import envs, releases
    from pytest_chroma_compat.engine.client import Release

    specs = {client_name(*spec): spec for spec in (parse_client(v) for v in clients)}
    client_versions = list(specs)
    server_list = _unique(releases.resolve(v) for v in server_versions)
    if not client_versions or not server_list:
        raise CompatError("the skew matrix needs at least one client and one server release")
    started = time.monotonic()
    for kind, version in dict.fromkeys([*specs.values(), *(("full", v) for v in server_list)]):
        envs.ensure(version, kind=kind)  # an install failure is one line (exit 2) before any server starts
    total = len(client_versions) * len(server_list)
    cells: list[Cell] = []
    handles = {name: Release(version, kind=kind, timeout=timeout) for name, (kind, version) in specs.items()}
    try:
        for server_version in server_list:
            for client_version in client_versions:
                if progress:
                    progress("skew", len(cells), total)
                cell = run_cell(handles[client_version], server_version, timeout=timeout)
                cells.append(cell)
                if on_cell:
                    on_cell(cell)
        if progress:
            progress("skew", total, total)
        auth = {version: token_auth(version) for version in server_list}
    finally:
        for handle in handles.values():
            handle.close()
    return Skew(client_versions, server_list, cells, round(time.monotonic() - started, 1), auth)


def token_auth(version: str) -> dict:
    """Start ``version`` configured for token auth the way its era documents it, and ask it without the token.

    Why in the skew page: 1.0 dropped built-in auth, and a server still configured for it answers
    everyone; upgrading the server then opens the data to any client that can reach it, which no
    client/server cell shows (every cell passes). Measured on each run, never taken from a table.
    """
    try:
        with servers.serve(version, auth="token") as server:
            path = server.data_path()
            status = server.status(path)
            with_token = server.status(path, server.headers)
    except (CompatError, OSError) as exc:
        return {"enforced": None, "error": _one_line(exc)}
    enforced = True if status in (401, 403) else False if 200 <= status < 300 else None
    return {"enforced": enforced, "without_token": status, "with_token": with_token, "path": path}


def auth_words(answer: dict) -> str:
    if answer.get("error"):
        return f"could not be checked: {answer['error']}"
    if answer["enforced"] is None:
        return f"unclear: HTTP {answer['without_token']} without the token"
    if answer["enforced"]:
        return f"refused (HTTP {answer['without_token']}; {answer['with_token']} with the token)"
    return (
        f"**answered (HTTP {answer['without_token']}): the configured token auth is ignored**; anyone who "
        f"can reach this server reads and writes its data"
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -- reports -------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(skew: Skew, *, command: str = "", json_name: str | None = None) -> str:
    """Clients down, servers across; each incompatible cell names its first failing operation."""
    lines = ["# Client/server skew", ""]
    if command:
        lines += [f"Generated by `{command}` in {skew.seconds:g} s.", ""]
    lines += [
        "Each cell: the client release's own `chromadb.HttpClient` (full `chromadb` package, its own "
        "environment; a row `chromadb-client V` is release V's thin HTTP-only `chromadb-client` package, "
        "in an environment of its own) against a fresh server of the column's release on 127.0.0.1, running "
        f"{', '.join(OPERATIONS)}; every answer is checked against the data. An incompatible cell "
        "shows the first failing operation, the HTTP status and body the server sent, and the client's "
        "exception. Servers run from their release's environment as `pip` resolves it today under the "
        "pin rules of engine/pins.toml (see below); "
        "`chroma-compat serve VERSION` starts any of them, `nox -s skew` regenerates this page.",
        "",
        "| client \\ server | " + " | ".join(skew.servers) + " |",
        "|---|" + "---|" * len(skew.servers),
    ]
    for client in skew.clients:
        row = []
        for server in skew.servers:
            cell = skew.cell(client, server)
            if cell.verdict == COMPATIBLE:
                row.append("compatible")
            else:
                short = first_failure(cell.operations, limit=110) or cell.failure
                row.append(f"**{cell.verdict}**: {_md_escape(short)}")
        lines.append(f"| {client_label(client)} | " + " | ".join(row) + " |")
    if skew.auth:
        lines += [
            "",
            "Token auth, configured the way each server's era documents it (`chroma-compat serve VERSION "
            "--auth token`), and a request sent without the token:",
            "",
            "| server | unauthenticated request |",
            "|---|---|",
        ]
        lines += [
            f"| {server} | {_md_escape(auth_words(skew.auth[server]))} |"
            for server in skew.servers
            if server in skew.auth
        ]
    lines += ["", "Servers (how each was started and what its environment resolved to):", ""]
    for server in skew.servers:
        infos = [c.server_info for c in skew.cells if c.server == server and c.server_info]
        if not infos:
            continue
        info = infos[0]
        packages = ", ".join(f"{k} {v}" for k, v in sorted(info.get("packages", {}).items()))
        lines.append(
            f"- {server}: `{info.get('launcher')}`, reports version `{info.get('reported_version')}`; {packages}"
        )
        failures = [c.failure for c in skew.cells if c.server == server and c.failure]
        lines += [f"  - {note}" for note in server_notes(info.get("packages", {}), failures)]
    if json_name:
        lines += [
            "",
            f"Every operation of every cell, with timings and the HTTP exchange of each failure: "
            f"[{Path(json_name).name}]({json_name}).",
        ]
    lines.append("")
    return "\n".join(lines)


def server_notes(packages: dict, failures: list[str]) -> list[str]:
    import re

    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    out = []
    for row in SERVER_NOTES:
        try:
            installed = packages.get(row["package"])
            if installed is None or Version(installed) not in SpecifierSet(row["versions"]):
                continue
        except InvalidVersion:
            continue
        if any(re.search(row["seen"], text) for text in failures):
            out.append(row["note"])
    return out


def to_json(skew: Skew) -> dict:
    return {
        "clients": skew.clients,
        "servers": skew.servers,
        "seconds": skew.seconds,
        "operations": list(OPERATIONS),
        "cells": [asdict(c) for c in skew.cells],
        "token_auth": skew.auth,
    }


def write(skew: Skew, *, markdown_path: str | None = None, json_path: str | None = None, command: str = "") -> None:
    if markdown_path:
        link = os.path.relpath(Path(json_path).resolve(), Path(markdown_path).resolve().parent) if json_path else None
        Path(markdown_path).write_text(markdown(skew, command=command, json_name=link))
    if json_path:
        Path(json_path).write_text(json.dumps(to_json(skew), indent=1, default=repr) + "\n")
