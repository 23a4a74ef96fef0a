"""The pytest plugin (loaded through the ``pytest11`` entry point in every suite).

It must cost nothing in a suite that never uses it: no chromadb, no numpy, no
environment is touched until a fixture asks for a release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from .client import Release


class ReleasePool:
    """One ``Release`` (and so one worker) per version for the whole session."""

    def __init__(self) -> None:
        self._releases: dict[str, "Release"] = {}

    def get(self, version: str) -> "Release":
        from .client import Release
        from .releases import resolve

        exact = resolve(version)
        if exact not in self._releases:
            self._releases[exact] = Release(exact)
        return self._releases[exact]

    def versions(self) -> list[str]:
        return sorted(self._releases)

    def close(self) -> None:
        for release in self._releases.values():
            release.close()
        self._releases.clear()


@pytest.fixture(scope="session")
def chroma_releases() -> Iterator[ReleasePool]:
    """Session-wide pool of releases running in their workers: ``chroma_releases.get("0.6.3")``."""
    pool = ReleasePool()
    yield pool
    pool.close()
