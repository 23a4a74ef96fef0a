"""Credentials written into a URL never reach a message, a report or a log.

Users paste ``--endpoint-url http://KEY:SECRET@minio:9000`` because MinIO's
docs and many CI snippets do. The userinfo is split off once
(:func:`split_credentials`) and used as the access key pair; everything that
is shown to anyone goes through :func:`redact` first.

Everything between ``scheme://`` and the *last* ``@`` of the token counts as
userinfo: AWS secret keys contain ``/`` and ``+`` and users do not
percent-encode them, so stopping at the first ``/`` would leak half a secret.
Over-redacting a rare ``@`` in a path is the price, and only in messages.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["redact", "split_credentials"]

#: ``scheme://`` then userinfo up to the last ``@`` of the token (no whitespace, quotes or brackets,
#: so a URL quoted inside a message stops at its closing quote).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s'\"<>()\[\]{}`]*@")


def redact(text: object) -> str:
    """``text`` with every ``scheme://user:pass@`` (or ``scheme://user@``) written as ``scheme://***@``."""
    return _USERINFO.sub(r"\1***@", str(text))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``(url without userinfo, user, password)``; user and password are percent-decoded, None if absent.

    >>> split_credentials("http://AKIA:abc/def+g@127.0.0.1:9000")
    ('http://127.0.0.1:9000', 'AKIA', 'abc/def+g')
    >>> split_credentials("https://minio.local")
    ('https://minio.local', None, None)
    """
    m = re.match(r"(?i)^([a-z][a-z0-9+.\-]*://)(.*)$", url, re.DOTALL)
    if m is None or "@" not in m.group(2):
        return url, None, None
    scheme, rest = m.groups()
    userinfo, _, host = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return scheme + host, unquote(user) or None, unquote(password) if colon else None
