"""Host side of the contracts: run probes on releases, cache what they saw, find where it changes.

Why it is built this way:
- The contract table (table.toml) holds what the *log* says; probes.py says how
  to *look*. Nothing here knows an answer: every observed value comes from a
  release's own worker, and a change is wherever two consecutive measured
  releases answer differently (possibly several times, possibly back again).
- Observations are cached per (environment key, probes.py hash) under
  ``paths.home()/"contracts"``: editing a probe re-measures, a new pin rule
  (a different environment) re-measures, nothing else does. Server probes
  (server_probes.py: a live ``chroma run`` server driven from the host) are
  cached the same way in their own file, keyed by server_probes.py's hash, and so
  are side-effect probes (side_effects.py: a fresh session of the release under
  audit hooks and strace), keyed by the hash of side_effects.py and the session it runs.
- A probe that cannot run (worker crash, timeout, an install that fails) is a
  failure, never a value, and is never cached.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pytest_chroma_compat.common.errors import ChromaError, CompatError, WorkerError
from pytest_chroma_compat.contracts import server_probes, side_effects
from pytest_chroma_compat.contracts.probes import EVERY_RECORD
from pytest_chroma_compat.engine import cache_dirs, envs, pins, releases

if TYPE_CHECKING:
    from pytest_chroma_compat.engine.client import Release

HERE = Path(__file__).parent
PROBES = HERE / "probes.py"
SERVER_PROBES = HERE / "server_probes.py"
SIDE_EFFECTS = (HERE / "side_effects.py", HERE / "side_effect_session.py")
TABLE = HERE / "table.toml"


@dataclass(frozen=True)
class Contract:
    id: str
    title: str
    documented: str
    section: str
    quote: str
    probe: str
    consequence: str
    unmeasured: str = ""
    # code patterns for `chroma-compat scan` (usercode/scan/rules.py reads them); not part of what is measured
    scan: tuple = field(default=(), compare=False, hash=False, repr=False)
    # what validate asks of a store's own values where the effect depends on stored data
    # ({types, operators}: snapshot/data_checks.py); not part of what is measured
    data_check: Any = field(default=None, compare=False, hash=False, repr=False)


@lru_cache(maxsize=1)
def load_table() -> tuple[Contract, ...]:
    rows = releases._load_toml(TABLE)["contract"]
    table = tuple(Contract(**row) for row in rows)
    ids = [c.id for c in table]
    if len(set(ids)) != len(ids):
        raise CompatError(f"duplicate contract id in {TABLE}")
    return table


def contract(contract_id: str) -> Contract:
    for c in load_table():
        if c.id == contract_id:
            return c
    raise CompatError(f"unknown contract {contract_id!r}; known: {', '.join(c.id for c in load_table())}")


def probe_names(contracts: Iterable[Contract] | None = None) -> list[str]:
    return sorted({c.probe for c in (contracts or load_table()) if c.probe})


def probe_hash() -> str:
    return hashlib.sha256(PROBES.read_bytes()).hexdigest()[:12]


def server_probe_hash() -> str:
    return hashlib.sha256(SERVER_PROBES.read_bytes()).hexdigest()[:12]


def side_effect_hash() -> str:
    digest = hashlib.sha256()
    for path in SIDE_EFFECTS:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def is_server_probe(name: str) -> bool:
    return name in server_probes.PROBES


def is_side_effect_probe(name: str) -> bool:
    return name in side_effects.PROBES


# Each family of probes is cached in its own file, keyed by the hash of the code that measures it:
# editing one family re-measures that family only. (file tag, hash, the hash's label in the file)
FAMILIES: dict[str, tuple[str, Callable[[], str], str]] = {
    "probes": ("probes", probe_hash, "probes_sha256"),
    "server": ("server", server_probe_hash, "server_probes_sha256"),
    "side-effects": ("side-effects", side_effect_hash, "side_effects_sha256"),
}


def family(name: str) -> str:
    return "server" if is_server_probe(name) else "side-effects" if is_side_effect_probe(name) else "probes"


def default_cache() -> Path:
    return cache_dirs.home() / "contracts"


# -- observing one release ---------------------------------------------------------------------


@dataclass
class Observation:
    """What one release answered to each probe (values), and which probes could not run (failures)."""

    version: str
    values: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    cached: bool = False


def _cache_file(version: str, cache: Path, server: bool = False, *, kind: str | None = None) -> Path:
    tag, digest, _ = FAMILIES[kind or ("server" if server else "probes")]
    key = envs.env_key(version, pins.for_version(version))
    return cache / f"{key}-{tag}-{digest()}.json"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())["values"]
    except (OSError, ValueError, KeyError):
        return {}


def observe(
    release: Release | str, probes: Iterable[str] | None = None, *, cache: Path | None = None, fresh: bool = False
) -> Observation:
    """Run the probes on one release (reusing cached answers unless ``fresh``)."""
    from pytest_chroma_compat.engine.client import Release

    version = release.version if isinstance(release, Release) else releases.resolve(release)
    wanted = list(probes) if probes is not None else probe_names()
    cache = cache or default_cache()
    files = {kind: _cache_file(version, cache, kind=kind) for kind in FAMILIES}
    known = {} if fresh else {k: v for path in files.values() for k, v in _read(path).items()}
    obs = Observation(version, {p: known[p] for p in wanted if p in known})
    missing = [p for p in wanted if p not in obs.values]
    obs.cached = not missing
    if not missing:
        return obs
    owned = not isinstance(release, Release)
    rel = Release(version) if owned else release
    try:
        for probe in missing:
            try:
                if is_server_probe(probe):  # a live server of the release, driven from here
                    obs.values[probe] = server_probes.PROBES[probe](rel)
                elif is_side_effect_probe(probe):  # a fresh session of the release, started by its worker
                    obs.values[probe] = rel.run(f"side_effects:{probe}", sys_path=[str(HERE)])
                else:
                    obs.values[probe] = rel.run(f"probes:{probe}", sys_path=[str(HERE)])
            except (ChromaError, WorkerError) as exc:  # the probe did not run: no value
                obs.failures[probe] = f"{type(exc).__name__}: {exc}"
            except CompatError as exc:  # install failure, refused release: nothing will run
                obs.failures.update({p: f"{type(exc).__name__}: {exc}" for p in missing if p not in obs.values})
                break
    finally:
        if owned:
            rel.close()
    new = {p: v for p, v in obs.values.items() if p in missing}
    for kind, path in files.items():
        _, digest, label = FAMILIES[kind]
        _write(path, {p: v for p, v in new.items() if family(p) == kind}, digest(), label)
    return obs


def _write(path: Path, new: dict, digest: str, label: str = "probes_sha256") -> None:
    if not new:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = {**_read(path), **new}
    tmp = path.with_suffix(f".{id(new)}.tmp")
    tmp.write_text(json.dumps({label: digest, "values": merged}, indent=1))
    tmp.replace(path)


def observe_many(
    versions: list[str],
    probes: Iterable[str] | None = None,
    *,
    jobs: int = 4,
    cache: Path | None = None,
    fresh: bool = False,
    progress: Callable[[Observation], None] | None = None,
) -> dict[str, Observation]:
    """Observe several releases in parallel (each in its own worker process)."""
    probes = list(probes) if probes is not None else probe_names()

    def one(version: str) -> Observation:
        try:
            obs = observe(version, probes, cache=cache, fresh=fresh)
        except CompatError as exc:
            obs = Observation(version, failures={p: f"{type(exc).__name__}: {exc}" for p in probes})
        if progress:
            progress(obs)
        return obs

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(zip(versions, pool.map(one, versions)))


# -- comparing two releases ----------------------------------------------------------------------


@dataclass(frozen=True)
class Crossing:
    contract: Contract
    before: Any
    after: Any
    failure: str = ""
    shadowed_by: str = ""  # another contract on the same probe is the one this pair crosses

    @property
    def crossed(self) -> bool:
        return not self.failure and not self.shadowed_by and self.before != self.after

    @property
    def silently_empty(self) -> list[str]:
        """Cases that raised under the old release and answer nothing, without an error, under the new one."""
        return silently_empty(self.before, self.after) if self.crossed else []

    @property
    def silently_everything(self) -> list[str]:
        """Cases that raised or matched some records under the old release and match every record under the new."""
        return silently_everything(self.before, self.after) if self.crossed else []


def observe_pair(
    old: Release | str, new: Release | str, probes: Iterable[str] | None = None, **kwargs: Any
) -> tuple[Observation, Observation]:
    """``observe`` on both releases at once (each in its own worker): a pair measured cold costs the
    slower release's probes, not both releases' in turn."""
    from pytest_chroma_compat.engine.client import Release

    probes = list(probes) if probes is not None else probe_names()
    versions = [r.version if isinstance(r, Release) else releases.resolve(r) for r in (old, new)]
    if versions[0] == versions[1]:
        same = observe(old, probes, **kwargs)  # one release: observed once (two would write one cache file)
        return same, same
    with ThreadPoolExecutor(1, thread_name_prefix="observe-new") as pool:
        later = pool.submit(observe, new, probes, **kwargs)
        try:
            first = observe(old, probes, **kwargs)
        finally:
            later.exception()  # waits: an error observing ``old`` stays the one raised
        return first, later.result()


def compare(
    old: Release | str, new: Release | str, contracts: Iterable[Contract] | None = None, **kwargs: Any
) -> list[Crossing]:
    """Every measured contract with its value under ``old`` and ``new``."""
    chosen = [c for c in (contracts or load_table()) if c.probe]
    a, b = observe_pair(old, new, probe_names(chosen), **kwargs)
    return _crossings(chosen, a, b)


def _crossings(chosen: list[Contract], a: Observation, b: Observation) -> list[Crossing]:
    """``compare``'s answer for the contracts ``chosen``, from observations holding (at least) their probes."""
    out = []
    for c in chosen:
        failure = "; ".join(f"{o.version}: {o.failures[c.probe]}" for o in (a, b) if c.probe in o.failures)
        out.append(Crossing(c, a.values.get(c.probe), b.values.get(c.probe), failure))
    changed = [x for x in out if x.crossed]
    kept = attribute(changed, a.version, b.version)
    by_probe = {x.contract.probe: x.contract.id for x in kept}
    return [
        replace(x, shadowed_by=by_probe.get(x.contract.probe, "")) if x in changed and x not in kept else x for x in out
    ]


