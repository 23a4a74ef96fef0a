"""The pytest plugin (loaded through the ``pytest11`` entry point in every suite).

It must cost nothing in a suite that never uses it: no chromadb, no numpy, no
environment is touched until a fixture asks for a release. Options have ini
twins so a project can pin its upgrade pair in its config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from .client import Release
    from .roundtrip import PairRunner

OPTIONS = {
    # option: (ini name, help)
    "--chroma-from": ("chroma_compat_from", "the chromadb release the data was written with"),
    "--chroma-to": ("chroma_compat_to", "the chromadb release to upgrade to"),
    "--chroma-profile": ("chroma_compat_profile", "Hypothesis profile for round trips: ci, dev or thorough"),
    "--chroma-examples": ("chroma_compat_examples", "Hypothesis examples per round-trip path"),
    "--chroma-seed": ("chroma_compat_seed", "Hypothesis seed for round trips (a fixed seed gives a fixed verdict)"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chroma-compat", "chromadb upgrade compatibility")
    for option, (ini, help_text) in OPTIONS.items():
        group.addoption(option, dest=ini, default=None, help=help_text)
        parser.addini(ini, help_text, default=None)


def option(config: pytest.Config, name: str) -> Any:
    """Command line first, then the ini file."""
    value = config.getoption(name, default=None)
    return value if value not in (None, "") else (config.getini(name) or None)


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


@pytest.fixture(scope="session")
def chroma_pair(pytestconfig: pytest.Config) -> tuple[str, str]:
    """The (from, to) releases under test, resolved to exact versions."""
    from .errors import CompatError
    from .releases import resolve

    old, new = option(pytestconfig, "chroma_compat_from"), option(pytestconfig, "chroma_compat_to")
    if not old or not new:
        pytest.fail("this test needs --chroma-from and --chroma-to (or their ini keys)", pytrace=False)
    try:
        return resolve(old), resolve(new)
    except CompatError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def chroma_pair_runner(chroma_pair: tuple[str, str]) -> Iterator["PairRunner"]:
    """Both releases of the pair, alive for the session (one worker each)."""
    from .roundtrip import PairRunner

    runner = PairRunner(*chroma_pair)
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def chroma_round_trip_settings(pytestconfig: pytest.Config) -> dict:
    examples = option(pytestconfig, "chroma_compat_examples")
    seed = option(pytestconfig, "chroma_compat_seed")
    return {"profile": option(pytestconfig, "chroma_compat_profile"),
            "examples": int(examples) if examples else None,
            "seed": int(seed) if seed not in (None, "", "random") else None}
