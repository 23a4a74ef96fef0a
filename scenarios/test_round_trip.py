"""Written by --chroma-from, read by --chroma-to: every migration path, Hypothesis-generated stores.

A failure message is the full report: the pair, the path, the failing
invariant with its evidence, the shrunk example and the replay command.
"""

import pytest

from pytest_chroma_compat import report, roundtrip
from pytest_chroma_compat.migrate import PATHS


@pytest.mark.parametrize("path", PATHS)
def test_round_trip(chroma_pair_runner, chroma_round_trip_settings, path):
    runner = chroma_pair_runner
    if path not in runner.applicable_paths():
        pytest.skip(f"{path} does not apply to stores written by chromadb {runner.old.version}")
    result = roundtrip.check_path(runner, path, **chroma_round_trip_settings)
    if not result.ok:
        pytest.fail(report.path_text(result), pytrace=False)
    print(report.path_text(result))
