"""Follow a pointer to the snapshot it names: ``latest-pointer.txt`` beside timestamped snapshots.

Teams keep snapshots under timestamped prefixes (``words/snapshot/2026-12-01T03:00:00Z/``)
and move a tiny object or file to the newest one, atomically, so readers never see
a half-written snapshot; an upgrade plan then says "validate what latest points
at". So a source that is a small text object or file holding one location is
followed, exactly once, and the report says where it led.

What a pointer may hold (one non-empty line; ``#`` lines are comments):

- ``s3://bucket/prefix/`` or ``s3://bucket/key.tar.gz``: that location;
- ``prefix/`` or ``key`` with a ``/`` in it: relative to the pointer's bucket root
  (S3) or, for a local file, to the pointer's folder; when nothing is there, relative
  to the pointer's own folder (S3) as a second reading;
- a bare name: a sibling of the pointer.

With a template (``--pointer-template '{dir}/timestamped/{value}/'``) the pointer holds only a
value (a version id, a timestamp): the location is the template with ``{dir}`` the pointer's
folder and ``{value}`` that value, which must be one plain name (no ``/``, no ``..``), so the
result stays among the pointer's bucket's keys (or under its folder, on disk).

Why once: a pointer to a pointer is a loop waiting to happen; it is refused.
Why small: a pointer is a few dozen bytes; anything over ``MAX_BYTES`` is data,
never read as a location.
"""

from __future__ import annotations

import os
import posixpath
import stat
import string
from dataclasses import dataclass
from pathlib import Path

from pytest_chroma_compat.common.errors import CompatError
from pytest_chroma_compat.snapshot.archives import TAR_SUFFIXES, ZIP_SUFFIXES
from pytest_chroma_compat.snapshot.safecopy import SourceError

MAX_BYTES = 4096
TEMPLATE_FIELDS = ("dir", "value")


def check_template(template: str, flag: str = "--pointer-template") -> str:
    """``template`` when it is a location template a pointer's value can fill (``{dir}`` and
    ``{value}`` only, ``{value}`` required, no ``..``, not absolute, no URL); else one line (exit 2)."""
    why = ""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        parts, why = [], f"is not a template ({exc})"
    fields = [f for _, f, _, _ in parts if f is not None]
    if why:
        pass
    elif any(f not in TEMPLATE_FIELDS or spec or conv for _, f, spec, conv in parts if f is not None):
        why = "may hold only {dir} and {value} (no other field, no format spec)"
    elif "value" not in fields:
        why = "must hold {value}: the value the pointer holds"
    elif (
        any(".." in text.replace("\\", "/").split("/") for text, *_ in parts)
        or template.startswith(("/", "~"))
        or "://" in template
        or any(ord(c) < 32 for c in template)
    ):
        why = "must name a place under the pointer's bucket or folder (no '..', not absolute, no URL)"
    if why:
        raise CompatError(f"{flag} {template!r} {why}")
    return template


def _value(text: str, where: str) -> str:
    """The pointer's value for a template: one plain name, so the template decides the place."""
    if (
        text in (".", "..")
        or "/" in text
        or "\\" in text
        or any(ord(c) < 32 or ord(c) == 127 for c in text)
        or len(text.encode("utf-8", "surrogatepass")) > 255
    ):
        raise SourceError(
            f"pointer {where} holds {text[:80]!r}, not a plain name for --pointer-template (no '/', no '..')"
        )
    return text


def _filled(template: str, folder: str, value: str, where: str) -> str:
    """The template filled; refused when the result leaves the pointer's keys (a folder named '..')."""
    location = template.format(dir=folder, value=value)
    if ".." in location.replace("\\", "/").split("/"):
        raise SourceError(f"pointer {where}: --pointer-template gives {location!r}, which leaves its bucket's keys")
    return location


@dataclass(frozen=True)
class Followed:
    """Where validation goes: ``location``, and the pointer that led there (None when the source is not one)."""

    location: str
    pointer: str | None = None
    content: str | None = None


