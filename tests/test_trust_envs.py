"""A broken environment is never trusted: it is reported (exit 2, one line naming the rebuild), never used.

Each test builds 1.5.9 in a PRIVATE ``CHROMA_COMPAT_HOME`` (uv's warm cache
makes that a few seconds) and breaks it the ways cached environments break in
real life: a package deleted by hand, a half-deleted directory, another
chromadb installed into it, a manifest that disagrees, a dependency gone.
Before this, ``validate`` called such a release "NOT SAFE" (exit 1) and
``check`` crashed (exit 3).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures import stores
from pytest_chroma_compat.engine import envs
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.snapshot.sources import tree_hash

from .conftest import NEW
from .trust import Canary, cli, one_line

REBUILD = f"chroma-compat env ensure --rebuild {NEW}"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A tiny 1.5.9 store, written with the shared (healthy) cache."""
    with Release(NEW) as release:
        return stores.sample(release, tmp_path_factory.mktemp("env-store") / "store", records=10, dim=4)


@pytest.fixture
def built(private_home) -> envs.Environment:
    return envs.ensure(NEW)


def _site(env: envs.Environment) -> Path:
    found = envs._site_packages(env)
    assert found is not None and (found / "chromadb").is_dir()
    return found


def _delete_package(env: envs.Environment) -> None:
    shutil.rmtree(_site(env) / "chromadb")


def _half_deleted(env: envs.Environment) -> None:
    shutil.rmtree(env.path / "lib")


def _claim_version(meta: Path, version: str) -> None:
    """Rewrite a METADATA's version as a NEW file: uv hard-links installed files from its cache, and
    writing in place would change the cache and every environment built from it."""
    text = meta.read_text()
    assert f"Version: {NEW}\n" in text
    meta.unlink()
    meta.write_text(text.replace(f"Version: {NEW}\n", f"Version: {version}\n", 1))


def _other_chromadb(env: envs.Environment) -> None:
    """What ``pip install chromadb==1.5.8`` into the environment leaves: another dist-info."""
    dist = _site(env) / f"chromadb-{NEW}.dist-info"
    _claim_version(dist / "METADATA", "1.5.8")
    dist.rename(dist.with_name("chromadb-1.5.8.dist-info"))


def _metadata_disagrees(env: envs.Environment) -> None:
    _claim_version(_site(env) / f"chromadb-{NEW}.dist-info" / "METADATA", "1.5.8")


def _manifest_disagrees(env: envs.Environment) -> None:
    manifest = env.path / envs.MANIFEST
    data = json.loads(manifest.read_text())
    data["version"] = "1.5.8"
    manifest.write_text(json.dumps(data))


BREAKAGES = {
    "package-deleted": (_delete_package, "the chromadb package is missing"),
    "half-deleted": (_half_deleted, "no site-packages directory"),
    "other-chromadb-installed": (_other_chromadb, "it holds chromadb-1.5.8.dist-info"),
    "metadata-says-other-version": (_metadata_disagrees, "says 1.5.8"),
    "manifest-says-other-version": (_manifest_disagrees, "records chromadb 1.5.8"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_broken_environment_is_reported_by_ensure_and_list(built, breakage):
    damage, needle = BREAKAGES[breakage]
    damage(built)
    one_line(cli("env", "ensure", NEW), 2, "is broken", needle, REBUILD)
    listing = cli("env", "list")
    assert listing.returncode == 0, listing.stderr
    rows = [ln for ln in listing.stdout.splitlines() if str(built.path) in ln]
    assert len(rows) == 1 and rows[0].startswith("corrupt\t") and "is broken" in rows[0], listing.stdout


@pytest.mark.parametrize("breakage", ["package-deleted", "other-chromadb-installed"])
def test_validate_and_check_refuse_a_broken_environment(built, store, tmp_path, canary: Canary, breakage):
    damage, needle = BREAKAGES[breakage]
    damage(built)
    before = tree_hash(store)
    proc = cli("validate", str(store), "--to", NEW, "--workdir", str(tmp_path / "work"), "--no-contracts")
    one_line(proc, 2, "could not validate", "is broken", needle, REBUILD)
    assert "NOT SAFE" not in proc.stdout
    assert tree_hash(store) == before
    one_line(cli("check", "--from", NEW, "--to", NEW, "--examples", "1"), 2, "is broken", REBUILD)
    canary.assert_untouched()


def test_dependency_deleted_is_a_broken_environment_not_a_verdict(built, store, tmp_path):
    """chromadb is there but cannot import (numpy removed): the worker's failed hello names the environment."""
    shutil.rmtree(_site(built) / "numpy")
    proc = cli("validate", str(store), "--to", NEW, "--workdir", str(tmp_path / "work"), "--no-contracts")
    one_line(proc, 2, "is broken", "does not import", "numpy", REBUILD)
    one_line(cli("check", "--from", NEW, "--to", NEW, "--examples", "1"), 2, "is broken", "numpy", REBUILD)


@pytest.mark.slow
def test_rebuild_repairs_a_broken_environment(built, store, tmp_path):
    _delete_package(built)
    one_line(cli("env", "ensure", NEW), 2, REBUILD)
    fixed = cli("env", "ensure", NEW, "--rebuild")
    assert fixed.returncode == 0, fixed.stderr
    assert (_site(built) / "chromadb" / "__init__.py").is_file()
    proc = cli("validate", str(store), "--to", NEW, "--workdir", str(tmp_path / "work"), "--no-contracts")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_env_built_for_one_release_is_not_trusted_for_another(built):
    """An environment moved under another release's key: the release asked for is the one that must be there."""
    other = envs.env_key("1.5.8", envs.pins.for_version("1.5.8"))
    built.path.rename(built.path.with_name(other))
    with pytest.raises(envs.CorruptEnvironment, match=f"records chromadb {NEW}, but it is the environment of 1.5.8"):
        envs.ensure("1.5.8")
    one_line(cli("env", "ensure", "1.5.8"), 2, "is broken", "chroma-compat env ensure --rebuild 1.5.8")
