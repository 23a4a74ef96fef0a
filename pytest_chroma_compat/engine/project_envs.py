"""Per-release project environments: a release, its pin rules, and the user's own project, together.

The release environments (engine/envs.py) hold chromadb alone and are shared by every
worker, so the user's project is never installed into them. A project
environment is a venv of its own: ``chromadb==V`` with V's pin rules, the
project installed editable with the extras the user names, and what the command
needs beside (pytest for a pytest command). uv resolves all of it at once, with
the release held at its exact version, so a project whose dependencies cannot
live with that release is found before anything runs; a project that excludes
the release outright (``chromadb>=1.0``) is told apart from that without a
resolver, from its own ``pyproject.toml``.

Key: (release, Python, pin rules, hash of the project's dependency files, the
extras and additions, and the options of engine/project_options.py: groups,
``--no-sources``, ``--python``, ``--ignore-chromadb-bound``). A warm run reads one manifest; an edit to
``pyproject.toml`` (or setup.cfg, setup.py, requirements*.txt) builds afresh.
Builds of one project are serialized.

What was installed is recorded (``FILES``: every file of the environment with
its size and mtime, ``__pycache__`` aside) and checked before every run: the
user's command runs with that environment's ``bin`` first on PATH and can write
into it (a ``.pth`` file, a ``pip install``), which would change every later run
under that release. A changed environment is rebuilt, and the note names what
changed.

Nothing is written into the user's project: setuptools' editable build puts its
``*.egg-info`` beside the sources and a ``build/`` folder into the project, so
the install runs with ``DIST_EXTRA_CONFIG`` naming a config file of ours that
sends both to a folder of the build in the cache (setuptools reads that file
after the project's own setup.cfg). A backend that ignores it and leaves new
``*.egg-info``/``build`` entries in the project anyway has exactly those entries
(new since the build started) removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pytest_chroma_compat.common.errors import CompatError, InstallFailed
from pytest_chroma_compat.engine import cache_dirs, envs, pins, releases

if TYPE_CHECKING:
    from pytest_chroma_compat.engine import project_options

MANIFEST = "chroma-compat-project.json"
FILES = "chroma-compat-files.json"
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
    bound_ignored: str = ""  # the project excludes this release; installed anyway (--ignore-chromadb-bound)

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"


def projects_dir() -> Path:
    path = cache_dirs.home() / "projects"
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_project(start: Path) -> Path:
    """The directory holding the project's pyproject.toml (or setup.py), from ``start`` upwards."""
    here = start.resolve()
    for candidate in (here, *here.parents):
        if any((candidate / name).is_file() for name in ("pyproject.toml", "setup.py")):
            return candidate
    raise CompatError(
        f"no pyproject.toml or setup.py in {here} or above: pass --project DIR (the project to "
        "install beside each release)"
    )


def dependency_digest(project: Path, extras: list[str], additions: list[str], options_key: str = "") -> str:
    h = hashlib.sha256(str(project.resolve()).encode())
    files = [project / n for n in DEPENDENCY_FILES] + sorted(p for g in REQUIREMENT_GLOBS for p in project.glob(g))
    for path in files:
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(json.dumps([sorted(extras), sorted(additions)]).encode())
    if options_key not in ("", "{}"):  # the keys of environments built before the options existed stay
        h.update(options_key.encode())
    return h.hexdigest()[:10]


def check_allowed(version: str, project: Path) -> None:
    """ProjectExcludesRelease when the project's own requirements rule ``version`` out (``ensure``
    asks project_options.excluded_by, which also reads the extras and groups asked for)."""
    from pytest_chroma_compat.engine import project_options

    why = project_options.excluded_by(version, project, project_options.ProjectOptions())
    if why:
        raise ProjectExcludesRelease(why)


def ensure(
    version: str,
    project: Path,
    *,
    extras: list[str] | None = None,
    additions: list[str] | None = None,
    note: Callable[[str], None] = lambda s: None,
    options: project_options.ProjectOptions | None = None,
) -> ProjectEnv:
    """The environment of ``project`` under release ``version``, built once per dependency state.

    ``options`` (engine/project_options.py) adds groups, ``--with`` requirements, ``--no-sources``, another
    interpreter and ``--ignore-chromadb-bound``; each is part of the key."""
    from pytest_chroma_compat.engine import project_options

    options = options or project_options.ProjectOptions()
    extras = sorted({*(extras or []), *options.extras})
    additions = sorted({*(additions or []), *options.with_})
    if extras != list(options.extras):
        options = dataclasses.replace(options, extras=tuple(extras))
    project = project.resolve()
    releases.lookup(version)
    bound = project_options.excluded_by(version, project, options)
    if bound and not options.ignore_bound:
        raise ProjectExcludesRelease(bound)
    interpreter = project_options.find_python(options.python) if options.python else None
    python_version = interpreter.version if interpreter else None
    why = pins.unavailable(version, python_version)
    if why:
        raise InstallFailed(
            f"chromadb {version} cannot be installed on Python {python_version or 'this Python'}: {why}"
        )
    applied = pins.for_version(version, python_version)
    base = envs.env_key(version, applied)
    if python_version:  # the key names the environment's interpreter, not ours
        base = base.replace(envs.python_tag(), "py" + ".".join(python_version.split(".")[:2]))
    digest = dependency_digest(project, extras, additions, options.key())
    key = f"{project.name[:40]}-{base}-{digest}"
    final = projects_dir() / key
    env = ProjectEnv(version, project, final, key, extras, additions, bound_ignored=bound)
    if (final / MANIFEST).is_file() and not changes(final):
        return env
    with envs._lock(f"project-{hashlib.sha256(str(project).encode()).hexdigest()[:16]}"):
        if (final / MANIFEST).is_file():
            changed = changes(final)
            if not changed:
                return env
            note(
                f"the environment of {project.name} under chromadb {version} changed since it was built "
                f"({changed}); rebuilding it"
            )
        note(f"building {project.name} with chromadb {version} ({', '.join(r.id for r in applied) or 'no pins'})")
        started = time.monotonic()
        build = final.parent / f".build-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _install(
                build,
                version,
                applied,
                project,
                extras,
                additions,
                options=options,
                python=interpreter.path if interpreter else sys.executable,
            )
            env.built_seconds = time.monotonic() - started
            (build / FILES).write_text(json.dumps(listing(build)))
            (build / MANIFEST).write_text(
                json.dumps(
                    {
                        "version": version,
                        "project": str(project),
                        "extras": extras,
                        "additions": additions,
                        "options": options.key(),
                        "python": python_version or sys.version.split()[0],
                        "created": time.time(),
                    }
                )
            )
            if final.exists():
                shutil.rmtree(final)
            os.rename(build, final)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    return env


