"""A store's pickles are data, never code; release code never sees the user's credentials.

chromadb 0.3-0.6 unpickle ``<segment>/index_metadata.pickle`` when they open a
segment, so a store someone hands us can carry a program. Every payload here is
live: ``test_the_payloads_are_live`` runs each one through a plain
``pickle.load`` in the release's own interpreter and sees it act, so a guard that
stops working fails the tests that follow. Nothing here mocks chromadb.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from pytest_chroma_compat.common.errors import ChromaError
from pytest_chroma_compat.engine import envs
from pytest_chroma_compat.engine.client import Release
from pytest_chroma_compat.engine.worker import safe_pickle
from pytest_chroma_compat.snapshot import inventory, pickles, tree_hash

from .conftest import MID, NEW, OLD
from .trust import Canary, cli, one_line

PD = ("chromadb.segment.impl.vector.local_persistent_hnsw", "PersistentData")
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-h2",
    "AWS_ACCESS_KEY_ID": "AKIAH2",
    "MY_API_TOKEN": "tok-h2",
    "DB_PASSWORD": "pw-h2",
    "GITHUB_TOKEN": "ghp-h2",
    "OPENAI_API_KEY": "sk-h2",
    "STRIPE_KEY": "sk-live-h2",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secret/h2.json",
    "HTTPS_PROXY": "http://bob:hunter2@proxy:3128",
}


# -- payloads: each writes ``marker`` (and the environment it saw) when unpickled --------------


def _v(text: str) -> bytes:
    """A protocol-0 unicode argument (the V opcode): one line, raw-unicode-escaped."""
    return text.encode("raw_unicode_escape")


def _shell(marker: Path) -> str:
    return f"env > {marker}.env; touch {marker}"


def _stack_global(module: bytes, name: bytes) -> bytes:
    return b"\x8c" + bytes([len(module)]) + module + b"\x8c" + bytes([len(name)]) + name + b"\x93"


def payload(kind: str, marker: Path) -> bytes:
    """A crafted pickle of ``kind`` whose load would create ``marker``."""
    sh = _v(_shell(marker))
    code = _v(
        f"import os; open({str(marker) + '.env'!r}, 'w').write(repr(dict(os.environ))); "
        f"open({str(marker)!r}, 'w').close()"
    )
    if kind == "os.system":  # the GLOBAL opcode, as a hand-written exploit spells it
        return b"cos\nsystem\n(V" + sh + b"\ntR."
    if kind == "posix.system":  # a __reduce__ returning os.system, as pickle.dumps writes it
        return b"\x80\x05" + _stack_global(b"posix", b"system") + b"V" + sh + b"\n\x85R."
    if kind == "builtins.exec":
        return b"\x80\x04" + _stack_global(b"builtins", b"exec") + b"V" + code + b"\n\x85R."
    if kind == "builtins.eval":
        expr = _v(f"__import__('os').system({_shell(marker)!r})")
        return b"\x80\x04" + _stack_global(b"builtins", b"eval") + b"V" + expr + b"\n\x85R."
    if kind == "subprocess.Popen":
        return b"\x80\x04" + _stack_global(b"subprocess", b"Popen") + b"(V/bin/sh\nV-c\nV" + sh + b"\nl\x85R."
    if kind == "memo-hidden os.system":  # names reach STACK_GLOBAL from the memo, not as literals
        return (
            b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94" + b"\x8c\x01x\x94" * 3 + b"h\x00h\x01\x93V" + sh + b"\n\x85R."
        )
    if kind == "nested in PersistentData":  # the class chromadb expects, with code inside its state
        return (
            b"\x80\x04"
            + _stack_global(PD[0].encode(), PD[1].encode())
            + b")\x81}\x8c\x0bid_to_label"
            + b"cos\nsystem\n(V"
            + sh
            + b"\ntR"
            + b"sb."
        )
    if kind == "INST os.system":  # protocol 0's INST: class and call in one opcode
        return b"(V" + sh + b"\nios\nsystem\n."
    raise ValueError(kind)


KINDS = (
    "os.system",
    "posix.system",
    "builtins.exec",
    "builtins.eval",
    "subprocess.Popen",
    "memo-hidden os.system",
    "nested in PersistentData",
    "INST os.system",
)
REFERENCE = {
    "posix.system": "posix.system",
    "builtins.exec": "builtins.exec",
    "builtins.eval": "builtins.eval",
    "subprocess.Popen": "subprocess.Popen",
}


def _wait_absent(*paths: Path, seconds: float = 0.3) -> None:
    """A payload that spawned a process (Popen) acts a little later: look, wait, look again."""
    for attempt in range(2):
        if attempt:
            time.sleep(seconds)
        for p in paths:
            assert not p.exists(), f"the payload ran: {p} exists"


# -- stores ------------------------------------------------------------------------------------


def _write(release: Release, path: Path) -> Path:
    """12 records, one deleted, batch and sync thresholds of 3: the segment persists its pickle."""
    rng = np.random.default_rng(0)
    with release.persistent(path) as client:
        col = client.create_collection("trusted", metadata={"hnsw:batch_size": 3, "hnsw:sync_threshold": 3})
        col.add(
            ids=[f"r{i}" for i in range(12)],
            embeddings=rng.normal(size=(12, 4)).astype(np.float32),
            documents=[f"doc {i}" for i in range(12)],
            metadatas=[{"i": i} for i in range(12)],
        )
        col.delete(ids=["r3"])
    return path


@pytest.fixture(scope="module")
def releases():
    opened = {v: Release(v) for v in (OLD, MID)}
    yield opened
    for r in opened.values():
        r.close()


@pytest.fixture(scope="module")
def stores(tmp_path_factory, releases) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pickle-stores")
    return {v: _write(r, root / v) for v, r in releases.items()}


def _segment_pickle(store: Path) -> Path:
    found = sorted(store.glob("*/index_metadata.pickle"))
    assert len(found) == 1, found
    return found[0]


def _hostile_copy(stores: dict, version: str, kind: str, dest: Path, marker: Path) -> tuple[Path, str]:
    shutil.copytree(stores[version], dest)
    target = _segment_pickle(dest)
    target.write_bytes(payload(kind, marker))
    return dest, target.parent.name


# -- the allowlist is measured, and covers what real releases write ---------------------------


@pytest.mark.parametrize("version", [OLD, MID])
def test_the_allowlist_covers_what_releases_write(stores, version):
    """Re-measured: every global a real store's pickle names is in ALLOWED (PersistentData only)."""
    found = pickles.scan(_segment_pickle(stores[version]).read_bytes())
    assert found.unreadable is None and found.refused == []
    assert found.references == [".".join(PD)]
    assert PD in safe_pickle.MEASURED
    assert inventory.take(stores[version])["hostile_pickles"] == []


