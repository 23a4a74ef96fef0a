"""The pytest plugin (loaded through the ``pytest11`` entry point in every suite).

It must cost nothing in a suite that never uses it: no chromadb, no numpy, no
environment is touched until a fixture asks for a release. Options have ini
twins so a project can pin its upgrade pair in its config. Configuration
errors stop the run with one line (``pytest.UsageError``), never a traceback
from inside a worker.

A run that uses the harness explains itself: long waits (installs, round
trips, snapshot validation) print progress through pytest's terminal reporter
(``terminal_progress``), failures are shown without the harness's frames
(``tracebacks``), and the summary ends with one verdict line derived from the
outcomes of the harness's own tests (``verdict``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from pytest_chroma_compat.plugin.config import (  # noqa: F401  (re-exported: plugin.option and friends are imported by user conftests)
    _PROGRESS,
    CHECKS_MODULE,
    SCAN_CHECKS_MODULE,
    SNAPSHOT_CHECKS_MODULE,
    _resolve,
    ensure_releases,
    install_note,
    installed_chromadb,
    listed,
    live,
    option,
    pair_from_config,
    progress_every,
)
from pytest_chroma_compat.plugin.server_fixture import chroma_server  # noqa: F401  (a fixture: pytest finds it in this module)
from pytest_chroma_compat.usercode.chroma_under import pytest_cmdline_main  # noqa: F401  (a hook: pytest finds it in this module)

if TYPE_CHECKING:
    from pytest_chroma_compat.engine.client import Release
    from pytest_chroma_compat.roundtrip.pair import PairRunner

OPTIONS = {
    # option: (ini name, help)
    "--chroma-from": ("chroma_compat_from", "the chromadb release the data was written with"),
    "--chroma-to": ("chroma_compat_to", "the release to upgrade to (default: the chromadb installed here)"),
    "--chroma-versions": ("chroma_compat_versions", "releases for @pytest.mark.chroma_versions() with no arguments"),
    "--chroma-profile": ("chroma_compat_profile", "Hypothesis profile for round trips: ci, dev or thorough"),
    "--chroma-examples": ("chroma_compat_examples", "Hypothesis examples per round-trip path"),
    "--chroma-seed": ("chroma_compat_seed", "Hypothesis seed for round trips (a fixed seed gives a fixed verdict)"),
    "--chroma-snapshot": (
        "chroma_compat_snapshot",
        "validate a real store (directory, archive or s3://...) for the upgrade to --chroma-to, one test per check",
    ),
    "--chroma-snapshot-endpoint-url": (
        "chroma_compat_snapshot_endpoint_url",
        "S3-compatible endpoint for an s3:// --chroma-snapshot",
    ),
    "--chroma-snapshot-pointer-template": (
        "chroma_compat_snapshot_pointer_template",
        "--chroma-snapshot is a pointer holding only a value: validate this "
        "template, {dir} the pointer's folder, {value} its value",
    ),
    "--chroma-snapshot-collections": (
        "chroma_compat_snapshot_collections",
        "validate only these collections of --chroma-snapshot (comma-separated)",
    ),
    "--chroma-snapshot-filters": (
        "chroma_compat_snapshot_filters",
        "your own filters for --chroma-snapshot: a JSON list of {where, where_document, collection}, "
        "or Python code (a .py file or directory) to take the literal filters from; "
        "each runs on both releases, judged against the data",
    ),
    "--chroma-snapshot-data-budget": (
        "chroma_compat_snapshot_data_budget",
        "--chroma-snapshot: stored values asked per metadata key by the data checks "
        "(validate's --data-budget; default 64; 0: only the checks of contracts the "
        "upgrade crosses)",
    ),
    "--chroma-scan": (
        "chroma_compat_scan",
        "scan these Python files or directories (comma-separated) for the "
        "lines the upgrade --chroma-from -> --chroma-to touches, one test each",
    ),
    "--chroma-progress": (
        "chroma_compat_progress",
        "seconds a wait (round trip, install, snapshot) lasts before "
        "its progress is shown, then between lines; 'off' for none "
        "(default 10)",
    ),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chroma-compat", "chromadb upgrade compatibility")
    for flag, (ini, help_text) in OPTIONS.items():
        group.addoption(flag, dest=ini, default=None, help=help_text)
        parser.addini(ini, help_text, default=None)
    group.addoption(
        "--chroma-compat",
        dest="chroma_compat",
        action="store_true",
        default=None,
        help="collect the built-in round-trip checks for the from/to pair",
    )
    parser.addini("chroma_compat", "collect the built-in checks (true/false)", type="bool", default=False)
    allow = "--chroma-snapshot: a defect the store already has before the upgrade is shown (xfail), not failed"
    group.addoption(
        "--chroma-snapshot-allow-pre-existing",
        dest="chroma_compat_snapshot_allow_pre_existing",
        action="store_true",
        default=None,
        help=allow,
    )
    parser.addini("chroma_compat_snapshot_allow_pre_existing", allow, type="bool", default=False)
    refuse = (
        "--chroma-snapshot: a store written by a newer release than --chroma-to is not safe on the rule "
        "alone, whatever the measured checks say (validate's --refuse-downgrade)"
    )
    group.addoption(
        "--chroma-snapshot-refuse-downgrade",
        dest="chroma_compat_snapshot_refuse_downgrade",
        action="store_true",
        default=None,
        help=refuse,
    )
    parser.addini("chroma_compat_snapshot_refuse_downgrade", refuse, type="bool", default=False)
    allow = (
        "round trips: a defect the old release shows on its own store (pre-existing in it, not caused by "
        "the upgrade) is shown (xfail), not failed"
    )
    group.addoption(
        "--chroma-allow-pre-existing",
        dest="chroma_compat_allow_pre_existing",
        action="store_true",
        default=None,
        help=allow,
    )
    parser.addini("chroma_compat_allow_pre_existing", allow, type="bool", default=False)
    warn = "--chroma-scan: report each finding as a warning instead of a failing test"
    group.addoption("--chroma-scan-warn", dest="chroma_compat_scan_warn", action="store_true", default=None, help=warn)
    parser.addini("chroma_compat_scan_warn", warn, type="bool", default=False)
    group.addoption(
        "--chroma-under",
        dest="chroma_compat_under",
        default=None,
        metavar="VERSIONS",
        help="re-run this session under each release (comma-separated), each in an environment with "
        "this project installed beside it; one line per release, failures named with it",
    )
    group.addoption(
        "--chroma-under-extras",
        dest="chroma_compat_under_extras",
        default=None,
        metavar="EXTRAS",
        help="with --chroma-under: the project's extras to install (e.g. test)",
    )
    from pytest_chroma_compat.usercode.chroma_under import add_options

    add_options(parser, group)  # --chroma-under-group/-with/-python/-server/...: the options of `run`


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chroma_versions(*versions): run the test once per chromadb release "
        "(no arguments: --chroma-versions / chroma_compat_versions)",
    )
    config.addinivalue_line(
        "markers",
        "chroma_verdict(kind, name): the test's outcome counts in the "
        "chroma-compat verdict line (kind: round-trip, contract or snapshot)",
    )
    config.stash[_USED] = {}
    config.pluginmanager.register(_Verdicts(config), "chroma-compat-verdicts")
    from pytest_chroma_compat.plugin.options import check

    check(config)  # every other --chroma-* value too: one usage error now, not a failure per test
    progress_every(config)  # a bad --chroma-progress stops the run now, in one line
    if option(config, "chroma_compat"):
        pair_from_config(config)  # fail now, in one line, if the pair is not usable
        config.args.append(str(CHECKS_MODULE))
    if option(config, "chroma_compat_snapshot"):
        config.args.append(str(SNAPSHOT_CHECKS_MODULE))
    if option(config, "chroma_compat_scan"):
        from pytest_chroma_compat.plugin.scan_checks import prepare

        prepare(config)  # a bad pair or path stops the run now, in one line
        config.args.append(str(SCAN_CHECKS_MODULE))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("chroma_versions")
    if marker is None:
        return
    raw = list(marker.args) or listed(option(metafunc.config, "chroma_compat_versions"))
    if not raw:
        pytest.fail(
            f"chroma-compat: {metafunc.definition.name} is marked chroma_versions() with no releases "
            "and --chroma-versions is not set",
            pytrace=False,
        )
    try:
        versions = [_resolve(v, f"chroma_versions on {metafunc.definition.name}") for v in raw]
    except pytest.UsageError as exc:  # a collection error of this module, in one line
        pytest.fail(str(exc), pytrace=False)
    if "chroma_version" not in metafunc.fixturenames:
        metafunc.fixturenames.append("chroma_version")
    metafunc.parametrize("chroma_version", versions, ids=[f"chromadb-{v}" for v in versions], indirect=True)


# -- fixtures ---------------------------------------------------------------------------------------


class ReleasePool:
    """One ``Release`` (and so one worker) per version for the whole session."""

    def __init__(self, used: dict | None = None, config: pytest.Config | None = None) -> None:
        self._releases: dict[str, Release] = {}
        self._used = used if used is not None else {}
        self._config = config

    def get(self, version: str) -> Release:
        from pytest_chroma_compat.engine.client import Release
        from pytest_chroma_compat.engine.releases import resolve

        __tracebackhide__ = True
        exact = resolve(version)
        if exact not in self._releases:
            if self._config is not None:  # a CompatError reaches the caller, who may expect it
                from pytest_chroma_compat.plugin.terminal_progress import ensure_releases as build

                build([exact], install_note(self._config))
            self._releases[exact] = Release(exact)
            self._used[exact] = "worker"
        return self._releases[exact]

    def close(self) -> None:
        for release in self._releases.values():
            release.close()
        self._releases.clear()


_USED = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def chroma_releases(pytestconfig: pytest.Config) -> Iterator[ReleasePool]:
    """Session-wide pool of releases running in their workers: ``chroma_releases.get("0.6.3")``."""
    pool = ReleasePool(pytestconfig.stash.get(_USED, {}), pytestconfig)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def chroma_version(request: pytest.FixtureRequest) -> str:
    """The release under test: the chroma_versions parameter, else --chroma-from."""
    __tracebackhide__ = True
    if hasattr(request, "param"):
        return request.param
    old = option(request.config, "chroma_compat_from")
    if not old:
        pytest.fail("chroma_version needs @pytest.mark.chroma_versions(...) or --chroma-from", pytrace=False)
    return _resolve(old, "--chroma-from")


@pytest.fixture(scope="session")
def chroma_release(chroma_releases: ReleasePool, chroma_version: str) -> Release:
    """That release, running in its worker (the same object as ``Release(version)``)."""
    __tracebackhide__ = True
    return chroma_releases.get(chroma_version)


@pytest.fixture(scope="session")
def _chroma_store_cache(tmp_path_factory: pytest.TempPathFactory):
    from pytest_chroma_compat.roundtrip.stores import StoreCache

    # per pytest(-xdist) worker: no two workers ever write the same store
    return StoreCache(tmp_path_factory.mktemp("chroma-compat-stores"))


@pytest.fixture
def chroma_store_from(
    chroma_releases: ReleasePool,
    _chroma_store_cache: Any,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Callable[..., Path]:
    """``chroma_store_from("0.5.23", data=..., seed="pkg.mod:fn")`` -> a private copy of a persistent
    directory written by that release. Open it with the chromadb installed in your test environment."""
    from pytest_chroma_compat.common.errors import CompatError

    def factory(version: str, data: Any = None, seed: str | None = None) -> Path:
        __tracebackhide__ = True
        release = chroma_releases.get(_resolve(version, "chroma_store_from"))
        search = [str(pytestconfig.rootpath), str(Path.cwd())] + [
            p for p in sys.path if p and Path(p).resolve().is_relative_to(pytestconfig.rootpath)
        ]
        try:
            written = _chroma_store_cache.get(release, data, seed, sys_path=list(dict.fromkeys(search)))
        except CompatError as exc:
            pytest.fail(f"chroma-compat: {exc}", pytrace=False)
        return _chroma_store_cache.copy(written, tmp_path_factory.mktemp(f"chroma-{release.version}") / "store")

    return factory


@pytest.fixture(scope="session")
def chroma_pair(pytestconfig: pytest.Config) -> tuple[str, str]:
    """The (from, to) releases under test, resolved to exact versions, their environments built."""
    __tracebackhide__ = True
    try:
        pair = pair_from_config(pytestconfig)
    except pytest.UsageError as exc:  # a check collected without its pair: one line, not a traceback
        pytest.fail(str(exc), pytrace=False)
    pytestconfig.stash[_USED].setdefault("pair", pair)
    ensure_releases(pytestconfig, *pair)
    return pair


@pytest.fixture(scope="session")
def chroma_pair_runner(chroma_pair: tuple[str, str]) -> Iterator[PairRunner]:
    """Both releases of the pair, alive for the session (one worker each)."""
    from pytest_chroma_compat.common.errors import CompatError
    from pytest_chroma_compat.roundtrip.pair import PairRunner

    __tracebackhide__ = True
    try:
        runner = PairRunner(*chroma_pair)
    except CompatError as exc:  # a worker that does not start: the check could not run
        pytest.fail(f"chroma-compat: {exc}", pytrace=False)
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def chroma_round_trip_settings(pytestconfig: pytest.Config) -> dict:
    """Keyword arguments of ``roundtrip.check_path``: the options, and live progress on pytest's terminal."""
    examples = option(pytestconfig, "chroma_compat_examples")
    seed = option(pytestconfig, "chroma_compat_seed")
    settings = {
        "profile": option(pytestconfig, "chroma_compat_profile"),
        "examples": int(examples) if examples else None,
        "seed": int(seed) if seed not in (None, "", "random") else None,
        "allow_pre_existing": bool(option(pytestconfig, "chroma_compat_allow_pre_existing")),
    }
    writer = live(pytestconfig)
    if writer is not None and _accepts_progress():
        settings["progress"] = writer
    return settings