def crossed(old: Release | str, new: Release | str, **kwargs: Any) -> list[Crossing]:
    """The contracts whose observed value differs between ``old`` and ``new``."""
    return [x for x in compare(old, new, **kwargs) if x.crossed]


class Lookup:
    """One measurement of every contract for one pair of releases, started now in the background;
    ``crossed`` answers any set of contracts from it, as ``crossed(old, new, contracts=...)`` would.

    Why: validate asked twice (the data checks for the rows they carry, the report for every row),
    one after the other; cold, that was two lookups in turn, each observing the old release, then the
    new. Here both releases are observed at once, once, while validate compares the store."""

    def __init__(self, old: str, new: str, **kwargs: Any) -> None:
        from concurrent.futures import Future

        self.old, self.new = old, new
        self._done: Future = Future()

        def run() -> None:
            try:
                self._done.set_result(observe_pair(old, new, probe_names(), **kwargs))
            except BaseException as exc:  # noqa: BLE001 - raised to whoever asks
                self._done.set_exception(exc)

        import threading

        threading.Thread(target=run, name=f"contracts-{old}-{new}", daemon=True).start()

    def crossed(self, contracts: Iterable[Contract] | None = None) -> list[Crossing]:
        a, b = self._done.result()
        chosen = [c for c in (contracts or load_table()) if c.probe]
        return [x for x in _crossings(chosen, a, b) if x.crossed]