def test_the_payloads_are_live(stores, tmp_path):
    """Control: a plain pickle.load in the release's interpreter runs every payload (so the guards are needed)."""
    env = Release(OLD).env
    files = []
    for kind in KINDS:
        marker = tmp_path / f"ran-{KINDS.index(kind)}"
        f = tmp_path / f"{KINDS.index(kind)}.pickle"
        f.write_bytes(payload(kind, marker))
        files.append((f, marker))
    code = (
        "import pickle, sys\nfor f in sys.argv[1:]:\n    try: pickle.load(open(f, 'rb'))\n"
        "    except Exception as e: print(f, e)\n"
    )
    subprocess.run(
        [str(env.interpreter), "-c", code, *[str(f) for f, _ in files]],
        cwd=tmp_path,
        timeout=120,
        capture_output=True,
        env=envs.hermetic_environ(tmp_path / "scratch"),
    )
    time.sleep(0.5)
    assert [m.exists() for _, m in files] == [True] * len(KINDS), list(zip(KINDS, (m.exists() for _, m in files)))


# -- (a) a release opens the hostile store: the payload never runs, the error names the file -----


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", [OLD, MID])
def test_a_release_never_runs_a_pickle(stores, releases, tmp_path, version, kind):
    """Measured on 0.4.24 and 0.6.3: the store opens and counts (SQLite), reading vectors fails
    with the refusal as a chromadb-side error, and nothing of the pickle runs."""
    marker = tmp_path / "pwned"
    store, segment = _hostile_copy(stores, version, kind, tmp_path / "store", marker)
    with releases[version].persistent(store) as client:
        col = client.get_collection("trusted")
        assert col.count() == 11
        with pytest.raises(ChromaError) as err:
            col.get(include=["embeddings"])
        message = str(err.value)
        assert f"index_metadata.pickle in segment {segment} holds code, not data" in message, message
        assert "PickleHoldsCode" in message
        assert f"(references {REFERENCE.get(kind, 'os.system')})" in message
        with pytest.raises(ChromaError, match="holds code, not data"):
            col.query(query_embeddings=[[0.1, 0.2, 0.3, 0.4]], n_results=2)
    _wait_absent(marker, Path(f"{marker}.env"))


