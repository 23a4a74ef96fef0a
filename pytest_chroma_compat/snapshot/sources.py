"""Turn a store's *source* into a private copy that later steps may break freely.

Why a copy: ``chroma-compat validate`` opens the store with an old and a new
release, and opening a Chroma store is not read-only (migrations, WAL
checkpoints, compaction). The user's directory, archive or bucket must come out
exactly as it went in, so nothing here opens a source for writing, and every
source gets a hash before and after so the caller can *prove* that (and notice
a live writer changing the store while it was being copied).

A source is also untrusted input: the store may come from someone else. So
the copy holds regular files and directories only, written at lexical paths
inside a fresh directory and within byte/entry limits (:mod:`.safecopy`), and
nothing outside the work directory is written or read because of what the
source contains:

- a directory: regular files and directories are copied (contents and
  mtimes). A symbolic link to a regular file *inside* the source is copied as
  a regular file (its bytes are already part of the source); a link out of the
  source, a link to a directory (links can loop) and FIFOs, sockets and
  devices are refused before anything is copied (copying a FIFO never ends);
- ``.tar``, ``.tar.gz``/``.tgz`` (and other compressed tars), ``.zip``:
  planned member by member, then extracted (:mod:`.archives`): no links are
  ever created, a hard link becomes a copy of an earlier regular member;
- ``s3://bucket/prefix/`` (every object under the prefix) or
  ``s3://bucket/key.tar.gz`` (one archive object, then extracted as above),
  with bounded timeouts and attempts, so a silent endpoint costs seconds, not
  minutes. Credentials written into ``--endpoint-url`` are used and never
  shown (:mod:`.redact`).

The source argument itself must be a directory or a regular file: a FIFO, a
socket or a device is refused without being opened.

boto3 is imported only for S3 sources, so the package works without it.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import tempfile
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Literal

from pytest_chroma_compat.common.redact import redact, split_credentials
from pytest_chroma_compat.snapshot import archives
from pytest_chroma_compat.snapshot.safecopy import (
    CHUNK,
    MARGIN,
    MAX_MEMBERS,
    Budget,
    Layout,
    MiB,
    SafeTree,
    SourceError,
    byte_limit,
    file_kind,
    free_space,
    human,
    limit_reason,
    one_line,
    safe_relpath,
    write_all,
)

Kind = Literal["dir", "tar", "zip", "s3"]
Progress = Callable[[int, int], None]
Notify = Callable[[str], None]

#: Parallel S3 downloads. Stores are a few large files plus many small segment
#: files; 8 keeps small-file latency hidden without hammering the endpoint.
S3_WORKERS = 8
#: Attempts per S3 request (botocore "standard" retries, the first one
#: included), and per object when a download comes back short or corrupt.
S3_ATTEMPTS = 3
#: Seconds to wait for a connection, and for each read of an answer. With 3
#: attempts, an endpoint that accepts connections and never answers is
#: reported in under a minute (3 x 15 s plus backoff); ``--s3-timeout`` sets both.
S3_CONNECT_TIMEOUT = 5.0
S3_READ_TIMEOUT = 15.0
_CHUNK = CHUNK

_TAR_SUFFIXES = archives.TAR_SUFFIXES
_ZIP_SUFFIXES = archives.ZIP_SUFFIXES
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

__all__ = ["Materialized", "S3Object", "SourceError", "fingerprint", "materialize", "redact", "tree_hash"]


@dataclass(frozen=True)
class S3Object:
    """One object as listed before download: what the copy was verified against."""

    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class Materialized:
    """The private copy and the evidence that the source was left alone.

    ``source_hash_before``/``after``: for a directory, :func:`tree_hash`; for an
    archive file, the sha256 of the file; for S3, a sha256 over the listing
    (key, size, ETag, last-modified) taken before and after the download.
    """

    path: Path
    kind: Kind
    source_hash_before: str
    source_hash_after: str
    objects: tuple[S3Object, ...] = field(default=())

    @property
    def source_unchanged(self) -> bool:
        """False means the source changed while it was copied (a live writer?): the copy may be torn."""
        return self.source_hash_before == self.source_hash_after


# ---------------------------------------------------------------- reading sources


def _not_regular(path: str | Path, mode: int) -> SourceError:
    return SourceError(f"not a regular file or directory: {path} ({file_kind(mode)}); refusing it")


def _stat_source(src: Path) -> os.stat_result:
    """The source argument's type, from ``stat`` alone: a FIFO or a device is never opened."""
    try:
        return os.stat(src)
    except FileNotFoundError:
        raise SourceError(f"no such file or directory: {src}") from None
    except OSError as exc:
        raise SourceError(f"cannot read {src}: {exc.strerror or one_line(exc)}") from None


