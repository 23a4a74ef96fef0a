"""Built-in checks for the --chroma-from / --chroma-to pair.

Collected only with ``--chroma-compat``, or always by importing them into a
test module of your own:

    from pytest_chroma_compat.checks import test_chroma_round_trip_in_place

Each failure is a ``ChromaCompatFailure`` with sections (pair, path, check,
evidence, how to reproduce).
"""

from __future__ import annotations

from typing import Any

from .errors import ChromaCompatFailure


def _round_trip(runner: Any, settings: dict, path: str) -> None:
    import pytest

    from . import report, roundtrip

    if path not in runner.applicable_paths():
        pytest.skip(f"{path} does not apply to stores written by chromadb {runner.old.version}")
    result = roundtrip.check_path(runner, path, **settings)
    if not result.ok:
        first = result.failed[0]
        raise ChromaCompatFailure(
            pair=(result.old, result.new), path=path, check=f"{first.name}: {first.detail}",
            evidence=report.path_text(result),
            reproduce=f"chroma-compat replay {result.case_file}" if result.case_file else
            f"chroma-compat check --from {result.old} --to {result.new} --path {path}")


def test_chroma_round_trip_in_place(chroma_pair_runner, chroma_round_trip_settings) -> None:
    """Stores written by the old release, opened in place by the new one."""
    _round_trip(chroma_pair_runner, chroma_round_trip_settings, "in-place")


def test_chroma_round_trip_export_import(chroma_pair_runner, chroma_round_trip_settings) -> None:
    """Every collection exported by the old release and imported by the new one."""
    _round_trip(chroma_pair_runner, chroma_round_trip_settings, "export-import")


def test_chroma_round_trip_unflushed_log(chroma_pair_runner, chroma_round_trip_settings) -> None:
    """The old process dies before flushing its index; the new release replays its log."""
    _round_trip(chroma_pair_runner, chroma_round_trip_settings, "unflushed-wal")
