"""Environment provisioning: `chroma-compat env ensure` against `python -m venv` + `pip install`.

One release (default 1.0.21: wheels only, nothing compiles), installed with the
same requirements and constraints on both sides (``pins.install_args``), all in
a private work directory removed afterwards: ours gets its own
``CHROMA_COMPAT_HOME`` and ``UV_CACHE_DIR`` there, pip its own ``PIP_CACHE_DIR``
and no configuration file (this machine's pip.conf adds local indexes and
find-links that would let pip skip the download). The user's own environments
and caches are never touched. Both sides download from the package index.

- cold (1 run each, ours first): an empty environment target and an empty
  package cache for both. Ours also freezes and import-checks the environment
  and writes its manifest; pip only installs.
- warm (``repeats`` runs each, interleaved, medians), against pip into a fresh
  venv with its files local: its HTTP cache from its cold run, or, where the
  index's answers are not cacheable and that cache stays empty, a wheelhouse of
  the same files (``Sides.warm_pip_flags``; the page says which):
  * reuse: ``env ensure`` on the environment already built (what every run
    after the first costs); target under 0.5 s;
  * new environment: ``env ensure --rebuild`` from uv's warm cache (what a new
    cache key, a changed pin rule or a rebuild costs).

Every command is timed from the outside, interpreter start included.

    python benchmarks/provisioning.py [--release 1.0.21] [--repeats 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REUSE_TARGET_SECONDS = 0.5
MIN_CACHE_BYTES = 10_000_000  # a pip cache holding less than this after the cold run cached no wheels


def _timed(cmd: list[str], env: dict, what: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
    return seconds


def _base_environ() -> dict:
    """This shell's environment without any installer or harness setting (certificates stay)."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "CHROMA_COMPAT_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    if "PIP_CERT" in os.environ:
        keep["PIP_CERT"] = os.environ["PIP_CERT"]
    return keep


class Sides:
    """The two installers, each with its private cache in ``root``."""

    def __init__(self, root: Path, version: str) -> None:
        from pytest_chroma_compat.engine import pins

        self.root, self.version = root, version
        self.requirements, self.pinned = pins.install_args(version, pins.for_version(version))
        self.constraints = root / "constraints.txt"
        self.constraints.write_text("".join(f"{c}\n" for c in self.pinned))
        base = _base_environ()
        self.ours_env = {**base, "CHROMA_COMPAT_HOME": str(root / "home"), "UV_CACHE_DIR": str(root / "uv-cache")}
        self.pip_env = {
            **base,
            "PIP_CACHE_DIR": str(root / "pip-cache"),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        self._venvs = 0

    def ours(self, *flags: str) -> float:
        return _timed(
            [sys.executable, "-m", "pytest_chroma_compat", "env", "ensure", *flags, self.version],
            self.ours_env,
            f"chroma-compat env ensure {' '.join(flags)} {self.version}",
        )

    def pip(self, *flags: str) -> float:
        """A fresh venv and pip install into it; the venv is removed afterwards (untimed)."""
        self._venvs += 1
        venv = self.root / f"pip-venv-{self._venvs}"
        started = time.perf_counter()
        _timed([sys.executable, "-m", "venv", str(venv)], self.pip_env, "python -m venv")
        _timed(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                *flags,
                "-c",
                str(self.constraints),
                *self.requirements,
            ],
            self.pip_env,
            f"pip install {' '.join(self.requirements)}",
        )
        seconds = time.perf_counter() - started
        shutil.rmtree(venv, ignore_errors=True)
        return seconds

    def warm_pip_flags(self) -> tuple[list[str], str]:
        """How pip's warm runs get their files locally: its HTTP cache when its cold run filled it;
        else a wheelhouse (``pip download``, untimed), since an index that sends no caching headers
        leaves pip's HTTP cache empty (measured on this machine's index). The index is still asked,
        as uv asks it when warm."""
        cached = _bytes(self.root / "pip-cache")
        if cached > MIN_CACHE_BYTES:
            return [], f"its HTTP cache, filled by its cold run ({cached / 1e6:,.0f} MB)"
        house, tools = self.root / "wheelhouse", self.root / "pip-tools"
        # a venv of its own: the one running this may have no pip (nox's uv venvs do not)
        _timed([sys.executable, "-m", "venv", str(tools)], self.pip_env, "python -m venv")
        _timed(
            [
                str(tools / "bin" / "python"),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-cache-dir",
                "-d",
                str(house),
                "-c",
                str(self.constraints),
                *self.requirements,
            ],
            self.pip_env,
            "pip download",
        )
        return ["--find-links", str(house)], (
            f"a wheelhouse of the same files (`pip download`, untimed) as `--find-links`: the cold run left pip's "
            f"HTTP cache at {cached / 1e6:,.1f} MB, since this machine's package index sends no caching headers"
        )


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _bundled_pip() -> str:
    import ensurepip

    return ensurepip.version()


def measure(version: str = "1.0.21", repeats: int = 3, workdir: Path | None = None) -> dict:
    from pytest_chroma_compat.engine import cache_dirs, releases

    version = releases.resolve(version)
    parent = workdir or cache_dirs.scratch_dir()
    root = Path(tempfile.mkdtemp(prefix="bench-provisioning-", dir=parent))
    try:
        sides = Sides(root, version)
        cold_ours = sides.ours()
        cold_pip = sides.pip()
        flags, pip_warm_source = sides.warm_pip_flags()
        warm: dict[str, list[float]] = {"reuse": [], "rebuild": [], "pip": []}
        for _ in range(repeats):
            warm["pip"].append(sides.pip(*flags))
            warm["rebuild"].append(sides.ours("--rebuild"))
            warm["reuse"].append(sides.ours())
        startup = statistics.median(_timed([sys.executable, "-c", "pass"], sides.ours_env, "python") for _ in range(5))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in warm.items()}

    def row(name: str, ours: float, pip: float, target: float | None = None) -> dict:
        return {
            "case": name,
            "ours_seconds": round(ours, 3),
            "pip_seconds": round(pip, 3),
            "ratio": round(pip / ours, 1),
            **({"target_seconds": target} if target else {}),
        }

    return {
        "release": version,
        "requirements": sides.requirements,
        "constraints": sides.pinned,
        "pip": _bundled_pip(),
        "repeats": repeats,
        "pip_warm_source": pip_warm_source,
        "rows": [
            row("cold: empty caches, empty target", cold_ours, cold_pip),
            row("warm: new environment from a warm cache (ours: --rebuild)", med["rebuild"], med["pip"]),
            row("warm: reuse the built environment", med["reuse"], med["pip"], REUSE_TARGET_SECONDS),
        ],
        "python_startup_seconds": round(startup, 3),
        "runs": {k: [round(x, 3) for x in v] for k, v in warm.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", default="1.0.21")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="where the private caches go (default <cache>/scratch)")
    args = parser.parse_args()
    print(json.dumps(measure(args.release, args.repeats, args.workdir), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
