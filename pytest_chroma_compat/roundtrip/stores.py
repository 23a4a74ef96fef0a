"""Stores written by an old release, for tests that read them with the chromadb they run today.

A store is described by data (declarative records, a Hypothesis-drawn
``Program``) or by a seed function of the user's, run inside the old
release's environment with that release's own client. Each distinct
(release, data) is written once per session and handed out as private
copies, so tests may modify what they get.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Union

from pytest_chroma_compat.common.errors import ChromaError, CompatError
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.roundtrip import paths
from pytest_chroma_compat.roundtrip.strategies import Program

Declarative = dict  # {collection: {"ids", "embeddings", "documents", "metadatas", "metadata"}}
StoreData = Union[Declarative, Program, None]


class SeedImportError(CompatError):
    """The user's seed function could not be imported inside the old release's environment."""


def store_key(version: str, data: StoreData = None, seed: str | None = None) -> str:
    h = hashlib.sha256(version.encode())
    if isinstance(data, Program):
        h.update(b"program" + data.fingerprint().encode())
    elif data is not None:
        h.update(json.dumps(data, sort_keys=True, default=_jsonable).encode())
    if seed:
        h.update(b"seed" + seed.encode())
    return h.hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else repr(value)


def write_declarative(client: Any, data: Declarative) -> None:
    for name, spec in data.items():
        col = client.create_collection(name, metadata=spec.get("metadata"))
        if spec.get("ids"):
            col.add(
                ids=list(spec["ids"]),
                embeddings=spec.get("embeddings"),
                documents=spec.get("documents"),
                metadatas=spec.get("metadatas"),
            )


def write_store(
    release: Release, path: Path, data: StoreData = None, seed: str | None = None, sys_path: list[str] | None = None
) -> Path:
    """Write a store with ``release``; with ``seed``, the user's function does the writing."""
    with release.persistent(path) as client:
        if isinstance(data, Program):
            for op in data.ops:
                paths.apply(client, op)
        elif data is not None:
            write_declarative(client, data)
        if seed:
            if ":" not in seed:
                raise CompatError(f"seed {seed!r} must look like 'package.module:function'")
            try:
                release.run(seed, client=client, sys_path=sys_path)
            except ChromaError as exc:
                if exc.type == "TargetNotFound":
                    raise SeedImportError(
                        f"seed {seed!r} does not import in chromadb {release.version}'s environment: {exc.message} "
                        "(a seed runs with only the standard library and that release's chromadb)"
                    ) from None
                raise
    return path


class StoreCache:
    """Stores written once per session, copied per use."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._built: dict[str, Path] = {}

    def get(
        self, release: Release, data: StoreData = None, seed: str | None = None, sys_path: list[str] | None = None
    ) -> Path:
        key = store_key(release.version, data, seed)
        if key not in self._built:
            target = self.root / f"written-{release.version}-{key}"
            if target.exists():
                shutil.rmtree(target)
            self._built[key] = write_store(release, target, data, seed, sys_path)
        return self._built[key]

    def copy(self, source: Path, destination: Path) -> Path:
        shutil.copytree(source, destination)
        return destination
