"""Sessions: the project's tests, the release sweep, one compat-X-to-Y session
per release pair, any pair, and the compatibility matrix. `nox --list` says
which exact releases each session runs (resolved from the committed catalogue)."""

from __future__ import annotations

import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))
from pytest_chroma_compat.engine.releases import resolve  # noqa: E402  (reads releases.json only)
from pytest_chroma_compat.usercode.nox import install_chromadb  # noqa: E402  (imports neither nox nor chromadb)

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]

# session name -> (from series, to series); each side is the latest patch of its series
PAIRS = {
    "compat-0.3-to-0.4": ("0.3", "0.4"),
    "compat-0.4-to-0.5": ("0.4", "0.5"),
    "compat-0.5-to-0.6": ("0.5", "0.6"),
    "compat-0.6-to-1.0": ("0.6", "1.0"),
    "compat-0.4-to-1.0": ("0.4", "1.0"),
    "compat-1.0-to-latest": ("1.0", "latest"),
}
# the published matrix (docs/matrix.md): exact releases, so the page names what was run
MATRIX = [
    "0.3.29",
    "0.4.24",
    "0.5.23",
    "0.6.3",
    "1.0.0",
    "1.0.21",
    "1.1.1",
    "1.2.2",
    "1.3.7",
    "1.4.1",
    "1.5.0",
    "1.5.9",
]


def _scenarios(session: nox.Session, old: str, new: str, *extra: str) -> None:
    """pytest on scenarios/: while it runs, the plugin prints progress (installs, examples, shrinking)
    through pytest's terminal, and the run ends with one `chroma-compat verdict:` line taken from the
    outcomes of the round-trip and contract tests (SAFE / NOT SAFE / COULD NOT CHECK)."""
    session.install("-e", ".")
    # a fixed seed by default, so a session gives the same verdict every run; pass
    # -- --chroma-seed=random (or another number) to explore other examples
    session.run(
        "pytest",
        "scenarios",
        "-p",
        "no:cacheprovider",
        f"--chroma-from={old}",
        f"--chroma-to={new}",
        "--chroma-seed=0",
        "-rs",
        *extra,
    )


def _pair_session(name: str, old: str, new: str) -> None:
    def run(session: nox.Session) -> None:
        _scenarios(session, old, new, *session.posargs)

    run.__doc__ = (
        f"Round trip chromadb {old} -> {new} (in place, export/import, unflushed log); ends with a verdict line."
    )
    nox.session(name=name)(run)


for _name, (_old, _new) in PAIRS.items():
    _pair_session(_name, resolve(_old), resolve(_new))


@nox.session
def compat(session: nox.Session) -> None:
    """Any pair: nox -s compat -- --from 0.5.3 --to 1.3.4 [pytest options, e.g. --chroma-progress=2]."""
    args = list(session.posargs)
    pair = {}
    for flag in ("--from", "--to"):
        if flag not in args or args.index(flag) + 1 >= len(args):
            session.error("usage: nox -s compat -- --from VERSION --to VERSION")
        i = args.index(flag)
        pair[flag] = args[i + 1]
        del args[i : i + 2]
    _scenarios(session, pair["--from"], pair["--to"], *args)


@nox.session
def matrix(session: nox.Session) -> None:
    """Every upgrade among the published releases, in 3 local shards (plan, shards, merge: as a CI job matrix
    runs it); writes docs/matrix.md, docs/matrix.json and docs/matrix-cases."""
    session.install("-e", ".")
    # a fixed seed and the committed case directory: the page is regenerated, not re-rolled; 25 shrink runs
    # (not the profile's 200) keep a failing cell to minutes; the committed page's seconds seed the plan
    session.run(
        "python",
        "scenarios/matrix_sharded.py",
        "--versions",
        ",".join(MATRIX),
        "--upgrades-only",
        "--paths",
        "all",
        "--seed",
        "0",
        "--max-shrinks",
        "25",
        "--shards",
        "3",
        "--markdown",
        "docs/matrix.md",
        "--json",
        "docs/matrix.json",
        "--failures-dir",
        "docs/matrix-cases",
        "--timings-from",
        "docs/matrix.json",
        *session.posargs,
    )


@nox.session
def contracts(session: nox.Session) -> None:
    """Measure every migration-log contract on every release from 0.3.29 up; writes docs/contracts.md."""
    session.install("-e", ".")
    session.run(
        "chroma-compat",
        "contracts",
        "--measure",
        *(session.posargs or ["--versions", ">=0.3.29", "--markdown", "docs/contracts.md"]),
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own test suite as the README runs it (what CI runs): xdist across cores, `slow` left out."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "auto", "--dist", "loadfile", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """The end-to-end tests the default run leaves out (`@pytest.mark.slow`: bisects, real nox sessions,
    every-release sweeps, interrupt drills); `-- -m ''` runs the whole suite."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "auto", "--dist", "loadfile", "-m", "slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check on the repository, mypy on the public API modules (CI runs it).

    The rules, the excluded folders and the checked modules are in pyproject.toml ([tool.ruff], [tool.mypy]);
    `ruff format . && ruff check --fix .` fixes most findings.
    """
    session.install("-e", ".[test]")  # ruff and mypy at the test extra's versions; mypy reads the dependencies
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(name="example-ledger")
@nox.parametrize("chromadb", ["0.5.23", "0.6.3", "1.5.9"])
def example_ledger(session: nox.Session, chromadb: str) -> None:
    """examples/ledger_app's own tests under one chromadb release, installed with its pin rules.

    The 0.6.3 run is expected to FAIL, in exactly one test
    (test_reopen_ledger_lists_collections_as_objects): list_collections() returns names in 0.6
    (migration log v0.6.0, reverted in v1.0.0; contract list-collections-names). 0.5.23 and 1.5.9 pass.
    """
    # first: create_tmp() points TMPDIR into the session's directory, so uv's build locks and the
    # tests' stores stay there; and a HOME of its own, since chromadb writes ~/.cache/chroma even
    # with telemetry off (contract writes-outside-store)
    home = Path(session.create_tmp()) / "home"
    home.mkdir(exist_ok=True)
    install_chromadb(session, chromadb)
    session.install("-e", "examples/ledger_app[test]")  # no --upgrade: the release and its pins stay
    session.chdir("examples/ledger_app")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs, env={"HOME": str(home)})


@nox.session
def sweep(session: nox.Session) -> None:
    """Install every release from 0.4.0 up and drive each through a worker; writes docs/sweep.json.

    `nox -s sweep -- --without-pins --versions '>=0.4.0'` shows the error each pin rule prevents.
    """
    session.install("-e", ".")
    args = session.posargs or ["--versions", ">=0.4.0", "--json", "docs/sweep.json"]
    session.run("chroma-compat", "sweep", *args)


@nox.session
def validate(session: nox.Session) -> None:
    """Validate a real store before upgrading: `nox -s validate -- s3://bucket/prefix/ --to 1.5.9`.

    Any `chroma-compat validate` arguments pass through (a directory, an archive, --from, --json ...).
    """
    if not session.posargs:
        session.error("usage: nox -s validate -- SOURCE --to RELEASE [chroma-compat validate options]")
    session.install("-e", ".[s3]")
    session.run("chroma-compat", "validate", *session.posargs)


@nox.session(name="validate-matrix")
def validate_matrix(session: nox.Session) -> None:
    """Stores written by the latest patch of every minor from 0.3 on, validated for every 1.x minor;
    writes docs/validate-matrix.md. The default test run covers a few of these pairs."""
    session.install("-e", ".")
    session.run(
        "python",
        "scenarios/validate_matrix.py",
        "--markdown",
        "docs/validate-matrix.md",
        "--json",
        "docs/validate-matrix.json",
        *session.posargs,
    )


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Five side-by-side comparisons in one run (provisioning, worker overhead, round trip, validate at 10k
    and 100k, sharded matrix), the cost breakdown (a checked pair, a steady example, validate of a small
    store, phase by phase) and seconds per checked pair against a baseline commit (a git worktree the run
    makes and removes); writes docs/performance.md and docs/performance.json.

    `-- --only provisioning,worker` measures a subset (the page keeps the other sections, dated);
    `-- --full` measures validate at 1M records too (most of an hour, several GB).
    """
    session.install("-e", ".")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(name="benchmarks-validate")
def benchmarks_validate(session: nox.Session) -> None:
    """validate on 10k, 100k and 1M records x 384-d vs a plain get loop, and the harness's peak memory.

    Builds the stores once (1M takes long and several GB): `-- --sizes 10000,100000` for a quick run.
    """
    session.install("-e", ".")
    session.run("python", "benchmarks/validate_scale.py", *session.posargs)


SKEW_CLIENTS = ["0.4", "0.5", "0.6", "1.0", "latest", "client-0.6", "client-latest"]  # client-V: chromadb-client
SKEW_SERVERS = ["0.5", "0.6", "1.0", "latest"]


@nox.session
def skew(session: nox.Session) -> None:
    """Every client release (latest 0.4, 0.5, 0.6, 1.0, newest, and the thin chromadb-client of 0.6 and
    the newest) against a fresh real server of every
    server release (latest 0.5, 0.6, 1.0, newest); writes docs/skew.md and docs/skew.json."""
    session.install("-e", ".")
    clients = [f"client-{resolve(v[7:])}" if v.startswith("client-") else resolve(v) for v in SKEW_CLIENTS]
    session.run(
        "chroma-compat",
        "skew",
        "--clients",
        ",".join(clients),
        "--servers",
        ",".join(resolve(v) for v in SKEW_SERVERS),
        *(session.posargs or ["--markdown", "docs/skew.md", "--json", "docs/skew.json"]),
    )


@nox.session(name="migrate-10k")
def migrate_10k(session: nox.Session) -> None:
    """`chroma-compat migrate --verify` on 10k x 384-d stores: a 0.6.3 server to a 1.5.9 directory and a
    0.4.24 directory to a 1.5.9 server; writes docs/migrate.md."""
    session.install("-e", ".")
    session.run("python", "scenarios/migrate_10k.py", *session.posargs)


@nox.session
def integrations(session: nox.Session) -> None:
    """The latest sdists of langchain-chroma and llama-index-vector-stores-chroma, their own unit tests under
    every 1.x release and the last of each 0.x series (`run`, `bisect --first-good`); writes
    docs/integrations.md. `-- --versions 1.0.21,1.1.0,1.5.9` runs fewer releases."""
    session.install("-e", ".")
    session.run("python", "scenarios/integrations.py", *session.posargs)
