import pytest

from pytest_chroma_compat.common.errors import UnknownRelease, YankedRelease
from pytest_chroma_compat.engine import releases


def test_catalogue_is_sorted_and_has_every_series():
    versions = releases.versions()
    assert versions.index("0.3.29") < versions.index("0.4.0") < versions.index("1.0.0")
    assert {"0.3", "0.4", "0.5", "0.6", "1.0"} <= {r.minor for r in releases.catalogue()}


def test_series_resolve_to_their_newest_patch():
    per_minor = releases.latest_per_minor()
    for version in per_minor:
        assert releases.resolve(version.rsplit(".", 1)[0]) == version
    assert releases.resolve("latest") == releases.versions()[-1]
    assert releases.resolve("first:1.0") == "1.0.0"


def test_unknown_and_yanked_releases_are_refused():
    yanked = [r.version for r in releases.catalogue() if r.yanked]
    assert yanked, "the catalogue records yanked releases"
    with pytest.raises(YankedRelease):
        releases.resolve(yanked[0])
    with pytest.raises(UnknownRelease, match="9.9.9"):
        releases.resolve("9.9.9")


def test_every_supported_release_has_one_adapter():
    for version in releases.select(">=0.3.0"):
        assert releases.family(version) in {"duckdb-parquet", "sqlite", "rust"}
    with pytest.raises(UnknownRelease):
        releases.family("0.2.0")


def test_select_takes_pep440_ranges():
    assert releases.select(">=0.6.0,<0.7") == ["0.6.0", "0.6.1", "0.6.2", "0.6.3"]