def _accepts_progress() -> bool:
    """True once ``roundtrip.check_path`` takes ``progress=`` (older harness code does not)."""
    import inspect

    from pytest_chroma_compat.roundtrip.pair import check_path

    return "progress" in inspect.signature(check_path).parameters


# -- reports: harness frames hidden, outcomes tagged for the verdict ---------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    from pytest_chroma_compat.plugin import tracebacks, verdict

    excinfo = call.excinfo
    whole = None  # a failure shown as its type and message, with no frame of ours
    if (
        excinfo is not None
        and not item.config.getoption("fulltrace", False)
        and not excinfo.errisinstance((pytest.skip.Exception, pytest.fail.Exception))
    ):
        if tracebacks.message_is_enough(excinfo):
            whole = excinfo
        else:
            tracebacks.trim(excinfo)
    outcome = yield
    report = outcome.get_result()
    if whole is not None and report.failed:
        report.longrepr = tracebacks.message_only(whole)
    verdict.tag(item, call, report)


class _Verdicts:
    """Folds tagged reports into the verdict (a plugin object, for the config a report does not carry;
    under xdist it runs on the controller, which receives every worker's reports)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(trylast=True)  # after the terminal reporter wrote the test's letter or word
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from pytest_chroma_compat.plugin import verdict

        verdict.collect(self.config, report)
        verdict.early_line(self.config, report)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from pytest_chroma_compat.plugin import verdict
    from pytest_chroma_compat.plugin.snapshot_checks import VALIDATION

    if VALIDATION in config.stash:
        terminalreporter.section("chroma-compat validate")
        terminalreporter.write_line(config.stash[VALIDATION].summary)
    used = config.stash.get(_USED, {})
    versions = sorted(v for v in used if v != "pair")
    verdicts = verdict.lines(
        config,
        pair=used.get("pair") or _configured_pair(config),
        snapshot=config.stash.get(VALIDATION, None),
        interrupted=exitstatus == pytest.ExitCode.INTERRUPTED,
    )
    if not versions and "pair" not in used and not verdicts:
        return
    terminalreporter.section("chroma-compat")
    if versions:
        terminalreporter.write_line("releases used: " + ", ".join(f"chromadb {v}" for v in versions))
    if "pair" in used:
        old, new = used["pair"]
        terminalreporter.write_line(f"pair under test: chromadb {old} -> {new}")
        from pytest_chroma_compat.plugin.pair_checks import CROSSED

        crossed = config.stash.get(CROSSED, [])
        if crossed:
            terminalreporter.write_line(f"contracts this upgrade crosses ({len(crossed)}):")
            for line in crossed:
                terminalreporter.write_line(f"  {line}")
    for line in verdicts:  # last, so a CI log's tail says it
        bad = any(word in line for word in ("NOT SAFE", "COULD NOT", "failed"))
        terminalreporter.write_line(line, bold=True, red=bad, green=not bad)


def _configured_pair(config: pytest.Config) -> tuple[str, str] | None:
    """The pair the options name (xdist's controller never runs the fixture that records it)."""
    try:
        return pair_from_config(config)
    except pytest.UsageError:
        return None
