"""Built-in checks for the --chroma-from / --chroma-to pair.

Collected only with ``--chroma-compat``, or always by importing them into a
test module of your own:

    from pytest_chroma_compat.plugin.pair_checks import test_chroma_round_trip_in_place

Each failure is a ``ChromaCompatFailure`` with sections (pair, path, check,
evidence, how to reproduce), shown without the harness's frames; each check is
marked ``chroma_verdict`` so its outcome makes the run's verdict line.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_chroma_compat.common.errors import ChromaCompatFailure

CROSSED = pytest.StashKey[list]()


def round_trip(runner: Any, settings: dict, path: str) -> Any:
    """One migration path of the pair: its ``PathReport`` when the upgrade held, else a
    ``ChromaCompatFailure``; a fault of the harness (a timeout, a broken environment) fails the test
    as "could not run", which the verdict reports as not checked, never as safe or unsafe."""
    from pytest_chroma_compat.common.errors import HarnessFault
    from pytest_chroma_compat.roundtrip import pair as roundtrip
    from pytest_chroma_compat.roundtrip.matrix import report

    __tracebackhide__ = True
    if path not in runner.applicable_paths():
        pytest.skip(f"{path} does not apply to stores written by chromadb {runner.old.version}")
    try:
        result = roundtrip.check_path(runner, path, **settings)
    except HarnessFault as exc:  # a timeout or a broken environment is an error of the run, not a failed check
        pytest.fail(f"chroma-compat could not run the check: {exc}", pytrace=False)
    again = f"chroma-compat check --from {result.old} --to {result.new} --path {path}"
    if not result.ok:
        shape = f"known shape {result.shape!r}: " if result.shape else ""
        raise ChromaCompatFailure(
            pair=(result.old, result.new),
            path=path,
            check=shape + report.first_evidence(result.failed[0]),
            evidence=report.path_text(result),
            reproduce=f"chroma-compat replay {result.case_file}" if result.case_file else again,
        )
    if result.pre_existing:  # validate's policy: still there after the upgrade, though not caused by it
        first = result.pre_existing[0]
        words = f"pre-existing in {result.old} (not caused by the upgrade): " + report.first_evidence(first).replace(
            f"pre-existing in {result.old}: ", "", 1
        )
        if result.blocked():
            raise ChromaCompatFailure(
                pair=(result.old, result.new),
                path=path,
                check=words,
                evidence=report.path_text(result),
                reproduce=f"{again} (--chroma-allow-pre-existing accepts it)",
            )
        pytest.xfail(f"{words}, allowed (--chroma-allow-pre-existing)")
    return result


@pytest.mark.chroma_verdict("round-trip", "in-place")
def test_chroma_round_trip_in_place(chroma_pair_runner, chroma_round_trip_settings) -> None:
    """Stores written by the old release, opened in place by the new one."""
    __tracebackhide__ = True
    round_trip(chroma_pair_runner, chroma_round_trip_settings, "in-place")


@pytest.mark.chroma_verdict("round-trip", "export-import")
def test_chroma_round_trip_export_import(chroma_pair_runner, chroma_round_trip_settings) -> None:
    """Every collection exported by the old release and imported by the new one."""
    __tracebackhide__ = True
    round_trip(chroma_pair_runner, chroma_round_trip_settings, "export-import")


@pytest.mark.chroma_verdict("round-trip", "unflushed-wal")
def test_chroma_round_trip_unflushed_log(chroma_pair_runner, chroma_round_trip_settings) -> None:
    """The old process dies before flushing its index; the new release replays its log."""
    __tracebackhide__ = True
    round_trip(chroma_pair_runner, chroma_round_trip_settings, "unflushed-wal")


@pytest.mark.chroma_verdict("contract", "contracts")
def test_chroma_contracts_crossed(chroma_pair, request) -> None:
    """Which documented behaviour changes this upgrade crosses, measured live on both releases.

    Crossing a contract is information, listed in the terminal summary; the
    check fails only when a probe could not run on a release.
    """
    from pytest_chroma_compat.contracts import measure

    __tracebackhide__ = True
    old, new = chroma_pair
    found = measure.compare(old, new)
    broken = [x for x in found if x.failure]
    crossed = [x for x in found if x.crossed]
    request.config.stash.setdefault(CROSSED, []).extend(f"{x.contract.id}: {x.contract.consequence}" for x in crossed)
    for x in crossed:
        request.node.user_properties.append((f"crossed:{x.contract.id}", f"{x.before!r} -> {x.after!r}"))
    if broken:
        raise ChromaCompatFailure(
            pair=chroma_pair,
            path="contracts",
            check=broken[0].contract.id,
            evidence="\n".join(f"{x.contract.id}: {x.failure}" for x in broken),
            reproduce=f"chroma-compat contracts --from {old} --to {new}",
        )
