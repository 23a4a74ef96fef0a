"""What ``migrate``'s SOURCE and TARGET are, and which release reads or writes each.

A side is a persistent directory (a source may also be an archive or an S3
prefix, copied privately as ``validate`` copies it) or a server URL. The
release that talks to a side is measured, never guessed from the command line:
a server is asked its version (its own release is the one client every skew
measurement finds compatible), a store's schema names the releases that could
have written it (``snapshot/writers.py``). ``--source-version`` and
``--target-version`` override, and a directory that does not exist yet needs
``--target-version``: nothing else says which release should write it.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.common.scopes import DEFAULT_SCOPE, Scope
from pytest_chroma_compat.engine import releases

#: where each era answers its version (1.x: v2 only; 0.4-0.5: v1; 0.6: both)
VERSION_PATHS = ("/api/v2/version", "/api/v1/version")
#: ``$NAME`` in a header value is read from the environment, so a token stays off the command line (`ps`)
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class TransferError(CompatError):
    """A side cannot be used as asked: one line, exit 2."""


@dataclass
class Side:
    """One end of a transfer. ``path`` is the private copy for a directory source."""

    role: str  # "source" or "target"
    spec: str  # as typed
    kind: str  # "directory" or "server"
    version: str = ""
    evidence: str = ""
    path: Path | None = None
    host: str = ""
    port: int = 0
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    scopes: list[Scope] = field(default_factory=lambda: [DEFAULT_SCOPE])
    readers: list[str] = field(default_factory=list)  # other releases that can read a source store

    @property
    def label(self) -> str:
        where = self.spec if self.kind == "directory" else f"server {self.host}:{self.port}"
        return f"{where} (chromadb {self.version})"

    @property
    def identity(self) -> str:
        """What names this side across runs (the journal's key): a resolved path or host:port."""
        return str(Path(self.spec).expanduser().resolve()) if self.kind == "directory" else f"{self.host}:{self.port}"


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def parse_headers(values: list[str] | None) -> dict[str, str]:
    """``Name: value`` pairs; ``$VAR`` in a value is read from the environment. Never printed."""
    out: dict[str, str] = {}
    for raw in values or []:
        name, sep, value = raw.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise TransferError(f"a header is 'Name: value', not {raw.split(':')[0]!r}...")
        for var in _VARIABLE.findall(value):
            if var not in os.environ:
                raise TransferError(f"header {name} reads ${var}, which is not set")
        out[name] = _VARIABLE.sub(lambda m: os.environ[m.group(1)], value)
    return out


def parse_url(spec: str, header_flag: str = "--target-header") -> tuple[str, int]:
    try:
        parts = urllib.parse.urlsplit(spec)
    except ValueError:  # "http://[::1": an unclosed IPv6 bracket (before: exit 3)
        raise TransferError(f"{spec}: not a server URL; give a server as http://host:port") from None
    if parts.username is not None or parts.password is not None:
        # refused, not dropped: a server that needs them would answer "forbidden" with no word why, and
        # a URL is printed, logged and seen in `ps`; the message never repeats them
        where = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if _port_ok(parts) else "")
        raise TransferError(
            f"{where}: credentials in the URL (user:password@) are not used; give the host as "
            f"http://host:port and the credentials as a header, e.g. {header_flag} "
            "'Authorization: Basic $CREDENTIALS' or 'Authorization: Bearer $TOKEN'"
        )
    if parts.scheme == "https":
        raise TransferError(f"{spec}: https servers are not supported yet (use http:// on a trusted network)")
    if parts.path not in ("", "/") or parts.query or not parts.hostname:
        raise TransferError(f"{spec}: give a server as http://host:port, with no path")
    try:
        port = parts.port or 8000
    except ValueError:
        raise TransferError(f"{spec}: the port is not a number from 1 to 65535") from None
    return parts.hostname, port


def _port_ok(parts: urllib.parse.SplitResult) -> bool:
    try:
        return parts.port is not None
    except ValueError:
        return False


def identity(spec: str) -> str:
    """What names a side across runs before it is opened (``Side.identity``): host:port or a resolved path."""
    if is_url(spec):
        host, port = parse_url(spec)
        return f"{host}:{port}"
    return str(Path(spec).expanduser().resolve())


#: what a release raises when a server refuses its credentials (0.4: HTTP 401/403 through requests;
#: 0.5-0.6: ChromaAuthError "Forbidden"; 1.x behind an auth proxy: 401/403), by type and by message
_AUTH_TYPES = re.compile(r"Auth|Unauthori[sz]ed|Forbidden")
_AUTH_WORDS = re.compile(r"\b(401|403)\b|Unauthori[sz]ed|Forbidden|[Aa]uthenticat|[Aa]uthori[sz]")


