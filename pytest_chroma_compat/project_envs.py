"""Per-release project environments: a release, its pin rules, and the user's own project, together.

The release environments (envs.py) hold chromadb alone and are shared by every
worker, so the user's project is never installed into them. A project
environment is a venv of its own: ``chromadb==V`` with V's pin rules, the
project installed editable with the extras the user names, and what the command
needs beside (pytest for a pytest command). uv resolves all of it at once, with
the release held at its exact version, so a project whose dependencies cannot
live with that release is found before anything runs; a project that excludes
the release outright (``chromadb>=1.0``) is told apart from that without a
resolver, from its own ``pyproject.toml``.

Key: (release, Python, pin rules, hash of the project's dependency files, the
extras and additions). A warm run reads one manifest; an edit to
``pyproject.toml`` (or setup.cfg, setup.py, requirements*.txt) builds afresh.
Builds of one project are serialized: an editable install writes metadata into
the project, and two at once would race on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import envs, paths, pins, releases
from .errors import CompatError, InstallFailed

MANIFEST = "chroma-compat-project.json"
DEPENDENCY_FILES = ("pyproject.toml", "setup.cfg", "setup.py")
REQUIREMENT_GLOBS = ("requirements*.txt",)


class ProjectExcludesRelease(CompatError):
    """The project's own requirements rule the release out: an answer about the project, not a failure."""


@dataclass
class ProjectEnv:
    version: str
    project: Path
    path: Path
    key: str
    extras: list[str] = field(default_factory=list)
    additions: list[str] = field(default_factory=list)
    built_seconds: float = 0.0

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"


def projects_dir() -> Path:
    path = paths.home() / "projects"
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_project(start: Path) -> Path:
    """The directory holding the project's pyproject.toml (or setup.py), from ``start`` upwards."""
    here = start.resolve()
    for candidate in (here, *here.parents):
        if any((candidate / name).is_file() for name in ("pyproject.toml", "setup.py")):
            return candidate
    raise CompatError(f"no pyproject.toml or setup.py in {here} or above: pass --project DIR (the project to "
                      "install beside each release)")


def dependency_digest(project: Path, extras: list[str], additions: list[str]) -> str:
    h = hashlib.sha256(str(project.resolve()).encode())
    files = [project / n for n in DEPENDENCY_FILES] + sorted(p for g in REQUIREMENT_GLOBS for p in project.glob(g))
    for path in files:
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(json.dumps([sorted(extras), sorted(additions)]).encode())
    return h.hexdigest()[:10]


def declared_chromadb(project: Path) -> str | None:
    """The project's own requirement on chromadb (``chromadb>=1.0``), from pyproject.toml's
    [project] dependencies; None when it names none or does not say it there."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        meta = tomllib.loads((project / "pyproject.toml").read_text("utf-8")).get("project") or {}
    except (OSError, tomllib.TOMLDecodeError):
        return None
    for raw in meta.get("dependencies") or []:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            continue
        if req.name.lower().replace("_", "-") == "chromadb":
            return str(req.specifier) or None
    return None


def check_allowed(version: str, project: Path) -> None:
    from packaging.specifiers import SpecifierSet

    spec = declared_chromadb(project)
    if spec and not SpecifierSet(spec).contains(version, prereleases=True):
        raise ProjectExcludesRelease(f"the project requires chromadb{spec}, which excludes {version}")


def ensure(version: str, project: Path, *, extras: list[str] | None = None, additions: list[str] | None = None,
           note: Callable[[str], None] = lambda s: None) -> ProjectEnv:
    """The environment of ``project`` under release ``version``, built once per dependency state."""
    extras, additions = sorted(extras or []), sorted(additions or [])
    project = project.resolve()
    releases.lookup(version)
    check_allowed(version, project)
    why = pins.unavailable(version)
    if why:
        raise InstallFailed(f"chromadb {version} cannot be installed on this Python: {why}")
    applied = pins.for_version(version)
    key = f"{project.name[:40]}-{envs.env_key(version, applied)}-{dependency_digest(project, extras, additions)}"
    final = projects_dir() / key
    env = ProjectEnv(version, project, final, key, extras, additions)
    if (final / MANIFEST).is_file():
        return env
    with envs._lock(f"project-{hashlib.sha256(str(project).encode()).hexdigest()[:16]}"):
        if (final / MANIFEST).is_file():
            return env
        note(f"building {project.name} with chromadb {version} ({', '.join(r.id for r in applied) or 'no pins'})")
        started = time.monotonic()
        build = final.parent / f".build-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _install(build, version, applied, project, extras, additions)
            env.built_seconds = time.monotonic() - started
            (build / MANIFEST).write_text(json.dumps({"version": version, "project": str(project), "extras": extras,
                                                      "additions": additions, "created": time.time()}))
            if final.exists():
                shutil.rmtree(final)
            os.rename(build, final)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    return env


def _install(target: Path, version: str, applied: list[pins.PinRule], project: Path, extras: list[str],
             additions: list[str]) -> None:
    uv = envs._uv()
    if uv is None:
        raise InstallFailed("project environments need uv (`pip install uv`)")
    what = f"the project at {project} cannot be installed with chromadb {version}"
    cfile = target.parent / f"{target.name}.constraints.txt"
    requirements, constraints = pins.install_args(version, applied)
    cfile.write_text("\n".join(constraints) + "\n")
    editable = f"{project}[{','.join(extras)}]" if extras else str(project)
    try:
        envs._run([uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(target)], what)
        envs._run([uv, "pip", "install", "--quiet", "--python", str(target / "bin" / "python"), "-c", str(cfile),
                   *requirements, "-e", editable, *additions], what)
    finally:
        cfile.unlink(missing_ok=True)


def prune() -> list[str]:
    """Remove project environments whose project directory is gone, and interrupted builds;
    returns what was removed (``chroma-compat env prune`` calls it)."""
    removed = []
    root = paths.home() / "projects"
    if not root.is_dir():
        return removed
    for path in sorted(root.iterdir()):
        if path.name.startswith(".build-"):
            pid = path.name.rsplit("-", 2)[-2]
            if pid.isdigit() and Path(f"/proc/{pid}").exists():
                continue  # a build in progress
        else:
            try:
                project = json.loads((path / MANIFEST).read_text("utf-8"))["project"]
            except (OSError, ValueError, KeyError):
                project = None
            if project and Path(project).is_dir():
                continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed
