"""Snapshots of real Chroma stores, for validating an upgrade before doing it.

A user's persistent directory is the one thing the harness must never damage,
so everything here works on a private copy: :func:`materialize` turns a source
(a directory, an archive, or S3) into a copy under a work directory and proves,
with a hash taken before and after, that the source was left as it was.
"""

from __future__ import annotations

from pytest_chroma_compat.snapshot.sources import (
    Materialized,
    S3Object,
    SourceError,
    fingerprint,
    materialize,
    tree_hash,
)

__all__ = ["Materialized", "S3Object", "SourceError", "fingerprint", "materialize", "tree_hash"]