def _line(text: bytes, where: str) -> str | None:
    """The one location a pointer holds, or None when ``text`` is not a pointer at all."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = [ln.strip() for ln in decoded.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines:
        return None
    if len(lines) > 1 or any(c in lines[0] for c in "\0\t") or " " in lines[0].strip():
        raise SourceError(
            f"{where} looks like a pointer but holds {len(lines)} line(s); a pointer names one "
            "location (s3://bucket/prefix/, a key, or a folder)"
        )
    return lines[0]


def _archive(name: str) -> bool:
    return name.lower().endswith(TAR_SUFFIXES + ZIP_SUFFIXES)


def follow_local(source: str, template: str | None = None) -> Followed:
    """A local pointer file: a small regular file that is not an archive and names one location."""
    path = Path(source).expanduser()
    try:
        st = os.stat(path)
    except OSError:
        return Followed(source)  # check_source reports it
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES or _archive(path.name):
        return Followed(source)
    with open(path, "rb") as fh:  # a regular file, checked above: opening it cannot block
        target = _line(fh.read(MAX_BYTES + 1), str(path))
    if target is None:
        return Followed(source)
    named = target
    if template is not None:  # the file holds a value; the template says where that is, under its folder
        folder = path.parent.resolve()  # the folder the pointer is in, as named (not where a link leads)
        filled = _filled(template, str(folder), _value(target, str(path)), str(path))
        target = filled if Path(filled).is_absolute() else str(folder / filled)
    resolved = target if target.startswith("s3://") else str((path.parent / target).resolve())
    if not resolved.startswith("s3://"):
        tst = os.stat(resolved) if os.path.exists(resolved) else None
        if tst is None:
            raise SourceError(f"pointer {path} names {target!r}, which does not exist ({resolved})")
        if stat.S_ISREG(tst.st_mode) and tst.st_size <= MAX_BYTES and not _archive(resolved):
            raise SourceError(f"pointer {path} names another pointer ({resolved}); a pointer is followed once")
    return Followed(resolved, str(path), named)


def follow(
    source: str,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    s3_timeout: float | None = None,
    template: str | None = None,
) -> Followed:
    """``source`` itself, or the location the pointer at ``source`` names (followed once); with
    ``template``, the pointer holds a value and the template (check_template) makes the location,
    and a source that is not a pointer is refused (the template would silently do nothing)."""
    if template is None:
        return _follow(source, endpoint_url, profile, region, s3_timeout, None)
    check_template(template)
    followed = _follow(source, endpoint_url, profile, region, s3_timeout, template)
    if followed.pointer is None:
        raise SourceError(
            f"--pointer-template needs SOURCE to be a pointer (a small object or file holding one "
            f"value, such as latest-pointer.txt); {source} is not one"
        )
    return followed


def _follow(
    source: str,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    s3_timeout: float | None,
    template: str | None,
) -> Followed:
    if not source.startswith("s3://"):
        return follow_local(source, template)
    bucket, _, key = source[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/") or _archive(key):
        return Followed(source)
    from pytest_chroma_compat.snapshot.sources import S3_ATTEMPTS, _s3_client, _s3_error

    s3 = _s3_client(endpoint_url, profile, region, S3_ATTEMPTS, s3_timeout)
    try:
        return follow_s3(source, s3, bucket, key, template)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to one line
        raise _s3_error(exc, source, s3) from None


def _exists(client: object, bucket: str, prefix: str) -> bool:
    found = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)  # type: ignore[attr-defined]
    return bool(found.get("KeyCount") or found.get("Contents"))


def follow_s3(source: str, s3: object, bucket: str, key: str, template: str | None = None) -> Followed:
    """An S3 pointer object: ``key`` is one object (not a prefix) of at most ``MAX_BYTES``."""
    client = s3.client
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception:  # noqa: BLE001 - no such object: the source is a prefix, as before
        return Followed(source)
    if head.get("ContentLength", MAX_BYTES + 1) > MAX_BYTES or _archive(key):
        return Followed(source)
    body = client.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"].read(MAX_BYTES + 1)
    target = _line(body, source)
    if target is None:
        return Followed(source)
    if template is not None:  # a value: the template names the key, in the pointer's bucket
        filled = _filled(template, posixpath.dirname(key), _value(target, source), source)
        candidates = [f"s3://{bucket}/{filled.lstrip('/')}"]
    elif target.startswith("s3://"):
        candidates = [target]
    else:
        folder = posixpath.dirname(key)
        relative = posixpath.normpath(posixpath.join(folder, target)) + ("/" if target.endswith("/") else "")
        rooted = target.lstrip("/")
        candidates = [f"s3://{bucket}/{rooted}"] if "/" in target.rstrip("/") else []
        candidates.append(f"s3://{bucket}/{relative}")
    for candidate in candidates:
        rest = candidate[len("s3://") :]
        cbucket, _, ckey = rest.partition("/")
        if not ckey or ckey.startswith("../") or ".." in ckey.split("/"):
            raise SourceError(f"pointer {source} names {target!r}, which leaves its bucket's keys")
        if _archive(ckey):
            return Followed(candidate, source, target)
        if not ckey.endswith("/") and _single_small_object(client, cbucket, ckey):
            raise SourceError(f"pointer {source} names another pointer ({candidate}); a pointer is followed once")
        prefix = ckey if ckey.endswith("/") else ckey + "/"
        if _exists(client, cbucket, prefix):
            return Followed(f"s3://{cbucket}/{prefix}", source, target)
    raise SourceError(
        f"pointer {source} names {target!r}, but no objects are there (looked at {' and '.join(candidates)})"
    )


def _single_small_object(client: object, bucket: str, key: str) -> bool:
    try:
        head = client.head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False
    return head.get("ContentLength", MAX_BYTES + 1) <= MAX_BYTES
