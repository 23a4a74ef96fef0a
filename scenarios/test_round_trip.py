"""Written by --chroma-from, read by --chroma-to: every migration path, Hypothesis-generated stores.

A failure is a ``ChromaCompatFailure`` whose sections are the full report: the
pair, the path, the failing invariant with its evidence, the shrunk example and
the replay command. Each path counts in the run's verdict line
(``chroma-compat verdict: chromadb A -> B: SAFE|NOT SAFE (...)``).
"""

import pytest

from pytest_chroma_compat.plugin.pair_checks import round_trip
from pytest_chroma_compat.roundtrip.matrix import report
from pytest_chroma_compat.roundtrip.paths import PATHS


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.chroma_verdict("round-trip", p)) for p in PATHS])
def test_round_trip(chroma_pair_runner, chroma_round_trip_settings, path):
    print(report.path_text(round_trip(chroma_pair_runner, chroma_round_trip_settings, path)))
