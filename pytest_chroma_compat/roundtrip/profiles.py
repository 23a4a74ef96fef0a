"""Hypothesis profiles: ``ci`` (the default: few examples), ``dev`` and ``thorough``.

Chosen by ``--chroma-profile`` / ``--profile``, else ``CHROMA_COMPAT_PROFILE``.
The example database lives in the harness's cache, not in the user's cwd, so a
failure found once replays on every later run until it is fixed;
``CHROMA_COMPAT_EXAMPLES`` names another directory (the project's own tests give
each run a fresh one, so a finding from a nox session cannot change their verdicts).

A run with a seed is a reproducible run: it uses no example database at all
(replaying a failure saved by an earlier run made a second run with the same
seed start from another example and, measured, end on another invariant), and
its shrinking stops after a number of runs, never after a number of seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROFILES = {"ci": 8, "dev": 30, "thorough": 200}
# seconds Hypothesis may spend shrinking a failure (each example runs two real releases); not with a seed
SHRINK_SECONDS = {"ci": 30, "dev": 60, "thorough": 300}
# runs Hypothesis may spend shrinking a failure: the budget that keeps a seeded run reproducible
# (measured: a list-metadata failure of 1.5.9 -> 0.6.3 export-import shrinks in 155-184 runs, 20 s)
SHRINK_RUNS = {"ci": 200, "dev": 400, "thorough": 1000}
DEFAULT = "ci"


def name(profile: str | None = None) -> str:
    chosen = profile or os.environ.get("CHROMA_COMPAT_PROFILE") or DEFAULT
    if chosen not in PROFILES:
        from pytest_chroma_compat.common.errors import CompatError

        raise CompatError(f"unknown profile {chosen!r}; choose one of {', '.join(PROFILES)}")
    return chosen


def shrink_seconds(profile: str | None = None, seeded: bool = False) -> float | None:
    """None with a seed: a time budget would make the shrunk example depend on the machine's load."""
    return None if seeded else SHRINK_SECONDS[name(profile)]


def shrink_runs(profile: str | None = None, override: int | None = None) -> int:
    """``override`` (``--max-shrinks``) replaces the profile's budget: a published matrix spends ~25 runs
    where a failing 0.5.23 -> 1.0.21 unflushed-wal cell spent 228 s on the default 200."""
    return SHRINK_RUNS[name(profile)] if override is None else override


def max_examples(profile: str | None = None, examples: int | None = None) -> int:
    return examples or PROFILES[name(profile)]


def database_dir() -> Path:
    from pytest_chroma_compat.engine import cache_dirs

    return Path(os.environ.get("CHROMA_COMPAT_EXAMPLES") or cache_dirs.home() / "hypothesis")


def settings(profile: str | None = None, examples: int | None = None, seeded: bool = False) -> Any:
    """Explicit in the fields that changed what one seed drew (examples, database, phases), so a test
    suite's own Hypothesis profile does not make the plugin draw otherwise than the CLI. (``derandomize`` is
    left to the profile in force: a seed overrides it, and without one Hypothesis's ``ci`` profile
    under ``CI=true`` keeps exploring runs stable there.)"""
    from hypothesis import HealthCheck, Phase, Verbosity
    from hypothesis import settings as hsettings
    from hypothesis.database import DirectoryBasedExampleDatabase

    phases = [Phase.explicit, Phase.generate, Phase.target, Phase.shrink]
    if not seeded:
        phases.insert(1, Phase.reuse)
    return hsettings(
        max_examples=max_examples(profile, examples),
        deadline=None,
        database=None if seeded else DirectoryBasedExampleDatabase(str(database_dir())),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        report_multiple_bugs=False,
        verbosity=Verbosity.normal,
        # the explain phase reruns variations of a failure: minutes with real releases
        phases=phases,
    )


@contextmanager
def hypothesis_home() -> Iterator[Path]:
    """Hypothesis's storage directory in the harness's cache for the duration of our runs.

    Why: Hypothesis writes ``.hypothesis/`` (its unicode tables, constants) under the
    current directory, so ``chroma-compat check`` run from a project left one there. Only
    around our own runs, and restored after: a user suite that uses Hypothesis itself keeps
    its own ``.hypothesis`` and its own example database.
    """
    from hypothesis import configuration

    from pytest_chroma_compat.engine import cache_dirs

    key = "__hypothesis_home_directory"  # module-level, so not name-mangled; None means "not chosen yet"
    before = getattr(configuration, key, None)
    ours = cache_dirs.home() / "hypothesis-storage"
    configuration.set_hypothesis_home_dir(ours)
    try:
        yield ours
    finally:
        configuration.set_hypothesis_home_dir(before)


@contextmanager
def no_local_constants() -> Iterator[None]:
    """Hypothesis draws without the constants of the caller's own modules, for the duration of our runs.

    Why: Hypothesis (6.131 on) mixes literals from every "local" module loaded in the process
    (not under site-packages, not a test file) into what it draws. So one seed drew other
    examples in ``chroma-compat check`` than in a Python script or a pytest session (measured,
    6.155: the second example of 1.5.9 -> 0.6.3 export-import, seed 0), and would again with
    this package installed from a wheel instead of a checkout. Without that pool, what is drawn
    depends on the seed, the strategies and the Hypothesis release only. A private hook: absent
    in releases before the pool existed, and then there is nothing to undo.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a Hypothesis release laid out otherwise
        yield
        return
    getter = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if getter is None or cache is None or not hasattr(providers, "Constants"):
        yield
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    cache.clear()  # it holds the permitted constants of the pool in force when it was filled
    try:
        yield
    finally:
        providers._get_local_constants = getter
        cache.clear()


@contextmanager
def isolated() -> Iterator[None]:
    """Both of the above: our Hypothesis runs leave nothing in the cwd and draw the same everywhere."""
    with hypothesis_home(), no_local_constants():
        yield
