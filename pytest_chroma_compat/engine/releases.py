"""The catalogue of chromadb releases and the picker over it.

The catalogue is a committed file (engine/releases.json), so importing the package or
collecting tests never touches the network; ``chroma-compat releases
--refresh`` rewrites it from the package index pip is configured with.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from pytest_chroma_compat.common.errors import CompatError, UnknownRelease, YankedRelease

CATALOGUE = Path(__file__).with_name("releases.json")
FAMILIES = Path(__file__).with_name("adapters.toml")
_FILE_VERSION = re.compile(r"^chromadb-(?P<version>[0-9][^-]*?)(?:-py|\.tar\.gz$|\.zip$|-cp)")


@dataclass(frozen=True)
class ReleaseInfo:
    version: str
    uploaded: str
    yanked: bool = False
    requires_python: str | None = None

    @property
    def minor(self) -> str:
        major, minor = self.version.split(".")[:2]
        return f"{major}.{minor}"


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    with path.open("rb") as fh:
        return tomllib.load(fh)


@lru_cache(maxsize=1)
def catalogue() -> tuple[ReleaseInfo, ...]:
    """Final releases, oldest first (pre-releases and dev builds are left out)."""
    from packaging.version import Version

    data = json.loads(CATALOGUE.read_text())
    items = [ReleaseInfo(**r) for r in data["releases"]]
    return tuple(sorted(items, key=lambda r: Version(r.version)))


def versions(include_yanked: bool = False) -> list[str]:
    return [r.version for r in catalogue() if include_yanked or not r.yanked]


def lookup(version: str) -> ReleaseInfo:
    """The catalogue entry for an exact version; unknown and yanked ones are refused."""
    for info in catalogue():
        if info.version == version:
            if info.yanked:
                raise YankedRelease(f"chromadb {version} was yanked from the package index; pick another release")
            return info
    raise UnknownRelease(
        f"unknown chromadb release {version!r} (not in the catalogue of {len(catalogue())} releases; "
        "see `chroma-compat releases`)"
    )


def latest_per_minor(since: str | None = "0.3", until: str | None = None) -> list[str]:
    """The newest non-yanked patch of every minor series, oldest series first."""
    from packaging.version import Version

    best: dict[str, ReleaseInfo] = {}
    for info in catalogue():
        if not info.yanked:
            best[info.minor] = info
    picked = [i.version for i in best.values()]
    if since:
        picked = [v for v in picked if Version(v) >= Version(since)]
    if until:
        picked = [v for v in picked if Version(v) <= Version(until)]
    return sorted(picked, key=Version)


def resolve(spec: str) -> str:
    """Turn what a user types into an exact release.

    ``1.5.9`` is itself; ``0.4`` is the newest 0.4.x; ``latest`` is the newest
    release; ``first:0.5`` is the first release of a series (where behaviour
    changes are usually introduced).
    """
    spec = spec.strip()
    if spec == "latest":
        return versions()[-1]
    if spec.startswith("first:"):
        series = spec.split(":", 1)[1]
        found = [v for v in versions() if _in_series(v, series)]
        if not found:
            raise UnknownRelease(f"no chromadb release in series {series!r}")
        return found[0]
    if re.fullmatch(r"\d+\.\d+", spec):
        found = [v for v in versions() if _in_series(v, spec)]
        if not found:
            raise UnknownRelease(f"no chromadb release in series {spec!r}")
        return found[-1]
    return lookup(spec).version


def _in_series(version: str, series: str) -> bool:
    return version == series or version.startswith(series + ".")


def select(spec: str) -> list[str]:
    """Versions matching a PEP 440 specifier such as ``>=0.4,<0.6`` (a sweep's range)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        wanted = SpecifierSet(spec)
    except InvalidSpecifier:
        raise CompatError(f"not a version range: {spec!r} (try '>=0.4.0,<1.0')") from None
    return [v for v in versions() if v in wanted]


@lru_cache(maxsize=1)
def _family_table() -> list[tuple[object, str]]:
    from packaging.specifiers import SpecifierSet

    table = _load_toml(FAMILIES)["family"]
    return [(SpecifierSet(row["versions"]), row["name"]) for row in table]


def family(version: str) -> str:
    """Which worker adapter (store format and client style) a release needs."""
    for spec, name in _family_table():
        if version in spec:  # type: ignore[operator]
            return name
    raise UnknownRelease(f"no worker adapter covers chromadb {version}")


# -- refreshing the catalogue ------------------------------------------------------------


def _index_url() -> str:
    """The simple index pip would use: PIP_INDEX_URL, else pip's own default."""
    url = os.environ.get("PIP_INDEX_URL") or os.environ.get("UV_INDEX_URL")
    if url:
        return url.rstrip("/")
    from pip._internal.models.index import PyPI  # the ordinary client's default

    return PyPI.simple_url.rstrip("/")


def _parse_simple(files: Iterable[dict], pattern: re.Pattern[str] = _FILE_VERSION) -> list[ReleaseInfo]:
    from packaging.version import InvalidVersion, Version

    found: dict[str, dict] = {}
    for f in files:
        m = pattern.match(f["filename"])
        if not m:
            continue
        try:
            v = Version(m.group("version"))
        except InvalidVersion:
            continue
        if v.is_prerelease or v.is_devrelease or v.local:
            continue
        entry = found.setdefault(
            str(v), {"uploaded": f.get("upload-time", ""), "yanked": True, "requires_python": f.get("requires-python")}
        )
        entry["uploaded"] = min(entry["uploaded"], f.get("upload-time", "")) or entry["uploaded"]
        entry["yanked"] = entry["yanked"] and bool(f.get("yanked"))
    return [
        ReleaseInfo(version=k, uploaded=v["uploaded"][:10], yanked=v["yanked"], requires_python=v["requires_python"])
        for k, v in found.items()
    ]


def _read_index(package: str, timeout: float) -> tuple[str, dict]:
    """The package index's JSON listing of ``package`` (PEP 691), and where it was read."""
    import urllib.request

    url = f"{_index_url()}/{package}/"
    req = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return url, json.load(resp)
    except (OSError, ValueError) as exc:
        raise CompatError(f"could not read the release list from {url}: {exc}") from None


def refresh(path: Path = CATALOGUE, timeout: float = 30.0) -> int:
    """Rewrite the catalogue from the package index; returns the number of releases."""
    url, data = _read_index("chromadb", timeout)
    releases = _parse_simple(data.get("files", []))
    if not releases:
        raise CompatError(f"the index at {url} listed no chromadb releases")
    from packaging.version import Version

    releases.sort(key=lambda r: Version(r.version))
    doc = {
        "refreshed": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "note": "final releases of chromadb; rewritten by `chroma-compat releases --refresh`",
        "releases": [asdict(r) for r in releases],
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    catalogue.cache_clear()
    return len(releases)


# -- the thin HTTP-only package ----------------------------------------------------------
# ``chromadb-client`` is the same source tree as chromadb without the server's dependencies (no
# hnswlib, FastAPI or Rust bindings): what people install where only an HttpClient can run (AWS
# Lambda). Its releases are not chromadb's: final ones start at 0.5.10 (before that only .dev
# builds), some chromadb releases have none (0.5.21, 1.0.2, ...) and 0.5.14 exists only as
# chromadb-client. So it has a catalogue of its own, committed like engine/releases.json and refreshed
# the same way (``refresh_thin``).

THIN_PACKAGE = "chromadb-client"
THIN_CATALOGUE = Path(__file__).with_name("client_releases.json")
_THIN_FILE_VERSION = re.compile(r"^chromadb[-_]client-(?P<version>[0-9][^-]*?)(?:-py|\.tar\.gz$|\.zip$|-cp)")


@lru_cache(maxsize=1)
def thin_catalogue() -> tuple[ReleaseInfo, ...]:
    """Final ``chromadb-client`` releases, oldest first."""
    from packaging.version import Version

    data = json.loads(THIN_CATALOGUE.read_text())
    return tuple(sorted((ReleaseInfo(**r) for r in data["releases"]), key=lambda r: Version(r.version)))


def thin_versions(include_yanked: bool = False) -> list[str]:
    return [r.version for r in thin_catalogue() if include_yanked or not r.yanked]


def lookup_thin(version: str) -> ReleaseInfo:
    """The ``chromadb-client`` entry for an exact version; one line saying why when there is none."""
    for info in thin_catalogue():
        if info.version == version:
            if info.yanked:
                raise YankedRelease(f"{THIN_PACKAGE} {version} was yanked from the package index; pick another release")
            return info
    lookup(version)  # not a chromadb release either: that is the clearer line
    raise UnknownRelease(f"chromadb {version} published no {THIN_PACKAGE} package; {_thin_nearest(version)}")


def _thin_nearest(version: str) -> str:
    from packaging.version import Version

    published = thin_versions()
    if not published:
        return f"the {THIN_PACKAGE} catalogue is empty"
    if Version(version) < Version(published[0]):
        return f"the first is {published[0]}"
    before = [v for v in published if Version(v) < Version(version)]
    after = [v for v in published if Version(v) > Version(version)]
    return "the nearest that did: " + " and ".join(([before[-1]] if before else []) + ([after[0]] if after else []))


def resolve_thin(spec: str) -> str:
    """What :func:`resolve` does, over the releases that published ``chromadb-client``:
    ``0.6.3``, ``0.6`` (its newest thin release), ``first:0.6``, ``latest``."""
    spec = spec.strip()
    published = thin_versions()
    if spec == "latest":
        return published[-1]
    series = spec.split(":", 1)[1] if spec.startswith("first:") else spec if re.fullmatch(r"\d+\.\d+", spec) else None
    if series is not None:
        found = [v for v in published if _in_series(v, series)]
        if not found:
            raise UnknownRelease(f"no {THIN_PACKAGE} release in series {series!r} (the first is {published[0]})")
        return found[0] if spec.startswith("first:") else found[-1]
    return lookup_thin(spec).version


def refresh_thin(path: Path = THIN_CATALOGUE, timeout: float = 30.0) -> int:
    """Rewrite the ``chromadb-client`` catalogue from the package index; returns the number of releases."""
    from packaging.version import Version

    url, data = _read_index(THIN_PACKAGE, timeout)
    found = _parse_simple(data.get("files", []), _THIN_FILE_VERSION)
    if not found:
        raise CompatError(f"the index at {url} listed no {THIN_PACKAGE} releases")
    found.sort(key=lambda r: Version(r.version))
    doc = {
        "refreshed": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "note": f"final releases of {THIN_PACKAGE} (the thin HTTP-only package); rewritten by "
        "`pytest_chroma_compat.engine.releases.refresh_thin()`",
        "releases": [asdict(r) for r in found],
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    thin_catalogue.cache_clear()
    return len(found)