def auth_refusal(exc: Exception, side: Side, flag: str) -> TransferError | None:
    """The one-line refusal for an error that says the server refused our credentials, else None."""
    kind = getattr(exc, "qualified_type", type(exc).__name__)
    message = getattr(exc, "message", str(exc)).splitlines()[0][:120] if str(exc) else ""
    if not (_AUTH_TYPES.search(kind) or _AUTH_WORDS.search(message)):
        return None
    given = "refused the credentials given with" if side.headers else "needs credentials: pass them with"
    return TransferError(
        f"the {side.role} server {side.host}:{side.port} {given} {flag} ({kind}: {message}); "
        f"e.g. {flag} 'Authorization: Bearer $TOKEN' (or 'X-Chroma-Token: $TOKEN', as the "
        "server is configured)"
    )


def parse_database(text: str) -> Scope:
    tenant, sep, database = text.partition("/")
    if not sep or not tenant or not database or "/" in database:
        raise TransferError(f"--database takes TENANT/DATABASE, not {text!r}")
    return (None, None) if (tenant, database) == ("default_tenant", "default_database") else (tenant, database)


def server_version(
    host: str, port: int, headers: dict[str, str], timeout: float = 10.0, header_flag: str = "--target-header"
) -> str:
    """The version the server reports; what answers decides the API era, not a guess.
    A server (or the proxy before it) that answers only 401/403 needs credentials: said so, with the flag."""
    problems = []
    for path in VERSION_PATHS:
        request = urllib.request.Request(f"http://{host}:{port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http to the user's server
                body = response.read(1000).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            problems.append(f"{path}: HTTP {exc.code}")
            continue
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransferError(f"no Chroma server answers at http://{host}:{port} ({reason})") from None
        try:
            version = json.loads(body)
        except ValueError:
            version = body.strip()
        if isinstance(version, str) and version:
            return version
        problems.append(f"{path}: answered {body[:60]!r}")
    if problems and all(p.endswith(("HTTP 401", "HTTP 403")) for p in problems):
        given = "refused the credentials given with" if headers else "needs credentials: pass them with"
        raise TransferError(
            f"the server http://{host}:{port} {given} {header_flag} ({'; '.join(problems)}); "
            f"e.g. {header_flag} 'Authorization: Bearer $TOKEN'"
        )
    raise TransferError(f"http://{host}:{port} does not say which Chroma release it is ({'; '.join(problems)})")


#: Versions a server reports that do not name its release: every 1.x server's Rust frontend answers
#: "1.0.0" (measured on 1.0.21 and 1.5.9, docs/skew.md). Such a server is talked to with the newest
#: release of ``series``, whose client docs/skew.md measures compatible with every 1.x server.
AMBIGUOUS_REPORTS: dict[str, dict[str, str]] = {
    "1.0.0": {"series": ">=1.0.0", "why": "every 1.x server reports 1.0.0 whatever its release"},
}


def server_release(reported: str, given: str | None, role: str, flag: str) -> tuple[str, str]:
    """(the release that talks to a server, why): ``given`` when the report allows it."""
    from packaging.specifiers import SpecifierSet

    ambiguous = AMBIGUOUS_REPORTS.get(reported)
    if ambiguous is None:
        if given and given != reported:
            raise TransferError(f"the {role} server reports chromadb {reported}, not {flag} {given}")
        return catalogued(reported, role, flag), "the server's /version"
    series = SpecifierSet(ambiguous["series"])
    if given:
        if given not in series:
            raise TransferError(
                f"the {role} server reports {reported} ({ambiguous['why']}), so it is not {flag} {given}"
            )
        return catalogued(given, role, flag), f"{flag}; the server reports {reported} ({ambiguous['why']})"
    newest = max((v for v in releases.versions() if v in series), key=_key)
    return newest, (
        f"the server reports {reported} ({ambiguous['why']}); talked to with chromadb {newest}'s "
        f"client; pass {flag} to name the server's release"
    )


def _key(version: str) -> object:
    from packaging.version import Version

    return Version(version)


def catalogued(version: str, role: str, flag: str) -> str:
    try:
        releases.lookup(version)
    except CompatError as exc:
        raise TransferError(
            f"the {role} is chromadb {version}, which this harness cannot install ({exc}); "
            f"pass {flag} with the nearest release"
        ) from None
    return version