def _install(
    target: Path,
    version: str,
    applied: list[pins.PinRule],
    project: Path,
    extras: list[str],
    additions: list[str],
    *,
    options: project_options.ProjectOptions | None = None,
    python: str = sys.executable,
) -> None:
    from pytest_chroma_compat.engine import project_options

    options = options or project_options.ProjectOptions()
    uv = envs._uv()
    if uv is None:
        raise InstallFailed("project environments need uv (`pip install uv`)")
    what = f"the project at {project} cannot be installed with chromadb {version}"
    cfile = target.parent / f"{target.name}.constraints.txt"
    ofile = target.parent / f"{target.name}.overrides.txt"
    requirements, constraints = pins.install_args(version, applied)
    cfile.write_text("\n".join(constraints) + "\n")
    editable = f"{project}[{','.join(extras)}]" if extras else str(project)
    meta = target.parent / f"{target.name}.meta"  # the build's egg-info and build/ folder: never in the project
    meta.mkdir()
    extra_config = meta / "setup-extra.cfg"
    extra_config.write_text(f"[egg_info]\negg_base = {meta}\n\n[build]\nbuild_base = {meta / 'build'}\n")
    before = _build_leftovers(project)
    try:
        envs._run([uv, "venv", "--quiet", "--relocatable", "--python", python, str(target)], what)
        flags = ["--no-sources"] if options.no_sources else []
        if options.ignore_bound:  # the release, whatever the project's own chromadb requirement says
            ofile.write_text(f"chromadb=={version}\n")
            flags += ["--override", str(ofile)]
        groups = project_options.group_requirements(project, options)
        envs._run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(target / "bin" / "python"),
                "-c",
                str(cfile),
                *flags,
                *requirements,
                "-e",
                editable,
                *groups,
                *additions,
            ],
            what,
            env={**os.environ, "DIST_EXTRA_CONFIG": str(extra_config)},
        )
    finally:
        cfile.unlink(missing_ok=True)
        ofile.unlink(missing_ok=True)
        shutil.rmtree(meta, ignore_errors=True)
        for made in _build_leftovers(project) - before:  # a backend that ignored the config: ours to remove
            if made.is_dir() and not made.is_symlink():
                shutil.rmtree(made, ignore_errors=True)
            else:
                made.unlink(missing_ok=True)


def _build_leftovers(project: Path) -> set[Path]:
    """The entries an editable build may leave in a project: ``*.egg-info`` at its root or one level
    down (a src layout), and a ``build`` folder."""
    found = {p for p in (project / "build",) if p.exists()}
    for pattern in ("*.egg-info", "*/*.egg-info"):
        found.update(project.glob(pattern))
    return found


def _walk(root: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            if rel in (MANIFEST, FILES):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            out[rel] = [st.st_size, st.st_mtime_ns]
    return out


def listing(env_path: Path) -> dict[str, list[int]]:
    """What an environment holds: every file (``__pycache__`` aside) with its size and mtime."""
    return _walk(env_path)


def changes(env_path: Path) -> str:
    """How the environment differs from what was installed, in a few words; "" when it does not."""
    try:
        recorded = json.loads((env_path / FILES).read_text("utf-8"))
    except (OSError, ValueError):
        return f"no record of what was installed ({FILES})"
    if not isinstance(recorded, dict):
        return f"an unreadable {FILES}"
    now = listing(env_path)
    added = sorted(set(now) - set(recorded))
    removed = sorted(set(recorded) - set(now))
    changed = sorted(k for k in set(now) & set(recorded) if list(now[k]) != list(recorded[k]))
    if not (added or removed or changed):
        return ""
    parts = [
        f"{len(v)} {what}, e.g. {v[0]}"
        for what, v in (("added", added), ("changed", changed), ("removed", removed))
        if v
    ]
    return "; ".join(parts)


def prune() -> list[str]:
    """Remove project environments whose project directory is gone, and interrupted builds;
    returns what was removed (``chroma-compat env prune`` calls it)."""
    removed = []
    root = cache_dirs.home() / "projects"
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