def attribute(crossings: list[Crossing], old: str, new: str) -> list[Crossing]:
    """Contracts that share a probe (list_collections: names in 0.6, objects in 1.0) all see
    its value change; keep those whose documented release lies in (old, new], if any does."""
    from packaging.version import Version

    by_probe: dict[str, list[Crossing]] = {}
    for x in crossings:
        by_probe.setdefault(x.contract.probe, []).append(x)
    keep = []
    for group in by_probe.values():
        inside = [
            x
            for x in group
            if (d := documented_release(x.contract.documented)[0]) and Version(old) < Version(d) <= Version(new)
        ]
        keep += inside if len(group) > 1 and inside else group
    return [x for x in crossings if x in keep]


def describe_change(before: Any, after: Any) -> str:
    """A short account of what differs: changed keys of a dict (nested dicts as ``outer.inner``),
    added/removed items of a list of names; an error that became an empty answer is named so."""
    if _is_dict(before) and _is_dict(after):
        return "; ".join(_changed_keys(before, after))
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(x, str) for x in before + after)
        and len(set(before)) == len(before)
        and len(before + after) > 4
    ):
        gone, new = [x for x in before if x not in after], [x for x in after if x not in before]
        if gone or new:
            return " ".join([f"-{x}" for x in gone] + [f"+{x}" for x in new])
    label = SILENT if _silently_empty(before, after) else SILENT_ALL if _silently_everything(before, after) else ""
    return f"{compact(before)} -> {compact(after)}" + (f" ({label})" if label else "")