def check_source(source: str) -> None:
    """Refuse a local source that is missing or neither a regular file nor a directory, from ``stat``
    alone, before any work starts (``validate``'s option check); S3 locations are checked when listed."""
    if source.startswith("s3://"):
        return
    src = Path(source).expanduser()
    mode = _stat_source(src).st_mode
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise _not_regular(src, mode)


def _open_regular(path: str | Path) -> BinaryIO:
    """Open a file read-only, and only if it is a regular file.

    ``O_NONBLOCK``: if the file was swapped for a FIFO since it was checked,
    opening it still returns at once, and ``fstat`` refuses it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or one_line(exc)}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _not_regular(path, mode)
    return os.fdopen(fd, "rb")


def _file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with _open_regular(path) as fh:  # read-only: the only way a source file is ever opened
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_hash(path: str | Path, *, mtimes: bool = True) -> str:
    """A sha256 over a directory tree: sorted relative paths, sizes, content hashes, mtimes (ns).

    Why each part: content hashes catch any change to data, sizes make the
    record self-describing, mtimes catch a ``touch`` or a rewrite with equal
    bytes (which a Chroma release opening the store would do). Access times are
    left out on purpose: reading the tree to hash or copy it changes them.
    Symlinks are recorded by their target, not followed, so hashing never
    leaves the tree; FIFOs, sockets and devices by their type, never opened.
    ``mtimes=False`` compares *contents* only, e.g. a copy downloaded from S3
    against the tree it was uploaded from.
    """
    root = Path(path)
    if not root.is_dir():
        raise SourceError(f"not a directory: {root}")
    digest = hashlib.sha256()
    entries: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = Path(os.path.relpath(full, root)).as_posix()
            entries.append((rel, full))
    for rel, full in sorted(entries):
        try:
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                record = f"L\0{rel}\0{os.readlink(full)}"
            elif stat.S_ISDIR(st.st_mode):
                record = f"D\0{rel}"
            elif stat.S_ISREG(st.st_mode):
                record = f"F\0{rel}\0{st.st_size}\0{_file_sha256(full)}"
                if mtimes:
                    record += f"\0{st.st_mtime_ns}"
            else:
                record = f"O\0{rel}\0{stat.S_IFMT(st.st_mode)}"
        except FileNotFoundError:  # a writer's journal, there when listed and gone when read
            raise SourceError(
                f"{root} changed while it was being read ({rel} vanished): something is writing "
                "to it; validate a quiescent snapshot"
            ) from None
        except OSError as exc:
            raise SourceError(f"cannot read {rel} in {root}: {exc.strerror or exc}") from None
        digest.update(record.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


# ---------------------------------------------------------------- entry point


def materialize(
    source: str,
    workdir: Path,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    progress: Progress | None = None,
    attempts: int = S3_ATTEMPTS,
    s3_timeout: float | None = None,
    max_extract_bytes: int | None = None,
    max_members: int | None = None,
    notify: Notify | None = None,
) -> Materialized:
    """Make a private copy of ``source`` in a fresh directory under ``workdir``.

    Each call gets its own ``mkdtemp`` directory, so two validations (or a
    re-run) never share or overwrite a copy; a refused or failed copy leaves
    nothing there. ``endpoint_url``/``profile``/``region`` only matter for
    ``s3://`` sources (MinIO, R2, moto, a named AWS profile);
    ``progress(bytes_done, bytes_total)`` is called as S3 bytes arrive,
    possibly from worker threads, and ``notify(text)`` when an S3 request is
    retried. ``s3_timeout`` replaces the connect and read timeouts;
    ``max_extract_bytes``/``max_members`` replace the default limits
    (:mod:`.safecopy`). Raises :class:`SourceError`.
    """
    workdir = Path(workdir)
    if source.startswith("s3://"):
        work = _fresh(workdir, "s3-")
        return _cleanup_on_error(
            work,
            lambda: _materialize_s3(
                source,
                work,
                endpoint_url=endpoint_url,
                profile=profile,
                region=region,
                progress=progress,
                attempts=attempts,
                timeout=s3_timeout,
                max_bytes=max_extract_bytes,
                max_members=max_members,
                notify=notify,
            ),
        )
    src = Path(source).expanduser()
    st = _stat_source(src)
    if stat.S_ISDIR(st.st_mode):
        _refuse_workdir_inside(src, workdir)
        work = _fresh(workdir, "dir-")
        return _cleanup_on_error(
            work, lambda: _materialize_dir(src, work, max_bytes=max_extract_bytes, max_members=max_members)
        )
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(src, st.st_mode)
    with _open_regular(src) as fh:
        kind = archives.archive_kind(src.name, fh)
    if kind is None:
        raise SourceError(f"not a directory or a supported archive (.tar, .tar.gz, .tgz, .zip): {src}")
    work = _fresh(workdir, f"{kind}-")

    def run() -> Materialized:
        _refuse_oversized_archive(src, st.st_size, work, max_extract_bytes)  # before hashing it: a sparse 10 TB file
        before = _file_sha256(src)
        path = _extract_file(
            src, kind, work / "extracted", label=str(src), max_bytes=max_extract_bytes, max_members=max_members
        )
        after = _file_sha256(src)
        return Materialized(path=path, kind=kind, source_hash_before=before, source_hash_after=after)

    return _cleanup_on_error(work, run)


def fingerprint(
    source: str,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    s3_timeout: float | None = None,
    max_members: int | None = None,
    notify: Notify | None = None,
    max_extract_bytes: int | None = None,
    attempts: int = S3_ATTEMPTS,
) -> str:
    """The source's hash, computed exactly as :func:`materialize` computes ``source_hash_before``.

    Why separately: a validation re-hashes the source when it *ends* (after both
    releases have run, failed or been interrupted), not just after copying, so
    the report proves nothing the validator did reached the source. Takes
    :func:`materialize`'s keywords so one set serves both (``max_extract_bytes``
    does not apply to hashing).
    """
    if source.startswith("s3://"):
        bucket, key, is_prefix = _parse_s3(source)
        where = f"s3://{bucket}/{key}"
        s3 = _s3_client(endpoint_url, profile, region, attempts, s3_timeout, notify)
        return _listing_hash(
            _list(s3, bucket, key, where, max_objects=max_members) if is_prefix else [_head(s3, bucket, key, where)]
        )
    src = Path(source).expanduser()
    st = _stat_source(src)
    if stat.S_ISDIR(st.st_mode):
        return tree_hash(src)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(src, st.st_mode)
    return _file_sha256(src)


def _cleanup_on_error(work: Path, run: Callable[[], Materialized]) -> Materialized:
    try:
        return run()
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _fresh(workdir: Path, prefix: str) -> Path:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))
    except OSError as exc:
        raise SourceError(f"cannot create a work directory in {workdir}: {exc.strerror or exc}") from None


def _refuse_workdir_inside(src: Path, workdir: Path) -> None:
    """Copying into the source itself would write to it (and recurse forever)."""
    s, w = src.resolve(), workdir.resolve()
    if w == s or s in w.parents:
        raise SourceError(f"work directory {workdir} is inside the source {src}; choose another")


def _refuse_oversized_archive(archive: Path | str, size: int, work: Path, max_bytes: int | None) -> None:
    """An archive larger than its copy may be cannot hold a store that fits (members are never smaller
    than their compressed bytes, give or take headers): refuse it before spending hours hashing it."""
    limit, why = byte_limit(work, explicit=max_bytes, archive_size=size)
    if size > limit + limit // 100 + MiB:
        raise SourceError(
            f"archive {archive} is {human(size)}, more than its copy may take, {human(limit)} {limit_reason(why)}"
        )


def _extract_file(
    archive: Path,
    kind: archives.ArchiveKind,
    target: Path,
    *,
    label: str,
    max_bytes: int | None,
    max_members: int | None,
) -> Path:
    with _open_regular(archive) as fh:
        size = os.fstat(fh.fileno()).st_size
        limit, why = byte_limit(target.parent, explicit=max_bytes, archive_size=size)
        budget = Budget(f"archive {label}", max_bytes=limit, why_bytes=why, max_members=max_members)
        return archives.extract(fh, kind, target, label=label, budget=budget)


# ---------------------------------------------------------------- directories


def _scan_dir(src: Path, budget: Budget) -> list[tuple[str, str | None, os.stat_result]]:
    """Every entry to copy, ``(rel, path to read or None for a directory, stat)``, parents first.

    Nothing is written until the whole source has been checked. A link to a
    regular file inside the source is read at its resolved path (and copied
    as a regular file); anything else that is not a regular file or a
    directory is refused here.
    """
    root = os.path.realpath(src)
    prefix = root.rstrip(os.sep) + os.sep
    entries: list[tuple[str, str | None, os.stat_result]] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
                listing = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise SourceError(f"cannot read {os.path.join(src, rel_dir)}: {exc.strerror or one_line(exc)}") from None
        for entry in listing:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            budget.member()
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                entries.append((rel, None, st))
                pending.append(rel)
            elif stat.S_ISREG(st.st_mode):
                budget.declare(st.st_size)
                entries.append((rel, entry.path, st))
            elif stat.S_ISLNK(st.st_mode):
                entries.append(_scan_link(src, root, prefix, rel, entry.path, budget))
            else:
                raise SourceError(
                    f"{file_kind(st.st_mode)} {rel!r} in {src}: a Chroma store holds only files and "
                    "directories; refusing it"
                )
    return entries


def _scan_link(
    src: Path, root: str, prefix: str, rel: str, path: str, budget: Budget
) -> tuple[str, str, os.stat_result]:
    target = os.readlink(path)
    shown = f"symlink {rel!r} -> {target!r} in {src}"
    resolved = os.path.realpath(path)
    if not (resolved == root or resolved.startswith(prefix)):
        raise SourceError(f"{shown} points outside the source; a Chroma store holds no links; refusing it")
    try:
        st = os.stat(resolved)
    except OSError as exc:
        raise SourceError(f"{shown} leads nowhere ({exc.strerror}); refusing it") from None
    if stat.S_ISDIR(st.st_mode):
        raise SourceError(f"{shown} points to a directory (links to directories can loop); refusing it")
    if not stat.S_ISREG(st.st_mode):
        raise SourceError(f"{shown} points to a {file_kind(st.st_mode)}; refusing it")
    budget.declare(st.st_size)
    return rel, resolved, st


def _copy_source_file(tree: SafeTree, rel: str, path: str, st: os.stat_result, budget: Budget, src: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError as exc:
        raise SourceError(f"cannot read {rel!r} in {src}: {exc.strerror or one_line(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # swapped since the scan
            raise SourceError(
                f"{file_kind(mode)} {rel!r} in {src}: a Chroma store holds only files and directories; refusing it"
            )

        def chunks():
            while True:
                try:
                    chunk = os.read(fd, _CHUNK)
                except OSError as exc:
                    raise SourceError(f"cannot read {rel!r} in {src}: {exc.strerror or one_line(exc)}") from None
                if not chunk:
                    return
                yield chunk

        tree.write(rel, rel, chunks(), budget, mode=st.st_mode, mtime_ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(fd)


def _materialize_dir(src: Path, work: Path, *, max_bytes: int | None, max_members: int | None) -> Materialized:
    limit, why = byte_limit(work, explicit=max_bytes)
    budget = Budget(
        f"directory {src}", max_bytes=limit, why_bytes=why, max_members=max_members, verb="holds", noun="entries"
    )
    entries = _scan_dir(src, budget)
    before = tree_hash(src)
    dest = work / "store"
    try:
        tree = SafeTree(dest, str(src))
    except OSError as exc:
        raise SourceError(f"cannot write the copy of {src} in {work}: {one_line(exc)}") from None
    with tree:
        for rel, path, st in entries:
            if path is None:
                tree.mkdir(rel, rel)
            else:
                _copy_source_file(tree, rel, path, st, budget, src)
        for rel, path, st in reversed(entries):  # directories last, as copytree's copystat did
            if path is None:
                try:
                    os.utime(os.path.join(dest, rel), ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
                except OSError:
                    pass
    after = tree_hash(src)
    return Materialized(path=dest, kind="dir", source_hash_before=before, source_hash_after=after)


# ---------------------------------------------------------------- S3


@dataclass(frozen=True)
class _S3:
    """A client and what messages need to say about it."""

    client: Any
    endpoint: str  # without credentials
    timeout: float
    attempts: int


def _parse_s3(url: str) -> tuple[str, str, bool]:
    """``(bucket, key_or_prefix, is_prefix)``; a key without an archive suffix is a prefix."""
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise SourceError(f"no bucket in {url!r} (expected s3://bucket/prefix/ or s3://bucket/key.tar.gz)")
    lowered = key.lower()
    if key and not key.endswith("/") and lowered.endswith(_TAR_SUFFIXES + _ZIP_SUFFIXES):
        return bucket, key, False
    if key and not key.endswith("/"):
        key += "/"  # s3://b/store means the "store/" folder, never "store2/..."
    return bucket, key, True


def _s3_client(
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    attempts: int,
    timeout: float | None = None,
    notify: Notify | None = None,
) -> _S3:
    """A client with bounded timeouts and attempts; credentials in ``endpoint_url`` become the key pair."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise SourceError("s3:// sources need boto3: pip install 'pytest-chroma-compat[s3]'") from None
    keys: dict[str, str] = {}
    if endpoint_url:
        endpoint_url, user, password = split_credentials(endpoint_url)
        if user is not None and password is None:
            raise SourceError(
                f"--endpoint-url {endpoint_url} has a user but no secret in it: write both "
                "(http://KEY:SECRET@host) or leave credentials to the environment or --profile"
            )
        if user is not None:
            keys = {"aws_access_key_id": user, "aws_secret_access_key": password or ""}
    attempts = max(1, attempts)
    connect = S3_CONNECT_TIMEOUT if timeout is None else timeout
    read = S3_READ_TIMEOUT if timeout is None else timeout
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region, **keys)
        config = Config(
            retries={"total_max_attempts": attempts, "mode": "standard"},
            connect_timeout=connect,
            read_timeout=read,
            max_pool_connections=S3_WORKERS * 2,
        )
        client = session.client("s3", endpoint_url=endpoint_url, config=config)
    except BotoCoreError as exc:  # ProfileNotFound, invalid endpoint, no region...
        raise SourceError(f"cannot set up S3 access: {one_line(exc)}") from None
    except ValueError as exc:  # botocore's "Invalid endpoint"
        raise SourceError(f"cannot set up S3 access: {one_line(exc)}") from None
    s3 = _S3(client, redact(endpoint_url or client.meta.endpoint_url), read, attempts)
    if notify is not None:
        _report_retries(s3, notify)
    return s3


