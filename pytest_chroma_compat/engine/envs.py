"""Where releases are installed: one cached, locked, atomically built environment per release.

Key: (package, chromadb version, Python X.Y, digest of the pin rules that
apply), so a changed rule rebuilds only the releases it touches. The package is
the environment's *kind* (``PACKAGES``): the full ``chromadb``, or the thin
HTTP-only ``chromadb-client`` a release may also have published; a full
environment's key is what it was before kinds existed. An environment is built
in a temporary directory and renamed into place under a cross-process lock:
a reader sees either no environment or a complete one, and two concurrent
``env ensure`` runs build it once. uv makes a reused environment cost a stat
and a small JSON read; uv's cache keeps wheels built from source (0.3.29 and
0.4.0 compile hnswlib), so a rebuild does not compile again. Without uv the
stdlib ``venv`` and pip do the same job, slower.
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from pytest_chroma_compat.common.errors import CompatError, CorruptEnvironment, InstallFailed
from pytest_chroma_compat.engine import cache_dirs, leftovers, pins, releases

MANIFEST = "chroma-compat-env.json"
LAST_USED = "chroma-compat-last-used"
BUILD_PREFIX = ".build-"
_BUILD_OWNER = re.compile(r"-(\d+)-[0-9a-f]{8}$")  # .build-<key>-<pid>-<hex>: the building process
#: Environment kinds and the distribution each installs. "client" is the thin package people install where
#: only an HttpClient can run (AWS Lambda): chromadb's source tree without the server's dependencies.
PACKAGES: dict[str, str] = {"full": "chromadb", "client": releases.THIN_PACKAGE}
#: The file only the thin package ships (measured: 0.5.10-1.5.9 have it, no full release does).
THIN_MARKER = "is_thin_client.py"


def python_tag() -> str:
    return "py" + ".".join(platform.python_version_tuple()[:2])


@dataclass
class Environment:
    version: str
    python: str
    path: Path
    key: str
    pins: list[dict] = field(default_factory=list)
    created: str = ""
    installer: str = ""
    build_seconds: float = 0.0
    packages: dict[str, str] = field(default_factory=dict)
    kind: str = "full"  # manifests written before kinds existed are full-package ones

    @property
    def package(self) -> str:
        return PACKAGES[self.kind]

    @property
    def label(self) -> str:
        """How messages name it: "chromadb 0.6.3", "chromadb-client 0.6.3"."""
        return f"{self.package} {self.version}"

    @property
    def interpreter(self) -> Path:
        return self.path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    @property
    def family(self) -> str:
        return releases.family(self.version)

    def size_bytes(self) -> int:
        """Apparent size, each hard-linked file counted once (uv links from its cache)."""
        return leftovers.size_of(Path(self.path))

    def last_used(self) -> float:
        try:
            return (self.path / LAST_USED).stat().st_mtime
        except OSError:
            return (self.path / MANIFEST).stat().st_mtime

    def describe(self, with_size: bool = True) -> dict:
        out = {
            "version": self.version,
            "python": self.python,
            "path": str(self.path),
            "key": self.key,
            "pins": self.pins,
            "created": self.created,
            "installer": self.installer,
            "build_seconds": round(self.build_seconds, 1),
            **({"kind": self.kind} if self.kind != "full" else {}),
            "last_used": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_used())),
        }
        if with_size:
            out["size_bytes"] = self.size_bytes()
        return out


def env_key(version: str, applied: list[pins.PinRule], kind: str = "full") -> str:
    return f"{_package(kind)}-{version}-{python_tag()}-{pins.digest(applied)}"


def _package(kind: str) -> str:
    try:
        return PACKAGES[kind]
    except KeyError:
        raise CompatError(f"unknown environment kind {kind!r} (one of {', '.join(PACKAGES)})") from None


def _read_manifest(path: Path) -> Environment:
    """The environment at ``path``, verified (:func:`verify`) before anyone trusts it."""
    manifest = path / MANIFEST
    try:
        data = json.loads(manifest.read_text())
        data["path"] = Path(path)
        env = Environment(**data)
    except FileNotFoundError:
        raise CorruptEnvironment(f"environment {path} has no {MANIFEST} (an interrupted build?)") from None
    except (ValueError, TypeError) as exc:
        raise CorruptEnvironment(f"environment {path} has an unreadable {MANIFEST}: {exc}") from None
    if not env.interpreter.exists():
        raise CorruptEnvironment(f"environment {path} has no interpreter at {env.interpreter}")
    verify(env)
    return env


def _site_packages(env: Environment) -> Path | None:
    if os.name == "nt":
        return env.path / "Lib" / "site-packages"
    xy = ".".join(str(env.python).split(".")[:2])
    found = env.path / "lib" / f"python{xy}" / "site-packages"
    if found.is_dir():
        return found
    return next(iter(sorted(env.path.glob("lib/python*/site-packages"))), None)


def _installed_version(metadata: Path) -> str | None:
    """The ``Version:`` header of a dist-info METADATA file (the headers end at the first blank line)."""
    with open(metadata, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                break
            if line.lower().startswith("version:"):
                return line.split(":", 1)[1].strip()
    return None


def _broken(env: Environment, why: str) -> CorruptEnvironment:
    return CorruptEnvironment(f"environment for {env.label} at {env.path} is broken ({why})")


def verify(env: Environment) -> None:
    """Raise :class:`CorruptEnvironment` unless ``env`` holds its package at the version its manifest records.

    Why structural and not an import: a warm ``env ensure`` must stay in
    about a tenth of a second, and importing chromadb takes seconds. A few
    stats and one small read catch what happens to a cached environment in
    real life: a half-deleted directory, a package removed by hand, another
    chromadb installed into it. Deeper damage (a dependency removed) shows
    when the worker imports chromadb, and :func:`start_failure` names it.
    A thin environment must also still be thin: the full package installed
    into it would make every "thin client" cell measure the full one.
    """
    site = _site_packages(env)
    if site is None or not site.is_dir():
        raise _broken(env, "it has no site-packages directory: half deleted?")
    if not (site / "chromadb" / "__init__.py").is_file():
        raise _broken(env, "the chromadb package is missing from its site-packages")
    dist = env.package.replace("-", "_")  # dist-info names are normalised: chromadb_client-0.6.3.dist-info
    metadata = site / f"{dist}-{env.version}.dist-info" / "METADATA"
    try:
        installed = _installed_version(metadata)
    except OSError:
        others = sorted(p.name for p in site.glob(f"{dist}-*.dist-info"))
        found = f"it holds {', '.join(others)}" if others else f"no {env.package} dist-info at all"
        raise _broken(env, f"the manifest records {env.label}, but {found}") from None
    if installed != env.version:
        raise _broken(
            env, f"the manifest records {env.label}, but {metadata.parent.name} says {installed or 'no version'}"
        )
    if env.kind == "client":
        full = sorted(p.name for p in site.glob("chromadb-*.dist-info"))
        if full or not (site / "chromadb" / THIN_MARKER).is_file():
            raise _broken(env, f"it is no longer thin: {', '.join(full) or f'chromadb/{THIN_MARKER} is missing'}")


def start_failure(env: Environment, exc: BaseException) -> CorruptEnvironment | None:
    """The environment's fault when a worker cannot even say hello, or None when it is not that.

    Why: a worker that cannot import chromadb (or one of its dependencies)
    used to read as "the release cannot open the store", a verdict; it is a
    broken environment, and the fix is a rebuild.
    """
    from pytest_chroma_compat.common.errors import ChromaError, WorkerCrashed

    if isinstance(exc, ChromaError):
        text = f"{exc.type}: {exc.message}" if exc.type in ("ImportError", "ModuleNotFoundError") else ""
    elif isinstance(exc, WorkerCrashed):
        lines = [ln for ln in (exc.stderr_tail or "").splitlines() if "ImportError" in ln or "ModuleNotFound" in ln]
        text = lines[-1].strip() if lines else ""
    else:
        text = ""
    if not text:
        return None
    return CorruptEnvironment(
        f"{_broken(env, f'its chromadb does not import: {text[:200]}')}; {rebuild_hint(env.version, env.kind)}"
    )


def rebuild_hint(version: str, kind: str = "full") -> str:
    return f"run `chroma-compat env ensure --rebuild {'client-' if kind == 'client' else ''}{version}`"


def _uv() -> str | None:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:
        return shutil.which("uv")


def _run(cmd: list[str], what: str, env: dict | None = None) -> str:
    """An installer step (uv, pip, venv) that must not outlive us: its own process group, killed
    with everything it started on SIGTERM/SIGINT, and SIGKILLed by the kernel if we die (common/interrupts.py).

    Its temporary files go to a private directory removed afterwards: uv leaves a
    ``uv-setuptools-*.lock`` in TMPDIR for every setuptools build (an editable project,
    hnswlib's sdist), which piled up in /tmp by the dozen."""
    from pytest_chroma_compat.common import interrupts

    with tempfile.TemporaryDirectory(prefix=leftovers.prefix("installer"), dir=cache_dirs.scratch_dir()) as private:
        proc = interrupts.run(cmd, env={**(env if env is not None else os.environ), "TMPDIR": private})
    if proc.returncode != 0:
        raise InstallFailed(f"{what}: {_last_error_line(proc.stderr or proc.stdout)}")
    return proc.stdout


def _last_error_line(text: str) -> str:
    """The line of an installer's output that names the cause, not the stack."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for marker in ("No solution found", "error:", "ERROR:", "Error:", "×", "╰─▶"):
        hits = [ln for ln in lines if marker in ln]
        if hits:
            tail = [ln for ln in lines[lines.index(hits[0]) :] if not ln.startswith("hint")]
            return " ".join(tail)[:400]
    return (lines[-1] if lines else "no output")[:400]


def _install(
    target: Path, version: str, applied: list[pins.PinRule], note: Callable[[str], None], package: str = "chromadb"
) -> tuple[str, dict]:
    requirements, constraints = pins.install_args(version, applied, package)
    cfile = target.parent / f"{target.name}.constraints.txt"
    cfile.write_text("\n".join(constraints) + "\n")
    what = f"{package} {version} cannot be installed on Python {platform.python_version()}"
    try:
        uv = _uv()
        if uv:
            _run([uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(target)], what)
            python = target / "bin" / "python"
            _run([uv, "pip", "install", "--quiet", "--python", str(python), "-c", str(cfile), *requirements], what)
            freeze = _run([uv, "pip", "freeze", "--python", str(python)], what)
            installer = "uv " + _run([uv, "--version"], what).split()[1]
        else:
            note("uv is not available: building with venv + pip, which is several times slower")
            _run([sys.executable, "-m", "venv", str(target)], what)
            python = target / "bin" / "python"
            _run([str(python), "-m", "pip", "install", "--quiet", "-c", str(cfile), *requirements], what)
            freeze = _run([str(python), "-m", "pip", "freeze"], what)
            installer = "pip"
    finally:
        cfile.unlink(missing_ok=True)
    packages = dict(line.split("==", 1) for line in freeze.splitlines() if "==" in line)
    return installer, packages


def _check_import(python: Path, version: str, package: str = "chromadb") -> None:
    """A release that installs but does not import is not an environment."""
    from pytest_chroma_compat.common import interrupts

    with tempfile.TemporaryDirectory(prefix=leftovers.prefix("import-check"), dir=cache_dirs.scratch_dir()) as scratch:
        env = hermetic_environ(Path(scratch))
        code = f"import chromadb, importlib.metadata as m; print(chromadb.__version__); print(m.version({package!r}))"
        proc = interrupts.run([str(python), "-c", code], cwd=scratch, env=env, timeout=300)
    if proc.returncode != 0:
        raise InstallFailed(f"{package} {version} installed but does not import: {_last_error_line(proc.stderr)}")
    # the distribution's version is the truth: 1.3.3 reports __version__ "1.3.2"
    got = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "?"
    if got != version:
        raise InstallFailed(f"{package} {version} was requested but {got} was installed")


#: Variables a release never sees: credentials and tokens of the user's shell. Release code
#: runs on stores we did not write (a crafted pickle, a hostile store) and needs none of them,
#: so a secret it cannot read is one it cannot leak. fnmatch patterns, matched on the upper-cased
#: name; anything else (PATH, LANG, TZ, proxies without a password) passes. A value that is a URL
#: with a password in it (``scheme://user:pass@host``) is dropped whatever its name.
SECRET_VARIABLES: tuple[str, ...] = (
    # cloud providers: the whole namespace, keys, profiles, role and session settings alike
    "AWS_*",
    "AZURE_*",
    "ARM_*",
    "GOOGLE_*",
    "GCLOUD_*",
    "CLOUDSDK_*",
    "GCP_*",
    "ALIBABA_CLOUD_*",
    "OCI_*",
    "DIGITALOCEAN_*",
    "VAULT_*",
    # model and embedding providers chromadb can call
    "OPENAI_*",
    "ANTHROPIC_*",
    "COHERE_*",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_*",
    # the harness's own and the server's settings (auth credentials among them)
    "CHROMA_*",
    # anything named like a secret
    "*TOKEN",
    "*_TOKEN_*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*_PWD",
    "*API_KEY*",
    "*APIKEY*",
    "*ACCESS_KEY*",
    "*PRIVATE_KEY*",
    "*_KEY",
    "*CREDENTIAL*",
    "*_AUTH",
    "*_AUTH_*",
    "*_JWT*",
    "*_PAT",
    "*_COOKIE*",
    "*_PASS",
    "*PASSPHRASE*",
    "*_DSN",
    "*WEBHOOK*",
    "PGPASSFILE",
    "BOTO_CONFIG",
    "*_SESSION",
    # handles to credentials held elsewhere: an ssh/gpg agent, a Kerberos ticket, kube and netrc files
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "KRB5CCNAME",
    "KUBECONFIG",
    "NETRC",
    "DOCKER_CONFIG",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
)
#: any URL with userinfo ``user:password@``; the password may hold "/" and "+" (AWS-style secrets,
#: seldom percent-encoded), so the userinfo runs to the LAST "@" of the token, as redact() reads it
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s@/:]*:[^\s]*@", re.IGNORECASE)


def is_secret(name: str, value: str = "") -> bool:
    """True for a variable ``hermetic_environ`` keeps from release code (see ``SECRET_VARIABLES``)."""
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_VARIABLES) or bool(
        _URL_WITH_PASSWORD.search(value)
    )


def hermetic_environ(scratch: Path) -> dict[str, str]:
    """An environment for release code that keeps it off the user's home and the network.

    Paths are absolute: onnxruntime ignores a relative HOME and writes to the
    account's real home. Telemetry is off by env var as well as by Settings.
    Credentials never pass (``SECRET_VARIABLES``): release code reads stores we
    did not write, and what it cannot see it cannot leak.
    """
    home = scratch / "home"
    for sub in ("", ".cache", ".config", ".local/share"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CHROMA_", "UV_", "CONDA", "PIP_"))
        and k not in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "__PYVENV_LAUNCHER__")
        and not is_secret(k, v)
    }
    keep.update(
        {
            "HOME": str(home.resolve()),
            "XDG_CACHE_HOME": str((home / ".cache").resolve()),
            "XDG_CONFIG_HOME": str((home / ".config").resolve()),
            "XDG_DATA_HOME": str((home / ".local/share").resolve()),
            "ANONYMIZED_TELEMETRY": "False",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    # Two workers and the host share the machine: numpy's BLAS spreading one small product over
    # every core while the other worker reads made it 15x slower (measured, 1000x384 @ 384x5).
    keep.setdefault("OPENBLAS_NUM_THREADS", "1")
    return keep


def _lock(key: str):
    from filelock import FileLock

    return FileLock(str(cache_dirs.locks_dir() / f"{key}.lock"))


def _applied(version: str, ignore_pins: bool, kind: str = "full") -> list[pins.PinRule]:
    return [] if ignore_pins else _rules_for(version, kind)


def _rules_for(version: str, kind: str) -> list[pins.PinRule]:
    # a full environment asks exactly as before kinds existed (callers and tests replace for_version)
    return pins.for_version(version) if kind == "full" else pins.for_version(version, kind=kind)


def ensure(
    version: str,
    *,
    rebuild: bool = False,
    ignore_pins: bool = False,
    note: Callable[[str], None] = lambda s: None,
    kind: str = "full",
) -> Environment:
    """Return the environment for an exact release, building it once if needed.

    ``ignore_pins`` builds the release as a plain resolver would (its own
    cache key): the sweep uses it to show that each pin rule is still needed.
    ``kind="client"`` builds the release's thin ``chromadb-client`` package
    instead (its own key, its own pin rules); a release that published none
    is refused in one line.
    """
    package = _package(kind)
    if kind == "full":
        releases.lookup(version)  # unknown and yanked releases stop here
    else:
        releases.lookup_thin(version)  # and releases that published no thin package
    releases.family(version)
    why = pins.unavailable(version, kind=kind)
    if why:
        raise InstallFailed(f"{package} {version} cannot be installed on Python {platform.python_version()}: {why}")
    applied = _applied(version, ignore_pins, kind)
    key = env_key(version, applied, kind)
    final = cache_dirs.envs_dir() / key
    if final.exists() and not rebuild:
        env = _trusted(final, version, kind)  # a corrupt env is an error, not a silent rebuild
        _touch(env)
        return env
    with _lock(key):
        if final.exists():
            if not rebuild:
                env = _trusted(final, version, kind)  # built by a concurrent run while we waited
                _touch(env)
                return env
            _discard(final)
        note(f"building an environment for {package} {version} ({', '.join(r.id for r in applied) or 'no pins'})")
        started = time.monotonic()
        build = final.parent / f"{BUILD_PREFIX}{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # pid: prune
        try:
            installer, packages = _install(build, version, applied, note, package)
            _check_import(build / "bin" / "python", version, package)
            env = Environment(
                version=version,
                python=platform.python_version(),
                path=final,
                key=key,
                pins=[{"id": r.id, "constraints": list(r.constraints), "add": list(r.add)} for r in applied],
                created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                installer=installer,
                build_seconds=time.monotonic() - started,
                packages=packages,
                kind=kind,
            )
            if kind != "full":  # thin means thin (no full chromadb pulled in by a pin), before anyone uses it
                verify(Environment(**{**asdict(env), "path": build}))
            data = asdict(env)
            data.pop("path")
            (build / MANIFEST).write_text(json.dumps(data, indent=1))
            os.rename(build, final)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
        _touch(env)
        return env


def _trusted(path: Path, version: str, kind: str = "full") -> Environment:
    """The environment at ``path``, verified to be ``version``'s; otherwise one line naming the fix."""
    try:
        env = _read_manifest(path)
        if (env.version, env.kind) != (version, kind):
            wanted = version if kind == "full" else f"{_package(kind)} {version}"
            raise _broken(env, f"its manifest records {env.label}, but it is the environment of {wanted}")
    except CorruptEnvironment as exc:
        raise CorruptEnvironment(f"{exc}; {rebuild_hint(version, kind)}") from None
    return env


def _touch(env: Environment) -> None:
    try:
        (env.path / LAST_USED).touch()
    except OSError:
        pass


def _discard(path: Path) -> None:
    """Rename first so no reader ever sees a half-deleted environment."""
    trash = path.parent / f"{BUILD_PREFIX}trash-{path.name}-{uuid.uuid4().hex[:8]}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def list_envs() -> list[Environment | CorruptEnvironment]:
    out: list[Environment | CorruptEnvironment] = []
    for path in sorted(cache_dirs.envs_dir().iterdir()):
        if path.name.startswith(BUILD_PREFIX) or not path.is_dir():
            continue
        try:
            out.append(_read_manifest(path))
        except CorruptEnvironment as exc:
            out.append(exc)
    return out


def prune_scratch(failed: list[tuple[str, str]] | None = None, sizes: dict[str, int] | None = None) -> list[str]:
    """Everything of processes that are gone that the registry (leftovers.REGISTRY) owns: workers'
    HOMEs, servers', validate's private copies and kept ones, migrate's copies, runs' scratch,
    installers' TMPDIRs, the round trip's fast stores, write probes a full disk left.

    Only entries whose name carries a dead owner's pid go (see engine/leftovers.py); what could
    not be removed is never reported as removed, and lands in ``failed`` with the reason.
    """
    from pytest_chroma_compat.engine import leftovers

    removed, could_not = leftovers.sweep(leftovers.cache_roots(), everything=True, sizes=sizes)
    if failed is not None:
        failed.extend(could_not)
    return removed


def prune(
    older_than_days: float | None = None,
    *,
    failed: list[tuple[str, str]] | None = None,
    sizes: dict[str, int] | None = None,
) -> list[str]:
    """Remove leftovers of interrupted builds and dead processes, corrupt and outdated
    environments, and, with ``older_than_days``, environments not used for that long.
    Returns what is gone; what could not be removed goes to ``failed`` as (path, why), and the
    bytes each removal freed to ``sizes``. Nothing here writes before it removes (no probe, no
    new folder): a full disk, or whatever a kill left, must not stop the command that frees it."""
    from filelock import FileLock

    from pytest_chroma_compat.engine import leftovers

    failures: list[tuple[str, str]] = [] if failed is None else failed
    freed: dict[str, int] = {} if sizes is None else sizes
    removed: list[str] = prune_scratch(failures, freed)
    now = time.time()
    root = cache_dirs.home() / "envs"
    try:
        entries = sorted(root.iterdir())
    except OSError:  # no cache yet (or not ours to read): nothing of ours there
        entries = []
    for path in entries:
        if path.name.startswith(BUILD_PREFIX):
            try:
                old = now - path.lstat().st_mtime > 3600
            except OSError:
                continue
            builder = _BUILD_OWNER.search(path.name)  # a build whose builder is gone (SIGKILL) goes at once
            if old or (builder and not leftovers.alive(int(builder.group(1)))):
                size = leftovers.size_of(path)
                why = leftovers.remove(path)
                if why is None:
                    removed.append(str(path))
                    freed[str(path)] = size
                else:
                    failures.append((str(path), why))
            continue
        if path.is_symlink() or not path.is_dir():
            continue  # not an environment (a user's file, a probe of a live process): never ours to judge
        try:  # the lock of `ensure`, without the cache's write probe (a full disk refuses the probe)
            lock = FileLock(str(cache_dirs.home() / "locks" / f"{path.name}.lock"))
            lock.acquire()
        except OSError:  # a full disk may refuse even an empty lock file: leave this one for a later prune
            continue
        try:
            if not path.exists():
                continue
            try:
                env = _read_manifest(path)
                current = _rules_for(env.version, env.kind)
                outdated = env.key not in (env_key(env.version, current, env.kind), env_key(env.version, [], env.kind))
                stale = older_than_days is not None and now - env.last_used() > older_than_days * 86400
                if not (outdated or stale):
                    continue
            except CorruptEnvironment:
                pass
            size = leftovers.size_of(path)
            _discard(path)
            removed.append(str(path))
            freed[str(path)] = size
        finally:
            lock.release()
    return removed