# -- (b) the real CLI on a hostile store --------------------------------------------------------


@pytest.mark.parametrize("version,target", [pytest.param(OLD, MID, marks=pytest.mark.slow), (MID, NEW)])
def test_validate_reports_a_hostile_store(stores, tmp_path, canary: Canary, version, target):
    """Exit 1 (not safe), the one stderr line and the JSON name the file; the payload, aimed at the
    canary, never runs and the credentials it would dump are not even there to dump."""
    marker = canary.root / "pwned"
    store, segment = _hostile_copy(stores, version, "os.system", tmp_path / "store", marker)
    before = tree_hash(store)
    proc = cli(
        "validate",
        str(store),
        "--to",
        target,
        "--workdir",
        str(tmp_path / "work"),
        "--no-contracts",
        "--quiet",
        "--json",
        "-",
        env=SECRETS,
    )
    one_line(
        proc,
        1,
        "not safe",
        "integrity",
        f"index_metadata.pickle in segment {segment}",
        "holds code, not data (references os.system)",
    )
    report = json.loads(proc.stdout)
    inv = report["inventory"]
    assert inv["hostile_pickles"] == [
        {"file": f"{segment}/index_metadata.pickle", "segment": segment, "references": ["os.system"]}
    ]
    integrity = [c for c in report["checks"] if c["name"] == "integrity"]
    assert integrity and integrity[0]["status"] == "pre-existing"
    assert [c["status"] for c in report["checks"] if c["name"] == "code-in-store"] == ["fail"]
    allowed = cli(
        "validate",
        str(store),
        "--to",
        target,
        "--workdir",
        str(tmp_path / "work"),
        "--no-contracts",
        "--quiet",
        "--allow-pre-existing",
        env=SECRETS,
    )
    assert allowed.returncode == 1, allowed.stdout + allowed.stderr  # never a defect to live with
    assert "NOT safe" in allowed.stdout and "code-in-store" in allowed.stdout and "Traceback" not in allowed.stderr
    _wait_absent(marker, Path(f"{marker}.env"))
    canary.assert_untouched()
    assert tree_hash(store) == before
    assert list((tmp_path / "work").iterdir()) == []


# -- (c) the static scan ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_scan_refuses_code(tmp_path, kind):
    found = pickles.scan(payload(kind, tmp_path / "never"))
    assert found.unreadable is None
    assert found.hostile
    expected = REFERENCE.get(kind, "os.system")
    assert expected in found.refused
    assert ".".join(PD) not in found.refused  # the class is data; what it holds is not
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    "data,refused",
    [
        (b"\x80\x02cos\nsystem\nq\x00.", ["os.system"]),
        (b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x01h\x00\x93.", ["system.os"]),  # memo order matters
        (b"\x80\x04J\x01\x00\x00\x00\x8c\x06system\x93.", [pickles.UNRESOLVED]),  # a name that is not a string
        (b"\x80\x02\x82\xf0.", ["copyreg extension.240"]),  # EXT1: resolved through copyreg's registry
        (b"\x80\x02Pabc\n.", ["persistent id.abc"]),
    ],
    ids=["GLOBAL", "memo-order", "non-string-name", "extension-code", "persistent-id"],
)
def test_the_scan_refuses_indirect_references(data, refused):
    assert pickles.scan(data).refused == refused


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, "x", None, True], "c": (1, 2)},
        {"s": {1, 2}, "f": frozenset({3})},
        "text",
        {"id_to_label": {"r1": 1}, "label_to_id": {1: "r1"}},
    ],
    ids=["dict", "sets", "str", "id-maps"],
)
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_the_scan_accepts_plain_data(value, protocol):
    found = pickles.scan(pickle.dumps(value, protocol=protocol))
    assert found.unreadable is None and found.refused == [], found


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps({"a": list(range(50))})[:-7],
        b"",
        b"garbage\x00\xff",
        b"\x80\x05\x95" + b"\x00" * 3,
        b"\x80\x04u.",
        b"\x80\x04\xff.",
        b"(\x93.",
    ],
    ids=["truncated", "empty", "garbage", "truncated-frame", "stack-underflow", "unknown-opcode", "mark-as-name"],
)
def test_the_scan_reports_malformed_pickles_as_unreadable(data):
    found = pickles.scan(data)
    assert found.unreadable and found.unreadable.startswith("not a readable pickle"), found


