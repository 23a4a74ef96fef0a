"""Turn a store's *source* into a private copy that later steps may break freely.

Why a copy: ``chroma-compat validate`` opens the store with an old and a new
release, and opening a Chroma store is not read-only (migrations, WAL
checkpoints, compaction). The user's directory, archive or bucket must come out
exactly as it went in, so nothing here opens a source for writing, and every
source gets a hash before and after so the caller can *prove* that (and notice
a live writer changing the store while it was being copied).

Sources:

- a directory: copied with :func:`shutil.copy2` (contents and mtimes);
- ``.tar``, ``.tar.gz``/``.tgz`` (and other compressed tars), ``.zip``:
  extracted member by member after checking each one, because an archive from
  someone else may try to write outside the target (``../``, absolute paths,
  links, device nodes);
- ``s3://bucket/prefix/`` (every object under the prefix) or
  ``s3://bucket/key.tar.gz`` (one archive object, then extracted as above).

boto3 is imported only for S3 sources, so the package works without it.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import threading
import time
import zipfile
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from ..errors import CompatError

Kind = Literal["dir", "tar", "zip", "s3"]
Progress = Callable[[int, int], None]

#: Parallel S3 downloads. Stores are a few large files plus many small segment
#: files; 8 keeps small-file latency hidden without hammering the endpoint.
S3_WORKERS = 8
#: Attempts per S3 request (botocore "standard" retries), and per object when a
#: download comes back with the wrong size or checksum.
S3_ATTEMPTS = 5
_CHUNK = 1 << 20

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_ZIP_SUFFIXES = (".zip",)


class SourceError(CompatError):
    """The source cannot be materialized; the message is one line, naming what is wrong."""


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


# ---------------------------------------------------------------- hashing


def _file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:  # read-only: the only way a source file is ever opened
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
    leaves the tree. ``mtimes=False`` compares *contents* only, e.g. a copy
    downloaded from S3 against the tree it was uploaded from.
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
        digest.update(record.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


# ---------------------------------------------------------------- entry point


def materialize(source: str, workdir: Path, *, endpoint_url: str | None = None,
                profile: str | None = None, region: str | None = None,
                progress: Progress | None = None, attempts: int = S3_ATTEMPTS) -> Materialized:
    """Make a private copy of ``source`` in a fresh directory under ``workdir``.

    Each call gets its own ``mkdtemp`` directory, so two validations (or a
    re-run) never share or overwrite a copy. ``endpoint_url``/``profile``/
    ``region`` only matter for ``s3://`` sources (MinIO, R2, moto, a named AWS
    profile); ``progress(bytes_done, bytes_total)`` is called as S3 bytes
    arrive, possibly from worker threads. Raises :class:`SourceError`.
    """
    workdir = Path(workdir)
    if source.startswith("s3://"):
        work = _fresh(workdir, "s3-")
        return _materialize_s3(source, work, endpoint_url=endpoint_url, profile=profile,
                               region=region, progress=progress, attempts=attempts)
    src = Path(source).expanduser()
    if not src.exists():
        raise SourceError(f"no such file or directory: {src}")
    if src.is_dir():
        _refuse_workdir_inside(src, workdir)
        return _materialize_dir(src, _fresh(workdir, "dir-"))
    kind = _archive_kind(src)
    if kind is None:
        raise SourceError(f"not a directory or a supported archive (.tar, .tar.gz, .tgz, .zip): {src}")
    work = _fresh(workdir, f"{kind}-")
    before = _file_sha256(src)
    path = _extract(src, kind, work / "extracted", label=str(src))
    after = _file_sha256(src)
    return Materialized(path=path, kind=kind, source_hash_before=before, source_hash_after=after)


def fingerprint(source: str, *, endpoint_url: str | None = None, profile: str | None = None,
                region: str | None = None) -> str:
    """The source's hash, computed exactly as :func:`materialize` computes ``source_hash_before``.

    Why separately: a validation re-hashes the source when it *ends* (after both
    releases have run, failed or been interrupted), not just after copying, so
    the report proves nothing the validator did reached the source.
    """
    if source.startswith("s3://"):
        bucket, key, is_prefix = _parse_s3(source)
        where = f"s3://{bucket}/{key}"
        client = _s3_client(endpoint_url, profile, region, S3_ATTEMPTS)
        return _listing_hash(_list(client, bucket, key, where) if is_prefix else [_head(client, bucket, key, where)])
    src = Path(source).expanduser()
    if src.is_dir():
        return tree_hash(src)
    if not src.exists():
        raise SourceError(f"no such file or directory: {src}")
    return _file_sha256(src)


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


# ---------------------------------------------------------------- directories


def _materialize_dir(src: Path, work: Path) -> Materialized:
    before = tree_hash(src)
    dest = work / "store"
    try:
        # symlinks=False: a store whose segment dir is a symlink to another disk
        # gets the data copied, so the copy is self-contained. copy2 keeps mtimes;
        # it reads the source and only ever writes to dest.
        shutil.copytree(src, dest, symlinks=False, copy_function=shutil.copy2)
    except shutil.Error as exc:
        errs = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
        first = errs[0] if errs else exc  # (src, dst, why) per file; name the first
        text = f"{first[0]}: {first[2]}" if isinstance(first, tuple) and len(first) == 3 else first
        raise SourceError(f"cannot copy {src}: {_one_line(text)} ({len(errs) or 1} file(s) failed)") from None
    except OSError as exc:
        raise SourceError(f"cannot copy {src}: {_one_line(exc)}") from None
    after = tree_hash(src)
    return Materialized(path=dest, kind="dir", source_hash_before=before, source_hash_after=after)


# ---------------------------------------------------------------- archives


def _archive_kind(path: Path) -> Literal["tar", "zip"] | None:
    name = path.name.lower()
    if name.endswith(_ZIP_SUFFIXES):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    # No telling suffix: sniff the content (read-only) rather than guess.
    try:
        if zipfile.is_zipfile(path):
            return "zip"
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        return None
    return None


def _safe_relpath(name: str, *, label: str, what: str = "member") -> str:
    """The normalized relative path of an archive member or S3 key, or SourceError.

    Lexical check first (absolute, drive letters, ``..`` escaping); the real
    path of the destination is checked again at write time against symlinks
    created by earlier members.
    """
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise SourceError(f"unsafe {what} {name!r} in {label}: absolute path")
    norm = posixpath.normpath(clean)
    if norm == ".." or norm.startswith("../"):
        raise SourceError(f"unsafe {what} {name!r} in {label}: escapes the target with '..'")
    return "" if norm == "." else norm


def _link_target_ok(member: str, target: str) -> bool:
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        return False
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member), target))
    return not (joined == ".." or joined.startswith("../"))


def _inside(root: Path, dest: Path) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(dest.parent)
    return real == real_root or real.startswith(real_root + os.sep)


def _prepare(root: Path, rel: str, *, name: str, label: str) -> Path:
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(root, dest):
        raise SourceError(f"unsafe member {name!r} in {label}: goes through a link out of the target")
    if dest.is_symlink():
        dest.unlink()  # never write through a link left by an earlier member
    return dest


def _extract(archive: Path, kind: Literal["tar", "zip"], target: Path, *, label: str) -> Path:
    """Check every member, then extract; return the store's root in ``target``.

    All members are checked before anything is written, so a rejected archive
    leaves no partial tree behind.
    """
    target.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "tar":
            with tarfile.open(archive, mode="r:*") as tf:
                _extract_tar(tf, target, label=label)
        else:
            with zipfile.ZipFile(archive) as zf:
                _extract_zip(zf, target, label=label)
    except SourceError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise SourceError(f"cannot read archive {label}: {_one_line(exc)}") from None
    return _store_root(target)


def _extract_tar(tf: tarfile.TarFile, target: Path, *, label: str) -> None:
    members = tf.getmembers()
    plan: list[tuple[tarfile.TarInfo, str]] = []
    for m in members:
        rel = _safe_relpath(m.name, label=label)
        if m.isdev() or not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise SourceError(f"unsafe member {m.name!r} in {label}: device or special file")
        if m.issym() and not _link_target_ok(rel, m.linkname):
            raise SourceError(f"unsafe member {m.name!r} in {label}: symlink to {m.linkname!r} "
                              "points outside the target")
        if m.islnk():
            try:
                _safe_relpath(m.linkname, label=label)
            except SourceError:
                raise SourceError(f"unsafe member {m.name!r} in {label}: hard link to "
                                  f"{m.linkname!r} points outside the target") from None
        plan.append((m, rel))
    for m, rel in plan:
        if not rel:
            continue
        if m.isdir():
            (target / rel).mkdir(parents=True, exist_ok=True)
            continue
        dest = _prepare(target, rel, name=m.name, label=label)
        if m.issym():
            os.symlink(m.linkname, dest)
            continue
        if m.islnk():
            # Copy instead of linking: the copy must not share inodes with anything.
            src = target / _safe_relpath(m.linkname, label=label)
            if not _inside(target, src) or not src.is_file():
                raise SourceError(f"unsafe member {m.name!r} in {label}: hard link to "
                                  f"{m.linkname!r} is not a file extracted earlier")
            shutil.copyfile(src, dest)
        else:
            fh = tf.extractfile(m)
            assert fh is not None
            with fh, open(dest, "wb") as out:
                shutil.copyfileobj(fh, out, _CHUNK)
        os.chmod(dest, (m.mode & 0o777) | stat.S_IRUSR | stat.S_IWUSR)
        os.utime(dest, (m.mtime, m.mtime))


def _extract_zip(zf: zipfile.ZipFile, target: Path, *, label: str) -> None:
    plan: list[tuple[zipfile.ZipInfo, str, int]] = []
    for info in zf.infolist():
        rel = _safe_relpath(info.filename, label=label)
        mode = info.external_attr >> 16
        ftype = stat.S_IFMT(mode)
        if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
            raise SourceError(f"unsafe member {info.filename!r} in {label}: device or special file")
        if ftype == stat.S_IFLNK:
            link = zf.read(info).decode("utf-8", "surrogateescape")
            if not _link_target_ok(rel, link):
                raise SourceError(f"unsafe member {info.filename!r} in {label}: symlink to {link!r} "
                                  "points outside the target")
        plan.append((info, rel, ftype))
    for info, rel, ftype in plan:
        if not rel:
            continue
        if info.is_dir():
            (target / rel).mkdir(parents=True, exist_ok=True)
            continue
        dest = _prepare(target, rel, name=info.filename, label=label)
        if ftype == stat.S_IFLNK:
            os.symlink(zf.read(info).decode("utf-8", "surrogateescape"), dest)
            continue
        with zf.open(info) as fh, open(dest, "wb") as out:
            shutil.copyfileobj(fh, out, _CHUNK)
        mtime = time.mktime(info.date_time + (0, 0, -1))
        os.utime(dest, (mtime, mtime))


def _store_root(target: Path) -> Path:
    """An archive of ``chroma_data/`` holds one top-level directory: the store is inside it."""
    entries = [p for p in target.iterdir() if p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return target


# ---------------------------------------------------------------- S3


def _parse_s3(url: str) -> tuple[str, str, bool]:
    """``(bucket, key_or_prefix, is_prefix)``; a key without an archive suffix is a prefix."""
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise SourceError(f"no bucket in {url!r} (expected s3://bucket/prefix/ or s3://bucket/key.tar.gz)")
    lowered = key.lower()
    if key and not key.endswith("/") and lowered.endswith(_TAR_SUFFIXES + _ZIP_SUFFIXES):
        return bucket, key, False
    if key and not key.endswith("/"):
        key += "/"  # s3://b/store means the "store/" folder, never "store2/..."
    return bucket, key, True


def _s3_client(endpoint_url: str | None, profile: str | None, region: str | None,
               attempts: int) -> Any:
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise SourceError("s3:// sources need boto3: pip install 'pytest-chroma-compat[s3]'") from None
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        config = Config(retries={"max_attempts": attempts, "mode": "standard"},
                        connect_timeout=10, read_timeout=60, max_pool_connections=S3_WORKERS * 2)
        return session.client("s3", endpoint_url=endpoint_url, config=config)
    except BotoCoreError as exc:  # ProfileNotFound, invalid endpoint, no region...
        raise SourceError(f"cannot set up S3 access: {_one_line(exc)}") from None


def _s3_error(exc: BaseException, where: str) -> SourceError:
    """Map botocore's errors to the few things a user can act on, in one line."""
    from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError,
                                     EndpointConnectionError, NoCredentialsError,
                                     PartialCredentialsError)

    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        msg = _one_line(err.get("Message") or code)
        if code in ("NoSuchBucket",):
            return SourceError(f"no objects at {where}: bucket does not exist")
        if code in ("NoSuchKey", "404", "NotFound"):
            return SourceError(f"no objects at {where}: no such key")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            return SourceError(f"access denied to {where}: {msg}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                    "InvalidToken", "TokenRefreshRequired"):
            return SourceError(f"access denied to {where}: credentials rejected ({code})")
        if code in ("PreconditionFailed", "412"):
            return SourceError(f"{where} changed while it was being downloaded; retry when nothing writes to it")
        if status == 403:
            return SourceError(f"access denied to {where}: {msg}")
        return SourceError(f"S3 error on {where}: {code}: {msg}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return SourceError(f"no usable AWS credentials for {where}: {_one_line(exc)}")
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return SourceError(f"cannot reach the S3 endpoint for {where}: {_one_line(exc)}")
    if isinstance(exc, BotoCoreError):
        return SourceError(f"S3 error on {where}: {_one_line(exc)}")
    if isinstance(exc, OSError):
        return SourceError(f"cannot write the copy of {where}: {_one_line(exc)}")
    return SourceError(f"S3 error on {where}: {type(exc).__name__}: {_one_line(exc)}")


def _listing_hash(objects: list[dict]) -> str:
    digest = hashlib.sha256()
    for o in sorted(objects, key=lambda o: o["Key"]):
        lm = o.get("LastModified")
        digest.update(f"{o['Key']}\0{o['Size']}\0{o.get('ETag', '')}\0"
                      f"{lm.isoformat() if lm else ''}\n".encode())
    return digest.hexdigest()


def _list(client: Any, bucket: str, prefix: str, where: str) -> list[dict]:
    try:
        found: list[dict] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                if o["Key"].endswith("/") and o["Size"] == 0:
                    continue  # "folder" markers made by consoles: not data
                found.append(o)
        return found
    except Exception as exc:  # noqa: BLE001 - mapped to one line
        raise _s3_error(exc, where) from None


def _head(client: Any, bucket: str, key: str, where: str) -> dict:
    try:
        h = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, where) from None
    return {"Key": key, "Size": h["ContentLength"], "ETag": h.get("ETag", ""),
            "LastModified": h.get("LastModified")}


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


def _download(client: Any, bucket: str, obj: dict, dest: Path, counter: _Counter,
              attempts: int) -> None:
    """Fetch one object and verify it; re-fetch on a size or MD5 mismatch.

    ``IfMatch`` pins the ETag seen in the listing, so an object rewritten
    mid-run fails loudly instead of yielding a copy mixing two states.
    The ETag is the MD5 only for single-part, non-KMS uploads ("-" marks
    multipart); otherwise size is all that can be checked.
    """
    key, size = obj["Key"], obj["Size"]
    etag = obj.get("ETag", "").strip('"')
    where = f"s3://{bucket}/{key}"
    problem = ""
    for _ in range(max(1, attempts)):
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            kwargs["IfMatch"] = obj["ETag"]
        resp = client.get_object(**kwargs)
        md5, got = hashlib.md5(usedforsecurity=False), 0
        try:
            with open(dest, "wb") as out:
                for chunk in resp["Body"].iter_chunks(_CHUNK):
                    out.write(chunk)
                    md5.update(chunk)
                    got += len(chunk)
                    counter.add(len(chunk))
        except Exception as exc:  # noqa: BLE001 - a dropped stream: retry it
            from botocore.exceptions import BotoCoreError

            if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
                raise
            if not isinstance(exc, (BotoCoreError, ConnectionError)):
                raise
            problem = f"download interrupted: {_one_line(exc)}"
            counter.add(-got)
            continue
        if got != size:
            problem = f"size mismatch (got {got} bytes, listed {size})"
        elif (etag and "-" not in etag and resp.get("ServerSideEncryption") != "aws:kms"
              and "SSECustomerAlgorithm" not in resp and md5.hexdigest() != etag):
            problem = f"checksum mismatch (md5 {md5.hexdigest()}, ETag {etag})"
        else:
            lm = obj.get("LastModified")
            if lm is not None:
                ts = lm.timestamp()
                os.utime(dest, (ts, ts))
            return
        counter.add(-got)
    raise SourceError(f"{where}: {problem} after {max(1, attempts)} attempts")


def _materialize_s3(url: str, work: Path, *, endpoint_url: str | None, profile: str | None,
                    region: str | None, progress: Progress | None, attempts: int) -> Materialized:
    bucket, key, is_prefix = _parse_s3(url)
    where = f"s3://{bucket}/{key}"
    client = _s3_client(endpoint_url, profile, region, attempts)
    if is_prefix:
        listed = _list(client, bucket, key, where)
        if not listed:
            raise SourceError(f"no objects at {where}")
    else:
        listed = [_head(client, bucket, key, where)]
    before = _listing_hash(listed)
    dest_root = work / ("store" if is_prefix else "archive")
    jobs: list[tuple[dict, Path]] = []
    for o in listed:
        rel = _safe_relpath(o["Key"][len(key):], label=where, what="key") if is_prefix \
            else posixpath.basename(key)
        if not rel:
            continue
        jobs.append((o, dest_root / rel))
    counter = _Counter(sum(o["Size"] for o, _ in jobs), progress)
    for _, dest in jobs:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(f"keys under {where} do not form a directory tree: {_one_line(exc)}") from None
    with ThreadPoolExecutor(max_workers=S3_WORKERS, thread_name_prefix="s3-get") as pool:
        futures = [pool.submit(_download, client, bucket, o, dest, counter, attempts) for o, dest in jobs]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
        for f in futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                exc = f.exception()
                raise _s3_error(exc, where) from None
    after_listing = _list(client, bucket, key, where) if is_prefix else [_head(client, bucket, key, where)]
    after = _listing_hash(after_listing)
    objects = tuple(S3Object(o["Key"], o["Size"], o.get("ETag", "").strip('"')) for o, _ in jobs)
    if is_prefix:
        return Materialized(path=dest_root, kind="s3", source_hash_before=before,
                            source_hash_after=after, objects=objects)
    archive = jobs[0][1]
    kind = _archive_kind(archive)
    if kind is None:
        raise SourceError(f"{where} is not a supported archive (.tar, .tar.gz, .tgz, .zip)")
    path = _extract(archive, kind, work / "extracted", label=where)
    return Materialized(path=path, kind="s3", source_hash_before=before,
                        source_hash_after=after, objects=objects)


def _one_line(exc: object) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
