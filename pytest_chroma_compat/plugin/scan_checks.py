"""``pytest --chroma-scan PATHS --chroma-from X [--chroma-to Y]``: each scan finding a test.

One test per finding, named ``test_scan[path:line:contract]``, failing (or, with
``--chroma-scan-warn``, passing with a ``ChromaUpgradeWarning``), so a CI that already runs
pytest lists the lines of code the upgrade touches. No findings: one passing test says so.
The scan runs once, at collection (the test ids are the findings).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

SCAN = pytest.StashKey[Any]()


class ChromaUpgradeWarning(UserWarning):
    """A line of code a chromadb upgrade touches (``--chroma-scan-warn``)."""


def prepare(config: pytest.Config) -> None:
    """Scan at configure time: a bad path or pair stops the run in one line (a usage error), and
    the scan is quick (benchmarks/scan_speed.py). Without test paths on the command line, pytest's
    defaults (testpaths, or the current directory) are dropped: ``--chroma-scan src`` runs the scan,
    not the project's own suite beside it; the plugin's own check modules stay."""
    _run(config)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        from pytest_chroma_compat.plugin.config import CHECKS_MODULE, SNAPSHOT_CHECKS_MODULE

        config.args[:] = [a for a in config.args if a in (str(CHECKS_MODULE), str(SNAPSHOT_CHECKS_MODULE))]


def _run(config: pytest.Config) -> Any:
    if SCAN not in config.stash:
        from pytest_chroma_compat.common.errors import CompatError
        from pytest_chroma_compat.plugin.config import listed, option, pair_from_config
        from pytest_chroma_compat.usercode.scan.reader import scan

        old, new = pair_from_config(config)
        try:
            config.stash[SCAN] = scan(listed(option(config, "chroma_compat_scan")), old, new)
        except CompatError as exc:
            raise pytest.UsageError(f"chroma-compat: --chroma-scan: {exc}") from None
    return config.stash[SCAN]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scan_finding" not in metafunc.fixturenames:
        return
    result = _run(metafunc.config)
    findings = list(result.findings) or [None]
    ids = ["no-findings" if f is None else f"{f.path}:{f.line}:{f.contract_id}" for f in findings]
    # files not scanned (not parsed, not read) are listed as skipped tests, as the command lists them
    gaps = [*result.unreadable, *result.skipped]
    findings += gaps
    ids += [f"not-scanned:{g.split(': ')[0]}" for g in gaps]
    metafunc.parametrize("scan_finding", findings, ids=ids)


def test_scan(scan_finding: Any, pytestconfig: pytest.Config) -> None:
    __tracebackhide__ = True
    from pytest_chroma_compat.plugin.config import option
    from pytest_chroma_compat.usercode.scan.report import finding_text

    if scan_finding is None:
        return
    if isinstance(scan_finding, str):
        pytest.skip(f"not scanned: {scan_finding}")
    message = (
        f"chroma-compat {pytestconfig.stash[SCAN].old} -> {pytestconfig.stash[SCAN].new}: {finding_text(scan_finding)}"
    )
    if option(pytestconfig, "chroma_compat_scan_warn"):
        warnings.warn(ChromaUpgradeWarning(message), stacklevel=1)
        return
    pytest.fail(message, pytrace=False)
