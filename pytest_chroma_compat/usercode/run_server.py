"""``run --server``: the release's own server beside the user's command, and its address in the
command's environment, so a suite's HttpClient tests run under every release.

Why it is built this way:
- The server is the one ``chroma-compat serve`` starts (servers/launcher.py: the release's
  own launcher, a private data directory, its own process group under the
  parent-death reaper), started before the command and stopped when it ends, on
  every way out (a timeout, Ctrl-C, SIGKILL of chroma-compat: the reaper).
- The address is given the ways suites read it: ``CHROMA_HOST``, ``CHROMA_PORT``,
  ``CHROMA_URL``, and chromadb's own settings variables
  (``CHROMA_SERVER_HOST``/``CHROMA_SERVER_HTTP_PORT``, which a default
  ``Settings()`` reads). A suite that hard-codes ``localhost:8000`` gets its
  server there with ``--server-port 8000`` (one release at a time).
- With token auth (``--server token``) the token is ``CHROMA_TOKEN`` and
  ``CHROMA_AUTH_HEADER`` names the header, and the client settings of the
  release's era (``CLIENT_TOKEN_AUTH``, data keyed by version) are set so a
  default client sends it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pytest_chroma_compat.common.errors import CompatError

MODES = ("plain", "token")

# The client side of each era's token auth ({token} is replaced), as its docs set it.
CLIENT_TOKEN_AUTH: tuple[dict, ...] = (
    {
        "versions": ">=0.5.0",
        "env": {
            "CHROMA_CLIENT_AUTH_PROVIDER": "chromadb.auth.token_authn.TokenAuthClientProvider",
            "CHROMA_CLIENT_AUTH_CREDENTIALS": "{token}",
        },
    },
    {
        "versions": ">=0.4.7,<0.5.0",
        "env": {
            "CHROMA_CLIENT_AUTH_PROVIDER": "chromadb.auth.token.TokenAuthClientProvider",
            "CHROMA_CLIENT_AUTH_CREDENTIALS": "{token}",
        },
    },
)


def address_env(host: str, port: int, token: str | None, version: str) -> dict[str, str]:
    """The variables the user's command gets for a server at ``host:port``."""
    from pytest_chroma_compat.servers.launcher import _row

    env = {
        "CHROMA_HOST": host,
        "CHROMA_PORT": str(port),
        "CHROMA_URL": f"http://{host}:{port}",
        "CHROMA_SERVER_HOST": host,
        "CHROMA_SERVER_HTTP_PORT": str(port),
    }
    if token:
        env.update(CHROMA_TOKEN=token, CHROMA_AUTH_HEADER="Authorization")
        row = _row(CLIENT_TOKEN_AUTH, version)
        if row:
            env.update({k: v.replace("{token}", token) for k, v in row["env"].items()})
    return env


@contextlib.contextmanager
def serving(version: str, mode: str, port: int | None = None, timeout: float | None = None) -> Iterator[dict]:
    """``version``'s server for the duration of the block; yields the command's variables."""
    from pytest_chroma_compat.servers import launcher

    if mode not in MODES:
        raise CompatError(f"--server {mode!r}: one of {', '.join(MODES)}")
    options: dict = {"auth": "token" if mode == "token" else None, "port": port}
    if timeout:
        options["timeout"] = timeout
    with launcher.serve(version, **options) as server:
        yield address_env(server.host, server.port, server.token, server.version)