def test_the_inventory_lists_hostile_and_unreadable_pickles(stores, tmp_path):
    store = shutil.copytree(stores[OLD], tmp_path / "store")
    segment = _segment_pickle(store).parent.name
    _segment_pickle(store).write_bytes(payload("builtins.exec", tmp_path / "never"))
    stray = store / "index" / "id_to_uuid_deadbeef-0000-0000-0000-000000000000.pkl"
    stray.parent.mkdir()
    stray.write_bytes(b"\x80\x04truncated")
    inv = inventory.take(store)
    assert inv["hostile_pickles"] == [
        {"file": f"{segment}/index_metadata.pickle", "segment": segment, "references": ["builtins.exec"]}
    ]
    assert [u["file"] for u in inv["unreadable_pickles"]] == [stray.relative_to(store).as_posix()]
    assert inv["unreadable_pickles"][0]["segment"] == "deadbeef-0000-0000-0000-000000000000"
    assert sorted(inv["pickles"]) == sorted([f"{segment}/index_metadata.pickle", stray.relative_to(store).as_posix()])
    assert any(
        f"index_metadata.pickle in segment {segment} holds code, not data (references builtins.exec)" in p
        for p in inv["problems"]
    )
    assert any(p.startswith(f"index/{stray.name} is not a readable pickle") for p in inv["problems"])
    assert not (tmp_path / "never").exists()


# -- the worker-side unpickler ------------------------------------------------------------------


def test_the_restricted_unpickler_names_the_file(tmp_path):
    segment = str(uuid.uuid4())
    f = tmp_path / segment / "index_metadata.pickle"
    f.parent.mkdir()
    f.write_bytes(payload("os.system", tmp_path / "never"))
    with open(f, "rb") as fh, pytest.raises(safe_pickle.PickleHoldsCode) as err:
        safe_pickle.load(fh)
    assert str(err.value) == f"index_metadata.pickle in segment {segment} holds code, not data (references os.system)"
    with pytest.raises(safe_pickle.PickleHoldsCode, match=r"^a pickle holds code, not data \(references builtins.exec"):
        safe_pickle.loads(payload("builtins.exec", tmp_path / "never"))
    assert safe_pickle.loads(pickle.dumps({"a": {1, 2}, "b": [1.5]}, protocol=2)) == {"a": {1, 2}, "b": [1.5]}
    assert not (tmp_path / "never").exists()


def test_install_closes_every_way_in(tmp_path):
    """In a fresh interpreter: after install(), pickle's and _pickle's load/loads/Unpickler, the
    pure-Python ones (still subclassable the way pandas does), extension codes all refuse, and a
    marker the payload would write never appears."""
    marker = tmp_path / "pwned"
    evil = payload("os.system", marker)
    code = f"""
import copyreg, io, pickle, _pickle, sys
sys.path.insert(0, {str(Path(safe_pickle.__file__).parent)!r})
import safe_pickle
safe_pickle.install()
evil = {evil!r}
copyreg.add_extension("os", "system", 240)
class PandasStyle(pickle._Unpickler):  # pandas' pickle_compat, imported by chromadb 0.3, does this at import
    dispatch = pickle._Unpickler.dispatch.copy()
ways = {{
    "pickle.loads": lambda: pickle.loads(evil), "pickle.load": lambda: pickle.load(io.BytesIO(evil)),
    "pickle.Unpickler": lambda: pickle.Unpickler(io.BytesIO(evil)).load(),
    "_pickle.loads": lambda: _pickle.loads(evil), "_pickle.load": lambda: _pickle.load(io.BytesIO(evil)),
    "_pickle.Unpickler": lambda: _pickle.Unpickler(io.BytesIO(evil)).load(),
    "pickle._loads": lambda: pickle._loads(evil),
    "pickle._Unpickler": lambda: pickle._Unpickler(io.BytesIO(evil)).load(),
    "extension code": lambda: pickle.loads(b"\\x80\\x02\\x82\\xf0)R."),
    "a subclass": lambda: PandasStyle(io.BytesIO(evil)).load(),
}}
for name, way in ways.items():
    try:
        way()
        print(name, "LOADED")
    except safe_pickle.PickleHoldsCode as exc:
        print(name, "refused", exc)
print("data", pickle.loads(pickle.dumps({{"k": [1, 2.5, "x"]}})))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 11, proc.stdout
    assert all(" refused a pickle holds code, not data (references os.system)" in ln for ln in lines[:10]), proc.stdout
    assert lines[10] == "data {'k': [1, 2.5, 'x']}"
    _wait_absent(marker)


def test_workers_unpickle_through_the_guard(releases, tmp_path):
    """The release's own module resolves pickle.load to the guard: installed before chromadb was imported."""
    (tmp_path / "h2_guard_probe.py").write_text(
        "import pickle, _pickle\n"
        "def probe():\n"
        "    from chromadb.segment.impl.vector import local_persistent_hnsw as m\n"
        "    return [m.pickle.load.__module__, pickle.Unpickler.__name__, _pickle.loads.__module__]\n"
    )
    for release in releases.values():
        assert release.run("h2_guard_probe:probe", sys_path=[str(tmp_path)]) == [
            "safe_pickle",
            "RestrictedUnpickler",
            "safe_pickle",
        ]


