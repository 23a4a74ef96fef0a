"""What a project environment is built from besides the release: extras, PEP 735 groups, additions,
sources, the interpreter, and whether the project's own chromadb bound is honoured.

Why a module of its own: ``run``, ``bisect`` and ``pytest --chroma-under`` take the
same options and must build the same environment from them, and every option is
checked against the project *before* any environment is built, so a typo is one
line (exit 2) naming what exists instead of a resolver error per release:

- ``--extras`` names must be keys of ``[project.optional-dependencies]`` (unless
  the project declares them dynamic: then only its build backend knows).
- ``--group`` names must be keys of ``[dependency-groups]`` (PEP 735); a group's
  ``include-group`` entries are resolved by the ``dependency-groups`` package,
  the reference implementation, and the group's requirements are installed.
- ``--python X.Y`` is an interpreter on this machine (on PATH, pyenv's
  versions, /usr/bin, /usr/local/bin; each one run to prove it is X.Y, a broken
  shim is skipped), else one ``uv python find`` / ``uv python install`` gives;
  else exit 2 with what was tried.
- The project's chromadb bound (its dependencies, and those of the extras and
  groups asked for) decides which releases are "excluded"; a pin inside an
  extra is read here, not left to the resolver. ``ignore_bound`` installs the
  release anyway (uv's ``--override``) and the report marks the row.

Every option is part of the environment's cache key (:meth:`ProjectOptions.key`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import tomllib

from pytest_chroma_compat.common.errors import CompatError

PYTHON_SPEC = re.compile(r"^(\d)\.(\d{1,2})$")
PROBE_TIMEOUT = 20.0
UV_INSTALL_TIMEOUT = 60.0


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class ProjectOptions:
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    with_: tuple[str, ...] = ()  # extra requirements (--with)
    no_sources: bool = False  # ignore [tool.uv.sources]
    python: str | None = None  # "3.12": the interpreter of the environment
    ignore_bound: bool = False  # install the release even where the project's requirements exclude it

    @classmethod
    def make(
        cls,
        *,
        extras: list[str] | None = None,
        groups: list[str] | None = None,
        with_: list[str] | None = None,
        no_sources: bool = False,
        python: str | None = None,
        ignore_bound: bool = False,
    ) -> ProjectOptions:
        def clean(items: list[str] | None) -> tuple[str, ...]:
            return tuple(sorted(dict.fromkeys(i.strip() for i in items or [] if i.strip())))

        return cls(clean(extras), clean(groups), clean(with_), bool(no_sources), python or None, bool(ignore_bound))

    def key(self) -> str:
        """What goes into the environment's cache key beside the extras and additions (``--with``),
        which the key holds already: "{}" for none, so older environments keep their keys."""
        return json.dumps(
            {k: v for k, v in asdict(self).items() if v not in ((), False, None) and k not in ("extras", "with_")},
            sort_keys=True,
        )

    def flags(self) -> list[str]:
        """The command-line form, for a report's command line."""
        out = [f"--extras {','.join(self.extras)}"] if self.extras else []
        out += [f"--group {g}" for g in self.groups] + [f"--with {w!r}" for w in self.with_]
        out += ["--no-sources"] * self.no_sources + ([f"--python {self.python}"] if self.python else [])
        return out + ["--ignore-chromadb-bound"] * self.ignore_bound


def pyproject(project: Path) -> dict:
    try:
        return tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CompatError(f"{project / 'pyproject.toml'} cannot be read: {exc}") from None


def check(project: Path, options: ProjectOptions) -> None:
    """Exit 2 (CompatError) for an extra or group the project does not have, naming those it has."""
    data = pyproject(project)
    meta = data.get("project") or {}
    if (
        options.extras
        and "optional-dependencies" not in (meta.get("dynamic") or [])
        and (meta or not (project / "setup.py").is_file())
    ):
        have = sorted(meta.get("optional-dependencies") or {})
        missing = [e for e in options.extras if _norm(e) not in {_norm(h) for h in have}]
        if missing:
            raise CompatError(
                f"--extras {','.join(missing)}: {project.name} has no such extra "
                f"(its extras: {', '.join(have) or 'none'})"
                + ("; its [dependency-groups] are chosen with --group" if data.get("dependency-groups") else "")
            )
    if options.groups:
        have = sorted(data.get("dependency-groups") or {})
        missing = [g for g in options.groups if _norm(g) not in {_norm(h) for h in have}]
        if missing:
            raise CompatError(
                f"--group {','.join(missing)}: {project.name} has no such dependency group "
                f"(its [dependency-groups]: {', '.join(have) or 'none'})"
            )
        group_requirements(project, options)  # a cycle or a bad include: exit 2 here, not per release
    for req in options.with_:
        _requirement(req, "--with")


def check_python(project: Path, options: ProjectOptions) -> str:
    """The interpreter's full version, after checking the project's ``requires-python`` accepts it;
    exit 2 (CompatError) naming both when it does not (a resolver error per release otherwise)."""
    import platform

    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    version = find_python(options.python).version if options.python else platform.python_version()
    raw = (pyproject(project).get("project") or {}).get("requires-python")
    try:
        spec = SpecifierSet(str(raw)) if raw else None
    except InvalidSpecifier:
        spec = None
    if spec is not None and not spec.contains(version, prereleases=True):
        how = (
            f"--python {options.python} is Python {version}"
            if options.python
            else f"the environments would use Python {version} (this interpreter's)"
        )
        raise CompatError(f"{project.name} requires Python {raw} and {how}: pass --python X.Y of a version it accepts")
    return version


def group_requirements(project: Path, options: ProjectOptions) -> list[str]:
    """The requirements of the groups asked for, ``include-group`` entries resolved (PEP 735)."""
    if not options.groups:
        return []
    import dependency_groups

    table = pyproject(project).get("dependency-groups") or {}
    try:
        return list(dependency_groups.resolve(table, *options.groups))
    except (LookupError, ValueError, TypeError) as exc:
        raise CompatError(f"[dependency-groups] of {project.name}: {exc}") from None


def _requirement(raw: str, where: str):  # -> packaging.requirements.Requirement
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(raw)
    except InvalidRequirement as exc:
        raise CompatError(f"{where} {raw!r} is not a requirement: {str(exc).splitlines()[0]}") from None


def chromadb_bounds(project: Path, options: ProjectOptions) -> list[tuple[str, str]]:
    """(where, specifier) of every chromadb requirement of the project that applies: its
    dependencies, the extras and the groups asked for, and ``--with``."""
    from packaging.requirements import InvalidRequirement, Requirement

    data = pyproject(project)
    meta = data.get("project") or {}
    sources: list[tuple[str, list]] = [("dependencies", list(meta.get("dependencies") or []))]
    optional = {_norm(k): v for k, v in (meta.get("optional-dependencies") or {}).items()}
    sources += [(f"extra {e}", list(optional.get(_norm(e)) or [])) for e in options.extras]
    if options.groups:
        sources.append((f"group {','.join(options.groups)}", group_requirements(project, options)))
    sources.append(("--with", list(options.with_)))
    out = []
    for where, items in sources:
        for raw in items:
            if not isinstance(raw, str):
                continue
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                continue
            if _norm(req.name) == "chromadb" and str(req.specifier):
                if req.marker is not None and not req.marker.evaluate({"extra": ""}) and where == "dependencies":
                    continue  # an extra's requirement written as a marker: applies only with that extra
                out.append((where, str(req.specifier)))
    return out


def excluded_by(version: str, project: Path, options: ProjectOptions) -> str:
    """Why the project's own requirements rule ``version`` out ("" when they do not)."""
    from packaging.specifiers import SpecifierSet

    for where, spec in chromadb_bounds(project, options):
        if not SpecifierSet(spec).contains(version, prereleases=True):
            where = "" if where == "dependencies" else f" ({where})"
            return f"the project requires chromadb{spec}{where}, which excludes {version}"
    return ""


# -- the interpreter ------------------------------------------------------------------------------


@dataclass
class Interpreter:
    path: str
    version: str  # full, "3.12.1"
    found: str  # how it was found, for a note


def _probe(path: str) -> str | None:
    """The full version of the interpreter at ``path``, run to prove it works (a pyenv shim whose
    version is not selected exits non-zero)."""
    try:
        out = subprocess.run(
            [path, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and re.match(r"^\d+\.\d+\.\d+", text) else None


def _candidates(minor: str) -> list[str]:
    names = [shutil.which(f"python{minor}")]
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"]
    found = []
    for root in roots:
        if root.is_dir():
            found += sorted((str(p) for p in root.glob(f"{minor}.*/bin/python{minor}")), reverse=True)
    return [
        p
        for p in dict.fromkeys(
            [*(n for n in names if n), *found, f"/usr/local/bin/python{minor}", f"/usr/bin/python{minor}"]
        )
        if os.path.isfile(p)
    ]


@functools.lru_cache(maxsize=16)
def find_python(spec: str) -> Interpreter:
    """An interpreter of ``spec`` (X.Y): one on this machine, else one uv finds or installs; exit 2
    (CompatError) with what was tried when there is none."""
    if not PYTHON_SPEC.match(spec or ""):
        raise CompatError(f"--python {spec!r}: give a version as X.Y, e.g. 3.12")
    for path in _candidates(spec):
        version = _probe(path)
        if version and version.startswith(spec + "."):
            return Interpreter(path, version, "on this machine")
    from pytest_chroma_compat.engine import envs

    uv = envs._uv()
    why = "uv is not installed"
    if uv is not None:
        for verb, timeout in (("find", PROBE_TIMEOUT), ("install", UV_INSTALL_TIMEOUT)):
            try:
                done = subprocess.run(
                    [uv, "python", verb, spec],
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                why = f"uv python {verb} {spec}: {exc}"
                continue
            if verb == "install" and done.returncode == 0:
                done = subprocess.run(
                    [uv, "python", "find", "--python-preference", "only-managed", spec],
                    capture_output=True,
                    text=True,
                    timeout=PROBE_TIMEOUT,
                    stdin=subprocess.DEVNULL,
                )
            path = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else ""
            version = _probe(path) if path else None
            if version and version.startswith(spec + "."):
                return Interpreter(path, version, f"uv python {verb}")
            lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
            why = f"uv python {verb} {spec}: " + (lines[-1][:200] if lines else f"exit {done.returncode}")
    raise CompatError(
        f"--python {spec}: no Python {spec} interpreter on this machine (PATH, pyenv, /usr/bin, "
        f"/usr/local/bin) and uv could not provide one ({why})"
    )