SILENT = "now silently matches nothing"
SILENT_ALL = "now silently matches everything"


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict) and not _is_error(value)


def _is_error(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"error"}


def _silently_empty(before: Any, after: Any) -> bool:
    """A refusal replaced by an empty answer: code that caught the error now gets nothing, and no sign of it."""
    return _is_error(before) and (after == [] or (type(after) is int and after == 0))


def _silently_everything(before: Any, after: Any) -> bool:
    """A refusal or a real answer replaced by "every record" (probes.EVERY_RECORD): a filter that
    stopped filtering. Code that caught the error, or trusted the subset, now acts on every record."""
    return after == EVERY_RECORD and before != EVERY_RECORD and (_is_error(before) or isinstance(before, list))


def _changed_keys(before: dict, after: dict, prefix: str = "") -> list[str]:
    out = []
    for k in {**before, **after}:
        b, a = before.get(k), after.get(k)
        if b == a:
            continue
        if _is_dict(b) and _is_dict(a):
            out += _changed_keys(b, a, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}: {describe_change(b, a)}")
    return out


def _where(flipped: Callable[[Any, Any], bool], before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted keys ("" for the whole value) where ``flipped(before, after)`` holds, descending into dicts."""
    if flipped(before, after):
        return [prefix.rstrip(".")]
    if _is_dict(before) and _is_dict(after):
        return [p for k in before if k in after for p in _where(flipped, before[k], after[k], f"{prefix}{k}.")]
    return []


def silently_empty(before: Any, after: Any) -> list[str]:
    """Where an error in ``before`` became an empty answer in ``after``."""
    return _where(_silently_empty, before, after)


def silently_everything(before: Any, after: Any) -> list[str]:
    """Where an error or a subset in ``before`` became every record."""
    return _where(_silently_everything, before, after)


WRITE_CALLS = ("add", "upsert", "update")  # the keys of a per-call answer (probes.WRITE_CALLS)


def _call_answer(value: Any) -> str:
    if _is_error(value):
        return f"refuse{{s}} ({value['error']})"
    words = {"dropped": "accept{s} and drop{s} the key", "kept": "keep{s} it", "accepted": "accept{s} it"}
    if isinstance(value, str) and value.startswith("changed:"):
        return f"change{{s}} it to {value.split(':', 1)[1]}"
    return words.get(value, f"answer{{s}} {compact(value)}")


def by_call(value: Any) -> list[str]:
    """For an answer measured per write call: each case the calls do not agree on, in words.

    "none: add refuses (TypeError); upsert/update accept and drop the key" -- a contract measured
    through one call would have said "refused everywhere".
    """
    if not (
        _is_dict(value)
        and len(value) > 1
        and set(value) <= set(WRITE_CALLS)
        and all(_is_dict(v) for v in value.values())
    ):
        return []
    calls = [c for c in WRITE_CALLS if c in value]
    out = []
    for label in {k: None for c in calls for k in value[c]}:
        groups: dict[str, list[str]] = {}
        for c in calls:
            groups.setdefault(compact(value[c].get(label)), []).append(c)
        if len(groups) < 2:
            continue
        parts = [_call_answer(value[cs[0]].get(label)).format(s="s" if len(cs) == 1 else "") for cs in groups.values()]
        out.append(f"{label}: " + "; ".join(f"{'/'.join(cs)} {part}" for cs, part in zip(groups.values(), parts)))
    return out


def in_words(value: Any) -> list[str]:
    """A side-effect answer (side_effects.py) as one line per telemetry setting, then how it was seen.

    "anonymized_telemetry=False: in HOME/cwd: ~/.cache/chroma/telemetry_user_id (client)"; [] for
    any other answer.
    """
    if not (_is_dict(value) and "seen by" in value):
        return []

    def words(part: Any) -> str:
        if not _is_dict(part):
            return compact(part).strip('"')
        if all(isinstance(v, str) for v in part.values()):  # name -> the step that first did it
            return ", ".join(f"{k} ({v})" if v else k for k, v in part.items())
        return "; ".join(f"{k}: {words(v)}" for k, v in part.items())

    return [f"{k}: {words(v)}" for k, v in value.items() if k != "seen by"] + [f"seen by {value['seen by']}"]


def compact(value: Any) -> str:
    if _is_error(value):
        return f"error:{value['error']}"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# -- where the log says it changes ----------------------------------------------------------------

_VERSION = re.compile(r"v?(\d+\.\d+\.\d+)")


def documented_release(text: str) -> tuple[str | None, str]:
    """The first catalogue release the log's heading can mean, and how it was found.

    "v0.5.6" (not on the index) means the next release that exists; "April 20,
    2024" means the first release uploaded on or after that day.
    """
    from packaging.version import Version

    if not text:
        return None, "not in the log"
    catalogue = [r for r in releases.catalogue() if not r.yanked]
    m = _VERSION.fullmatch(text.strip())
    if m:
        wanted = Version(m.group(1))
        later = [r.version for r in catalogue if Version(r.version) >= wanted]
        if not later:
            return None, f"{text}: no such release or later in the catalogue"
        if Version(later[0]) == wanted:
            return later[0], text
        return later[0], f"{text} is not on the index; first release after it: {later[0]}"
    try:
        day = datetime.strptime(text.strip(), "%B %d, %Y").date()
    except ValueError:
        return None, f"cannot read {text!r} as a version or a date"
    after = [r for r in catalogue if r.uploaded and date.fromisoformat(r.uploaded) >= day]
    if not after:
        return None, f"no release uploaded on or after {day}"
    first = min(after, key=lambda r: (r.uploaded, Version(r.version))).version
    return first, f"dated {text}; first release uploaded on or after it: {first} ({releases.lookup(first).uploaded})"


# -- histories: where each contract's observed value changes ----------------------------------------


@dataclass
class History:
    """One contract over a list of releases: runs of equal values, the changes, and the verdict."""

    contract: Contract
    runs: list[dict] = field(default_factory=list)  # {"first", "last", "value", "releases"}
    changes: list[dict] = field(default_factory=list)  # {"after", "at", "before", "value"}
    unmeasured: dict[str, str] = field(default_factory=dict)
    documented_at: str | None = None
    documented_note: str = ""
    verdict: str = ""
    disagrees: bool = False

    def as_dict(self) -> dict:
        c = self.contract
        return {
            "id": c.id,
            "title": c.title,
            "documented": c.documented,
            "section": c.section,
            "quote": c.quote,
            "probe": c.probe,
            "consequence": c.consequence,
            "documented_at": self.documented_at,
            "documented_note": self.documented_note,
            "changes": self.changes,
            "runs": self.runs,
            "unmeasured": self.unmeasured,
            "verdict": self.verdict,
            "disagrees": self.disagrees,
        }


def histories(
    versions: list[str], observations: dict[str, Observation], contracts: Iterable[Contract] | None = None
) -> list[History]:
    """For each contract: its value per measured release, where it changes, and whether the log agrees."""
    table = list(contracts or load_table())
    out = []
    for c in table:
        h = History(c)
        h.documented_at, h.documented_note = documented_release(c.documented)
        if not c.probe:
            h.verdict = f"not measured: {c.unmeasured}"
            out.append(h)
            continue
        previous: str | None = None
        for v in versions:
            obs = observations.get(v)
            if obs is None or c.probe not in obs.values:
                h.unmeasured[v] = obs.failures.get(c.probe, "no observation") if obs else "not observed"
                continue
            value = obs.values[c.probe]
            if h.runs and h.runs[-1]["value"] == value:
                h.runs[-1]["last"] = v
                h.runs[-1]["releases"] += 1
            else:
                if h.runs:
                    before = h.runs[-1]["value"]
                    h.changes.append(
                        {
                            "after": previous,
                            "at": v,
                            "before": before,
                            "value": value,
                            "silently_empty": silently_empty(before, value),
                            "silently_everything": silently_everything(before, value),
                        }
                    )
                h.runs.append({"first": v, "last": v, "value": value, "releases": 1})
            previous = v
        h.verdict, h.disagrees = _verdict(h, versions, table)
        out.append(h)
    return out


def _verdict(h: History, versions: list[str], table: list[Contract]) -> tuple[str, bool]:
    """Does a measured change fall on the documented release (or on a gap containing it)?"""
    from packaging.version import Version

    if not h.runs:
        return "not measured: the probe ran on no release", False
    doc = h.documented_at

    def covers(ch: dict) -> bool:  # the change happened somewhere in (after, at]
        return doc is not None and Version(ch["after"]) < Version(doc) <= Version(ch["at"])

    siblings = {
        documented_release(c.documented)[0]: c.id
        for c in table
        if c.probe == h.contract.probe and c.id != h.contract.id and c.documented
    }

    def where(ch: dict) -> str:
        gap = [v for v in releases.versions() if Version(ch["after"]) < Version(v) < Version(ch["at"])]
        text = ch["at"] if not gap else f"{ch['at']} (after {ch['after']}; {len(gap)} release(s) between not measured)"
        owner = next(
            (cid for rel, cid in siblings.items() if rel and Version(ch["after"]) < Version(rel) <= Version(ch["at"])),
            None,
        )
        return f"{text} [documented by {owner}]" if owner else text

    matched = [ch for ch in h.changes if covers(ch)]
    others = [where(ch) for ch in h.changes if ch not in matched]
    also = f"; also changes at {', '.join(others)}" if others else ""
    if doc is None:
        found = (
            f"changes at {', '.join(where(ch) for ch in h.changes)}" if h.changes else "no change in the measured range"
        )
        return f"not in the log; {found}", False
    first, last = h.runs[0]["first"], h.runs[-1]["last"]
    if not Version(first) < Version(doc) <= Version(last):
        return f"documented release {doc} is outside the measured range ({first}..{last}){also}", False
    if matched:
        return f"agrees: changes at {', '.join(where(ch) for ch in matched)}{also}", False
    if doc in h.unmeasured:
        return f"cannot tell: {doc} was not measured{also}", False
    found = f"measured changes at {', '.join(others)}" if others else "no change in the measured range"
    return f"DISAGREES: no change at {doc}; {found}", True