# -- (d) credentials never reach release code ---------------------------------------------------


@pytest.mark.parametrize(
    "name",
    sorted(SECRETS)
    + [
        "aws_session_token",
        "PGPASSWORD",
        "SSH_AUTH_SOCK",
        "KUBECONFIG",
        "CHROMA_SERVER_AUTHN_CREDENTIALS",
        "AZURE_CLIENT_SECRET",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
        "HF_TOKEN",
        "VAULT_TOKEN",
    ],
)
def test_secret_variables_are_recognised(name):
    assert envs.is_secret(name, SECRETS.get(name, "x"))


@pytest.mark.parametrize(
    "name,value",
    [
        ("PATH", "/usr/bin"),
        ("LANG", "C.UTF-8"),
        ("TZ", "UTC"),
        ("HTTPS_PROXY", "http://proxy:3128"),
        ("TOKENIZERS_PARALLELISM", "false"),
        ("OPENBLAS_NUM_THREADS", "1"),
        ("KEYRING_BACKEND", "x"),
    ],
)
def test_harmless_variables_pass(name, value):
    assert not envs.is_secret(name, value)


def _leaks(environ: dict) -> list[str]:
    return [k for k, v in SECRETS.items() if k in environ or any(v in str(x) for x in environ.values())]


def test_a_worker_sees_no_credentials(monkeypatch, tmp_path):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("H2_HARMLESS", "still-here")
    (tmp_path / "h2_env_probe.py").write_text("import os\ndef probe():\n    return dict(os.environ)\n")
    with Release(OLD) as release:  # a fresh worker: it inherits the environment as it is now
        seen = release.run("h2_env_probe:probe", sys_path=[str(tmp_path)])
    assert _leaks(seen) == []
    assert seen["H2_HARMLESS"] == "still-here" and seen["PATH"] == os.environ["PATH"]
    assert seen.get("LANG") == os.environ.get("LANG")


def test_a_server_sees_no_credentials(monkeypatch):
    """``chroma run`` of contracts/server_probes.py: its whole process tree, read from /proc."""
    from pytest_chroma_compat.contracts.server_probes import serve

    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to read a server's environment")
    envs.ensure(NEW)  # built first: on a cold cache uv would download through the fake HTTPS_PROXY below, and fail
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    tag = f"h2-{uuid.uuid4().hex}"
    with serve(Release(NEW), {"H2_SERVER_TAG": tag}) as server:
        assert server.status("/api/v2/heartbeat") == "200"
        seen = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                raw = (proc / "environ").read_bytes()
            except OSError:
                continue
            if f"H2_SERVER_TAG={tag}".encode() in raw:
                seen.append(dict(e.split("=", 1) for e in raw.decode(errors="replace").split("\0") if "=" in e))
    assert seen, "found no server process carrying the tag"
    assert [_leaks(env) for env in seen] == [[] for _ in seen]


@pytest.mark.parametrize(
    "name,value",
    [
        ("DATABASE_URL", "postgres://app:ab/cd+ef@db:5432/x"),  # an AWS-style password holds "/" and "+"
        ("DB_PASS", "x"),
        ("GPG_PASSPHRASE", "x"),
        ("SENTRY_DSN", "https://abc@o1.ingest.sentry.io/1"),
        ("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/x"),
        ("PGPASSFILE", "/home/u/.pgpass"),
        ("BOTO_CONFIG", "/home/u/.boto"),
        ("ANY_NAME", "redis://:s3cr/et@cache:6379/0"),
    ],
)
def test_secrets_by_value_and_by_less_common_names(name, value):
    """Found in review: a password with "/" in a URL, and names like *_PASS, *_DSN, *WEBHOOK*, passed through."""
    assert envs.is_secret(name, value)