def _report_retries(s3: _S3, notify: Notify) -> None:
    """Tell ``notify`` about every failed attempt that will be retried; never changes what botocore does."""

    def observe(
        attempts: int = 0,
        caught_exception: BaseException | None = None,
        response: Any = None,
        operation: Any = None,
        **_: Any,
    ) -> None:
        if attempts >= s3.attempts:
            return None
        if caught_exception is not None:
            why = _why(caught_exception, s3)
        else:
            status = getattr(response[0], "status_code", 0) if response else 0
            if status < 500 and status != 429:
                return None
            why = f"HTTP {status}"
        name = getattr(operation, "name", "request")
        notify(redact(f"S3 {name} on {s3.endpoint}: attempt {attempts} of {s3.attempts} failed ({why}); retrying"))
        return None  # observing only: the retry handler decides

    s3.client.meta.events.register("needs-retry.s3", observe)


def _why(exc: BaseException, s3: _S3) -> str:
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    if isinstance(exc, ReadTimeoutError):
        return f"no answer within {s3.timeout:g} s"
    if isinstance(exc, ConnectTimeoutError):
        return "no connection within the timeout"
    return one_line(exc)


def _s3_error(exc: BaseException, where: str, s3: _S3 | None = None) -> SourceError:
    """Map botocore's errors to the few things a user can act on, in one line."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, SourceError):
        return exc
    endpoint = s3.endpoint if s3 else "the S3 endpoint"
    tries = f"{s3.attempts} attempt(s)" if s3 else "every attempt"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        msg = one_line(err.get("Message") or code)
        if code in ("NoSuchBucket",):
            return SourceError(f"no objects at {where}: bucket does not exist")
        if code in ("NoSuchKey", "404", "NotFound"):
            return SourceError(f"no objects at {where}: no such key")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            return SourceError(f"access denied to {where}: {msg}")
        if code in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "TokenRefreshRequired",
        ):
            return SourceError(f"access denied to {where}: credentials rejected ({code})")
        if code in ("PreconditionFailed", "412"):
            return SourceError(f"{where} changed while it was being downloaded; retry when nothing writes to it")
        if status == 403:
            return SourceError(f"access denied to {where}: {msg}")
        return SourceError(f"S3 error on {where}: {code}: {msg}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return SourceError(f"no usable AWS credentials for {where}: {one_line(exc)}")
    if isinstance(exc, ReadTimeoutError):
        wait_s = f"{s3.timeout:g} s" if s3 else "the read timeout"
        return SourceError(
            f"S3 endpoint {endpoint} did not answer within {wait_s} ({tries}) for {where}; "
            "--s3-timeout sets how long to wait"
        )
    if isinstance(exc, ConnectTimeoutError):
        return SourceError(
            f"cannot reach the S3 endpoint {endpoint} for {where}: connection timed out ({tries}); "
            "--s3-timeout sets how long to wait"
        )
    if isinstance(exc, EndpointConnectionError):
        return SourceError(f"cannot reach the S3 endpoint for {where}: {one_line(exc)}")
    if isinstance(exc, BotoCoreError):
        return SourceError(f"S3 error on {where}: {one_line(exc)}")
    if isinstance(exc, OSError):
        return SourceError(f"cannot write the copy of {where}: {one_line(exc)}")
    return SourceError(f"S3 error on {where}: {type(exc).__name__}: {one_line(exc)}")


def _listing_hash(objects: list[dict]) -> str:
    digest = hashlib.sha256()
    for o in sorted(objects, key=lambda o: o["Key"]):
        lm = o.get("LastModified")
        digest.update(f"{o['Key']}\0{o['Size']}\0{o.get('ETag', '')}\0{lm.isoformat() if lm else ''}\n".encode())
    return digest.hexdigest()


def _list(
    s3: _S3, bucket: str, prefix: str, where: str, *, budget: Budget | None = None, max_objects: int | None = None
) -> list[dict]:
    """Every object under ``prefix``; stops as soon as a limit is crossed (an endless listing ends here)."""
    limit = MAX_MEMBERS if max_objects is None else max_objects
    try:
        found: list[dict] = []
        for pages, page in enumerate(
            s3.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix), 1
        ):
            # a page is up to 1000 keys; an endpoint that keeps sending near-empty pages with new
            # continuation tokens would otherwise list forever without crossing the object limit
            if pages > limit // 100 + 100:
                raise SourceError(
                    f"{where}: the listing did not end after {pages - 1} pages holding "
                    f"{len(found)} object(s); refusing it"
                )
            for o in page.get("Contents", []):
                if o["Key"].endswith("/") and o["Size"] == 0:
                    continue  # "folder" markers made by consoles: not data
                if budget is not None:
                    budget.member()
                    budget.declare(o["Size"])
                elif len(found) >= limit:
                    raise SourceError(
                        f"{where} holds more than {limit} objects; refusing it (--max-members sets the limit)"
                    )
                found.append(o)
        return found
    except Exception as exc:  # noqa: BLE001 - mapped to one line
        raise _s3_error(exc, where, s3) from None


def _head(s3: _S3, bucket: str, key: str, where: str) -> dict:
    try:
        h = s3.client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, where, s3) from None
    return {"Key": key, "Size": h["ContentLength"], "ETag": h.get("ETag", ""), "LastModified": h.get("LastModified")}


class _Counter:
    """Bytes done across threads; a retried object's bytes are taken back."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self.progress = 0, total, progress
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        if self.progress is None:
            return
        with self.lock:
            self.done += n
            self.progress(self.done, self.total)


