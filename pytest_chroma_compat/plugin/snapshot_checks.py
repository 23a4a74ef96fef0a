"""``pytest --chroma-snapshot SOURCE --chroma-to X``: a snapshot validation as pytest tests.

One test per check per collection, named like the JUnit report
(``test_snapshot[count-products]``), so a CI that already collects pytest
results sees which check failed on which collection. The validation runs once,
at collection, because the collections (and so the test ids) are only known
after reading the store; its result is kept on the config for the summary.
Its progress (download, comparison) is shown on pytest's terminal while it runs,
and each check counts in the run's verdict line (``chroma_verdict`` marks).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_chroma_compat.common.errors import ChromaCompatFailure, CompatError
from pytest_chroma_compat.common.redact import redact

VALIDATION = pytest.StashKey[Any]()


def _run(config: pytest.Config) -> Any:
    if VALIDATION not in config.stash:
        from pytest_chroma_compat.engine.releases import resolve
        from pytest_chroma_compat.plugin.config import install_note, installed_chromadb, listed, live, option
        from pytest_chroma_compat.plugin.terminal_progress import ensure_releases
        from pytest_chroma_compat.snapshot.validate import validate

        source = option(config, "chroma_compat_snapshot")
        to = option(config, "chroma_compat_to") or installed_chromadb()
        if not to:
            raise pytest.UsageError(
                "chroma-compat: --chroma-snapshot needs --chroma-to (no chromadb is installed here)"
            )
        from_ = option(config, "chroma_compat_from") or "auto"
        template = option(config, "chroma_compat_snapshot_pointer_template")
        if template:  # a bad template is a usage error, said once, before a release is built or a byte copied
            from pytest_chroma_compat.snapshot.pointers import check_template

            try:
                check_template(template, "--chroma-snapshot-pointer-template")
            except CompatError as exc:
                raise pytest.UsageError(f"chroma-compat: {exc}") from None
        try:  # the releases named up front are built with a line each; validate reports any failure itself
            ensure_releases([resolve(v) for v in (to, from_) if v != "auto"], install_note(config))
        except CompatError:
            pass
        filters = option(config, "chroma_compat_snapshot_filters")
        if filters:  # read before the store is copied: a bad file is a usage error, said once
            from pytest_chroma_compat.snapshot.user_filters import from_option

            try:
                filters = from_option(filters)[0]
            except CompatError as exc:
                raise pytest.UsageError(f"chroma-compat: --chroma-snapshot-filters: {exc}") from None
            if not filters:
                raise pytest.UsageError("chroma-compat: --chroma-snapshot-filters: no literal filter found")
        budget = option(config, "chroma_compat_snapshot_data_budget")  # checked at start-up (plugin_options)
        config.stash[VALIDATION] = validate(
            source,
            to,
            from_=from_,
            pointer_template=template or None,
            refuse_downgrade=bool(option(config, "chroma_compat_snapshot_refuse_downgrade")),
            **({} if budget is None else {"data_budget": int(str(budget).strip())}),
            endpoint_url=option(config, "chroma_compat_snapshot_endpoint_url"),
            collections=listed(option(config, "chroma_compat_snapshot_collections")) or None,
            allow_pre_existing=bool(option(config, "chroma_compat_snapshot_allow_pre_existing")),
            filters=filters or None,
            progress=live(config),
        )
    return config.stash[VALIDATION]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "snapshot_check" not in metafunc.fixturenames:
        return
    result = _run(metafunc.config)
    checks = result.checks if result.error is None else [None]
    ids = ["validate" if c is None else f"{c.name}-{c.collection}" if c.collection else c.name for c in checks]
    metafunc.parametrize(
        "snapshot_check",
        [pytest.param(c, id=i, marks=pytest.mark.chroma_verdict("snapshot", i)) for c, i in zip(checks, ids)],
    )


def test_snapshot(snapshot_check: Any, pytestconfig: pytest.Config) -> None:
    __tracebackhide__ = True
    result = pytestconfig.stash[VALIDATION]
    pair = (result.source_release or "?", result.target_release or "?")
    location = result.source["location"]
    if snapshot_check is None:
        pytest.fail(redact(f"chroma-compat: could not validate {location}: {result.error}"), pytrace=False)
    c = snapshot_check
    if c.status == "skip":
        pytest.skip(c.detail)
    if c.status == "error":  # could not be checked: not a verdict on the upgrade, and never a pass
        where = f" in collection {c.collection!r}" if c.collection else ""
        pytest.fail(redact(f"chroma-compat: could not check {c.name}{where}: {c.detail}"), pytrace=False)
    if c.status == "pre-existing" and result.allow_pre_existing:  # shown, not failed on
        where = f" in collection {c.collection!r}" if c.collection else ""
        pytest.xfail(redact(f"chroma-compat: {c.name}{where} [pre-existing, allowed]: {c.detail}"))
    if c.failed:
        where = f" in collection {c.collection!r}" if c.collection else ""
        raise ChromaCompatFailure(
            pair=pair,
            path=f"{result.path} ({location})",
            check=redact(f"{c.name}{where} [{c.status}]: {c.detail}"),
            evidence=redact(json.dumps(c.evidence, indent=1, default=repr)[:4000]) if c.evidence else "",
            reproduce=f"chroma-compat validate {location} --to {pair[1]} --from {pair[0]}",
        )
