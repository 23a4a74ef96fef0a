"""Pin rules: what a release needs beside ``chromadb==X`` to install and work on this Python.

The rules are data (engine/pins.toml), one per problem, each keyed by a version
specifier and carrying the error it prevents, so a reader can check why a pin
exists and a sweep (``nox -s sweep``) can show it is still needed.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pytest_chroma_compat.engine.releases import _load_toml

TABLE = Path(__file__).with_name("pins.toml")


@dataclass(frozen=True)
class PinRule:
    id: str
    versions: str
    constraints: tuple[str, ...]
    prevents: str
    python: str = ""
    add: tuple[str, ...] = field(default_factory=tuple)
    # which environment kinds (envs.PACKAGES) the rule was measured on: the thin chromadb-client
    # package shares some of the full package's problems (posthog) and none of its server's (fastapi)
    kinds: tuple[str, ...] = ("full",)

    def applies(self, version: str, python: str | None = None, kind: str = "full") -> bool:
        from packaging.specifiers import SpecifierSet

        if kind not in self.kinds or version not in SpecifierSet(self.versions):
            return False
        if self.python:
            return (python or platform.python_version()) in SpecifierSet(self.python)
        return True


@lru_cache(maxsize=1)
def rules() -> tuple[PinRule, ...]:
    table = _load_toml(TABLE).get("rule", [])
    return tuple(
        PinRule(
            id=row["id"],
            versions=row["versions"],
            constraints=tuple(row.get("constraints", ())),
            add=tuple(row.get("add", ())),
            prevents=row["prevents"],
            python=row.get("python", ""),
            kinds=tuple(row.get("kinds", ("full",))),
        )
        for row in table
    )


def unavailable(version: str, python: str | None = None, kind: str = "full") -> str | None:
    """Why a release cannot work on this Python whatever the pins, if it cannot."""
    from packaging.specifiers import SpecifierSet

    python = python or platform.python_version()
    for row in _load_toml(TABLE).get("unavailable", []):
        if (
            kind in row.get("kinds", ("full",))
            and version in SpecifierSet(row["versions"])
            and python in SpecifierSet(row.get("python", ""))
        ):
            return row["reason"]
    return None


def for_version(version: str, python: str | None = None, kind: str = "full") -> list[PinRule]:
    return [r for r in rules() if r.applies(version, python, kind)]


def digest(applied: list[PinRule]) -> str:
    """Part of an environment's cache key: a change to a rule that applies rebuilds the env.

    ``kinds`` stays out: which kinds a rule covers decides whether it is in ``applied`` at all,
    and leaving it out keeps the keys of every full-package environment built before it existed."""
    payload = json.dumps([[r.id, r.versions, r.constraints, r.add, r.python] for r in applied])
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def install_args(version: str, applied: list[PinRule], package: str = "chromadb") -> tuple[list[str], list[str]]:
    """What an installer is given for a release: (requirements, constraints).

    Why one function: the harness's environments and a user's own nox sessions
    (``pytest_chroma_compat.usercode.nox``) must install a release the same way, or a suite
    that passes in one says nothing about the other. Constraints go to the
    installer as a constraints file (``-c``); requirements are installed."""
    requirements = [f"{package}=={version}"] + [req for r in applied for req in r.add]
    constraints = [c for r in applied for c in r.constraints]
    return requirements, constraints