class _Stopped(Exception):
    """Another download failed: this one stops at its next chunk instead of finishing for nothing."""


def _download(
    s3: _S3,
    bucket: str,
    obj: dict,
    tree: SafeTree,
    rel: str,
    counter: _Counter,
    budget: Budget,
    attempts: int,
    notify: Notify | None,
    stop: threading.Event,
) -> None:
    """Fetch one object into a new file of ``tree`` and verify it; re-fetch on a size or MD5 mismatch.

    ``IfMatch`` pins the ETag seen in the listing, so an object rewritten
    mid-run fails loudly instead of yielding a copy mixing two states.
    The ETag is the MD5 only for single-part, non-KMS uploads ("-" marks
    multipart); otherwise size is all that can be checked. An endpoint that
    sends more bytes than it listed is cut off at the listed size.
    """
    from botocore.exceptions import BotoCoreError

    key, size = obj["Key"], obj["Size"]
    etag = obj.get("ETag", "").strip('"')
    where = f"s3://{bucket}/{key}"
    problem = ""
    fd = tree.create(rel, key)
    try:
        for attempt in range(max(1, attempts)):
            if attempt:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                if notify is not None:
                    notify(f"{where}: {problem}; downloading it again (attempt {attempt + 1} of {attempts})")
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if etag:
                kwargs["IfMatch"] = obj["ETag"]
            resp = s3.client.get_object(**kwargs)
            md5, got = hashlib.md5(usedforsecurity=False), 0
            body = resp["Body"]
            try:
                for chunk in body.iter_chunks(_CHUNK):
                    if stop.is_set():
                        raise _Stopped()
                    if got + len(chunk) > size:
                        raise SourceError(
                            f"{where}: the endpoint sent more than the {size} bytes it listed; refusing it"
                        )
                    budget.take(len(chunk))
                    try:
                        write_all(fd, chunk)
                    except OSError as exc:
                        raise tree.cannot_write(exc) from None
                    md5.update(chunk)
                    got += len(chunk)
                    counter.add(len(chunk))
            except (BotoCoreError, ConnectionError) as exc:  # a dropped or stalled stream: retry it
                problem = f"download interrupted: {_why(exc, s3)}"
                budget.give_back(got)
                counter.add(-got)
                continue
            finally:
                body.close()
            if got != size:
                problem = f"size mismatch (got {got} bytes, listed {size})"
            elif (
                etag
                and "-" not in etag
                and resp.get("ServerSideEncryption") != "aws:kms"
                and "SSECustomerAlgorithm" not in resp
                and md5.hexdigest() != etag
            ):
                problem = f"checksum mismatch (md5 {md5.hexdigest()}, ETag {etag})"
            else:
                lm = obj.get("LastModified")
                if lm is not None:
                    ts = lm.timestamp()
                    os.utime(fd, (ts, ts))
                return
            budget.give_back(got)
            counter.add(-got)
    finally:
        os.close(fd)
    raise SourceError(f"{where}: {problem} after {max(1, attempts)} attempts")


def _materialize_s3(
    url: str,
    work: Path,
    *,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    progress: Progress | None,
    attempts: int,
    timeout: float | None,
    max_bytes: int | None,
    max_members: int | None,
    notify: Notify | None,
) -> Materialized:
    bucket, key, is_prefix = _parse_s3(url)
    where = f"s3://{bucket}/{key}"
    s3 = _s3_client(endpoint_url, profile, region, attempts, timeout, notify)
    if is_prefix:
        limit, why = byte_limit(work, explicit=max_bytes)
        budget = Budget(where, max_bytes=limit, why_bytes=why, max_members=max_members, verb="holds", noun="objects")
        listed = _list(s3, bucket, key, where, budget=budget)
        if not listed:
            raise SourceError(f"no objects at {where}")
    else:
        listed = [_head(s3, bucket, key, where)]
        free = free_space(work)
        budget = Budget(
            where,
            max_bytes=max(0, free - MARGIN),
            max_members=1,
            verb="is",
            why_bytes=f"{human(free)} free in {work}, less a {human(MARGIN)} margin",
        )
        budget.declare(listed[0]["Size"])
    before = _listing_hash(listed)
    dest_root = work / ("store" if is_prefix else "archive")
    layout = Layout(where, what="key")
    jobs: list[tuple[dict, str]] = []
    for o in listed:
        rel = safe_relpath(o["Key"][len(key) :], label=where, what="key") if is_prefix else posixpath.basename(key)
        if not rel:
            continue
        layout.add_file(rel, o["Key"])  # two keys, one file (a/../b and b), or a file above a folder: refused
        jobs.append((o, rel))
    counter = _Counter(sum(o["Size"] for o, _ in jobs), progress)
    try:
        tree = SafeTree(dest_root, where)
    except OSError as exc:
        raise SourceError(f"cannot write the copy of {where} in {work}: {one_line(exc)}") from None
    stop = threading.Event()
    with tree, ThreadPoolExecutor(max_workers=S3_WORKERS, thread_name_prefix="s3-get") as pool:
        futures = [
            pool.submit(_download, s3, bucket, o, tree, rel, counter, budget, attempts, notify, stop) for o, rel in jobs
        ]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        stop.set()
        for f in pending:
            f.cancel()
        for f in futures:
            exc = f.exception() if f.done() and not f.cancelled() else None
            if exc is not None and not isinstance(exc, _Stopped):
                raise _s3_error(exc, where, s3) from None
    after_listing = (
        _list(s3, bucket, key, where, max_objects=max_members) if is_prefix else [_head(s3, bucket, key, where)]
    )
    after = _listing_hash(after_listing)
    objects = tuple(S3Object(o["Key"], o["Size"], o.get("ETag", "").strip('"')) for o, _ in jobs)
    if is_prefix:
        return Materialized(
            path=dest_root, kind="s3", source_hash_before=before, source_hash_after=after, objects=objects
        )
    archive = dest_root / jobs[0][1]
    with _open_regular(archive) as fh:
        kind = archives.archive_kind(archive.name, fh)
    if kind is None:
        raise SourceError(f"{where} is not a supported archive (.tar, .tar.gz, .tgz, .zip)")
    path = _extract_file(archive, kind, work / "extracted", label=where, max_bytes=max_bytes, max_members=max_members)
    return Materialized(path=path, kind="s3", source_hash_before=before, source_hash_after=after, objects=objects)


_one_line = one_line
