"""Hypothesis profiles: ``ci`` (the default: few examples), ``dev`` and ``thorough``.

Chosen by ``--chroma-profile`` / ``--profile``, else ``CHROMA_COMPAT_PROFILE``.
The example database lives in the harness's cache, not in the user's cwd, so a
failure found once replays on every later run until it is fixed;
``CHROMA_COMPAT_EXAMPLES`` names another directory (the project's own tests give
each run a fresh one, so a finding from a nox session cannot change their verdicts).
"""

from __future__ import annotations

import os

PROFILES = {"ci": 8, "dev": 30, "thorough": 200}
# seconds Hypothesis may spend shrinking a failure (each example runs two real releases)
SHRINK_SECONDS = {"ci": 30, "dev": 60, "thorough": 300}
DEFAULT = "ci"


def name(profile: str | None = None) -> str:
    chosen = profile or os.environ.get("CHROMA_COMPAT_PROFILE") or DEFAULT
    if chosen not in PROFILES:
        from .errors import CompatError

        raise CompatError(f"unknown profile {chosen!r}; choose one of {', '.join(PROFILES)}")
    return chosen


def shrink_seconds(profile: str | None = None) -> float:
    return SHRINK_SECONDS[name(profile)]


def settings(profile: str | None = None, examples: int | None = None):
    from hypothesis import HealthCheck, Phase, settings as hsettings
    from hypothesis.database import DirectoryBasedExampleDatabase

    from . import paths

    return hsettings(
        max_examples=examples or PROFILES[name(profile)],
        deadline=None,
        database=DirectoryBasedExampleDatabase(os.environ.get("CHROMA_COMPAT_EXAMPLES")
                                               or str(paths.home() / "hypothesis")),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        report_multiple_bugs=False,
        # the explain phase reruns variations of a failure: minutes with real releases
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )
