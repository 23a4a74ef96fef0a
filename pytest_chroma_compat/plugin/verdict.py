"""The one verdict line at the end of a run, derived from how the harness's own tests ended.

Why from test outcomes: a verdict kept anywhere else (a flag set by a check, a
table) could disagree with the tests a CI shows as red or green. Each of the
harness's tests carries ``@pytest.mark.chroma_verdict(kind, name)``; its report
is tagged with how it ended, and the line is built from those tags only:

* ``failed``: the test raised :class:`ChromaCompatFailure`, the one type a check
  raises for an upgrade that does not hold;
* ``could not be checked``: any other failure or error (a worker that crashed,
  a release that did not install, a probe that could not run). Never "safe";
* ``held`` (passed), ``skipped`` (not applicable), ``allowed`` (an xfail: a
  pre-existing defect the user allowed).

The tag travels on the report (a plain dict), so pytest-xdist's controller,
which never sees the items, builds the same line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

MARK = "chroma_verdict"
#: fixtures that mean "this test used the harness" for a test not marked with MARK
FIXTURES = frozenset(
    {"chroma_release", "chroma_releases", "chroma_store_from", "chroma_version", "chroma_pair", "chroma_pair_runner"}
)
ORDER = ("failed", "could not be checked", "held", "allowed", "skipped")


@dataclass
class Tally:
    """Outcomes of one kind of harness test, by name, in the order they ran."""

    status: dict[str, str] = field(default_factory=dict)
    crossed: int = 0
    why: dict[str, str] = field(default_factory=dict)  # name -> the failing check and its first evidence

    def by_status(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, status in self.status.items():
            out.setdefault(status, []).append(name)
        return out


RESULTS = pytest.StashKey[dict]()  # kind -> Tally


def tag(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """Mark a harness test's report with its kind, name and how it ended (``report.chroma_verdict``)."""
    if report.when == "teardown":
        return  # closing workers after the verdict does not change it
    mark = item.get_closest_marker(MARK)
    if mark is not None:
        kind = mark.args[0]
        name = mark.args[1] if len(mark.args) > 1 else item.name
    elif FIXTURES & set(getattr(item, "fixturenames", ())):
        callspec = getattr(item, "callspec", None)
        version = callspec.params.get("chroma_version") if callspec else None
        kind, name = "tests", f"chromadb {version}" if version else "without a chroma_versions release"
    else:
        return
    crossed = sum(
        1
        for key, value in item.user_properties
        if (key == "crossed" and value is True) or str(key).startswith("crossed:")
    )
    status = _status(call, report)
    report.chroma_verdict = {
        "kind": kind,
        "name": name,
        "status": status,
        "crossed": crossed,
        "nodeid": report.nodeid,
        "why": _why(call, report, status),
    }


#: how much of a reason the verdict line carries per test
WHY_CHARS = 220


def _why(call: pytest.CallInfo, report: pytest.TestReport, status: str) -> str:
    """The failing check and its first evidence (a ChromaCompatFailure's ``check``), the reason a test could
    not check, or an allowed defect's: what the verdict line names besides the test's name."""
    from pytest_chroma_compat.common.errors import ChromaCompatFailure

    text = ""
    if status == "allowed":
        text = str(getattr(report, "wasxfail", "") or "")
    elif status in ("failed", "could not be checked") and call.excinfo is not None:
        value = call.excinfo.value
        text = value.check if isinstance(value, ChromaCompatFailure) else (str(value).strip().splitlines() or [""])[0]
    text = " ".join(text.split())
    return text if len(text) <= WHY_CHARS else text[: WHY_CHARS - 3] + "..."


def early_line(config: pytest.Config, report: pytest.TestReport) -> None:
    """As soon as a round-trip check fails, one line saying why, so the reason is on the first screen of a
    long run (the main nox job), not only in the summary at its end."""
    seen = getattr(report, "chroma_verdict", None)
    if not seen or seen["kind"] != "round-trip" or seen["status"] not in ("failed", "could not be checked"):
        return
    writer = config.pluginmanager.get_plugin("terminalreporter")
    if writer is None:
        return
    import os

    words = "NOT SAFE" if seen["status"] == "failed" else "COULD NOT CHECK"
    prior = writer.currentfspath  # a file's letters interrupted: its name is written again after our line
    writer.ensure_newline()
    writer.write_line(
        f"chroma-compat round trip [{seen['name']}] {words}: {seen.get('why') or '(see the failure below)'}",
        red=True,
        bold=True,
    )
    if isinstance(prior, os.PathLike):
        try:
            writer.write(os.path.relpath(prior, writer.startpath) + " ")
        except ValueError:
            writer.write(str(prior) + " ")
        writer.currentfspath = prior


def _status(call: pytest.CallInfo, report: pytest.TestReport) -> str:
    from pytest_chroma_compat.common.errors import ChromaCompatFailure

    if report.passed:
        return "held" if report.when == "call" else "setup"
    if report.skipped:
        return "allowed" if hasattr(report, "wasxfail") else "skipped"
    if report.when == "call" and call.excinfo is not None and call.excinfo.errisinstance(ChromaCompatFailure):
        return "failed"
    return "could not be checked"


def collect(config: pytest.Config, report: pytest.TestReport) -> None:
    """Fold a tagged report into the run's tallies (on the controller under xdist)."""
    seen = getattr(report, "chroma_verdict", None)
    if not seen or seen["status"] == "setup":
        return
    tallies = config.stash.setdefault(RESULTS, {})
    tally = tallies.setdefault(seen["kind"], {})
    # per test: a test id repeated under xdist or --count stays one entry, its latest outcome
    tally[seen["nodeid"]] = seen


def _tally(config: pytest.Config, kind: str) -> Tally | None:
    seen = config.stash.get(RESULTS, {}).get(kind)
    if not seen:
        return None
    tally = Tally()
    for entry in seen.values():
        previous = tally.status.get(entry["name"])
        # one name reached by several tests (user tests on one release): the worst outcome counts
        if previous is None or ORDER.index(entry["status"]) < ORDER.index(previous):
            tally.status[entry["name"]] = entry["status"]
            tally.why[entry["name"]] = entry.get("why") or ""
        tally.crossed += entry["crossed"]
    return tally


def _parts(tally: Tally, limit: int = 6) -> str:
    """``in-place, unflushed-wal failed; export-import held``: the names, or past ``limit`` names
    a count (with the first names of what did not hold: those are what a reader looks up)."""
    out = []
    for status, names in sorted(tally.by_status().items(), key=lambda kv: ORDER.index(kv[0])):
        named = [n for n in names if tally.why.get(n)] if status not in ("held", "skipped") else []
        why = "" if not named else tally.why[named[0]] if len(names) == 1 else f"{named[0]}: {tally.why[named[0]]}"
        if len(names) <= limit:
            out.append(f"{', '.join(names)} {status}" + (f" [{why}]" if why else ""))
        elif status in ("held", "skipped"):
            out.append(f"{len(names)} {status}")
        else:
            out.append(
                f"{len(names)} {status}: {', '.join(names[:limit])} and {len(names) - limit} more"
                + (f" [{why}]" if why else "")
            )
    return "; ".join(out)


def _headline(tally: Tally) -> str:
    statuses = set(tally.status.values())
    if "failed" in statuses:
        return "NOT SAFE"
    if "could not be checked" in statuses:
        return "COULD NOT CHECK"
    if statuses & {"held", "allowed"}:
        return "SAFE"
    return "NOT CHECKED"


def _contracts(config: pytest.Config) -> str:
    tally = _tally(config, "contract")
    if tally is None:
        return ""
    # a contract test fails only when a probe could not run (crossing is information, not failure)
    unchecked = tally.by_status().get("could not be checked", []) + tally.by_status().get("failed", [])
    measured = len(tally.status) - len(unchecked) - len(tally.by_status().get("skipped", []))
    text = f"contracts: {tally.crossed} documented change(s) crossed"
    if len(tally.status) > 1:
        text += f" of {measured} measured"
    if unchecked:
        text += f", {len(unchecked)} could not be measured ({', '.join(unchecked[:3])})"
    return text


def _counts(entries: Any) -> str:
    """``chromadb 0.6.3: 1 failed; chromadb 1.5.9: 1 passed``, per release a test ran on."""
    words = {
        "held": "passed",
        "failed": "failed",
        "could not be checked": "failed",
        "allowed": "xfailed",
        "skipped": "skipped",
    }
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        per = counts.setdefault(entry["name"], {})
        per[words[entry["status"]]] = per.get(words[entry["status"]], 0) + 1
    return "; ".join(
        f"{name}: " + ", ".join(f"{n} {word}" for word, n in sorted(per.items())) for name, per in counts.items()
    )


def lines(
    config: pytest.Config, *, pair: tuple[str, str] | None, snapshot: Any = None, interrupted: bool = False
) -> list[str]:
    """Every verdict line of the run: the pair's, the snapshot's, and the user's tests' tally."""
    out = []
    suffix = " [interrupted: partial]" if interrupted else ""
    trips, contracts = _tally(config, "round-trip"), _contracts(config)
    if trips is not None or contracts:
        where = f"chromadb {pair[0]} -> {pair[1]}" if pair else "the pair under test"
        if trips is not None:
            text = f"{where}: {_headline(trips)} ({_parts(trips)})" + (f"; {contracts}" if contracts else "")
        else:
            text = f"{where}: no round trip ran; {contracts}"
        out.append(text + suffix)
    shots = _tally(config, "snapshot")
    if shots is not None:
        where = "snapshot"
        if snapshot is not None:
            location = snapshot.source.get("location", "?")
            where = f"snapshot {location} (chromadb {snapshot.source_label} -> {snapshot.target_release or '?'})"
        out.append(f"{where}: {_headline(shots)} ({_parts(shots, limit=4)})" + suffix)
    users = config.stash.get(RESULTS, {}).get("tests")
    if users and not out:  # no check of ours ran: the user's own tests are the only evidence
        out.append("your tests using the chroma fixtures: " + _counts(users.values()) + suffix)
    from pytest_chroma_compat.common.redact import redact

    return [redact(f"chroma-compat verdict: {text}") for text in out]
