"""Side-effect probes: what a release writes outside its store, and which hosts it tries to reach.

Runs INSIDE a release's environment (the worker's ``run`` op imports it as ``side_effects``), so it is
stdlib only. Each probe runs side_effect_session.py -- a realistic session: PersistentClient on a store,
create a collection, add with explicit embeddings and documents, query, get, close -- in a fresh
interpreter whose HOME, cwd and TMPDIR are empty directories of a sandbox, once with
``anonymized_telemetry=False`` and once with the setting left at the release's default.

Why it is built this way:
- Two witnesses. Python audit hooks (in the session) see host names and Python-level writes;
  ``strace`` sees what native code does too (the 1.x Rust core, onnxruntime, SQLite's temp files),
  and only writes that succeeded, so with strace the writes are strace's and the hooks give the
  network attempts. Without strace the answer says so: native writes are "not measured", never
  guessed empty, and the hooks' writes are attempts.
- Nothing leaves the machine: the hooks refuse every lookup and connect, and strace makes every
  ``connect``/``sendto``/``sendmsg`` fail with ENETUNREACH (``-e inject``); both record the attempt.
- Answers must compare across releases, so paths are written relative to the sandbox (``~/``,
  ``./``, ``$TMPDIR/``, ``<env>/``) and random parts of names (uuids, SQLite's ``etilqs_`` temp
  names, hex ids) are replaced by placeholders. Bytecode caching is turned off in the session
  (PYTHONDONTWRITEBYTECODE): it is Python's, and depends on the environment's history.
- Measured as on a developer's machine: onnxruntime (0.x) skips its telemetry files -- the device id
  and database under ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and $TMPDIR/.ses -- when
  ORT_DISABLE_TELEMETRY or a CI service's variable (CI, GITHUB_ACTIONS, ...) is set (measured with
  onnxruntime 1.32). Left in, the answer would depend on where the probe ran: a CI run measured
  "no onnxruntime files" for 0.4.24 where a laptop sees three. ``QUIETING_VARIABLES`` are removed.
- A measurement that is plainly broken (strace saw no write to the store, the session died without
  an outcome) raises: a probe that cannot run is a failure, never a value.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SESSION = os.path.join(HERE, "side_effect_session.py")
SETTINGS = {"anonymized_telemetry=False": False, "anonymized_telemetry at its default": None}
UNWRITABLE_HOME = "HOME unwritable, anonymized_telemetry=False"
#: variables that make a release's dependencies quieter than on a developer's machine: onnxruntime's
#: off switch and the CI services it detects (the names its native library reads at import)
QUIETING_VARIABLES = (
    "ORT_DISABLE_TELEMETRY",
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
)
_TELEMETRY = {**SETTINGS, UNWRITABLE_HOME: False}
SESSION_TIMEOUT = 50.0
STRACE_CALLS = (
    "open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,"
    "truncate,connect,sendto,sendmsg"
)
STRACE_BLOCK = "connect,sendto,sendmsg:error=ENETUNREACH"
NOT_MEASURED = "not measured: strace unavailable"
MAX_PATHS = 25
ORDER = ("import", "client", "create", "add", "query", "get", "close", "exit", "background")
_IGNORED = ("/dev/null", "/dev/tty", "/dev/pts/", "/proc/", "/sys/")


# -- strace: is it there, and what did it see ---------------------------------------------------

_STRACE: list = []


def strace() -> tuple[str | None, str]:
    """The strace binary, or None and why not (absent, or ptrace refused in this container)."""
    if not _STRACE:
        path = shutil.which("strace")
        if path is None:
            _STRACE.append((None, NOT_MEASURED))
        else:
            try:
                proc = subprocess.run(
                    strace_command(path, os.devnull, [sys.executable, "-c", "pass"]), capture_output=True, timeout=30
                )
                why = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
                _STRACE.append((path, "") if proc.returncode == 0 else (None, f"{NOT_MEASURED} ({why[:120]})"))
            except (OSError, subprocess.SubprocessError) as exc:
                _STRACE.append((None, f"{NOT_MEASURED} ({type(exc).__name__})"))
    return _STRACE[0]


def strace_command(binary: str, log: str, cmd: list[str]) -> list[str]:
    """``cmd`` under strace: file writes and network calls logged to ``log`` (fds shown as paths),
    every connect/sendto/sendmsg failed with ENETUNREACH; only those calls stop the process."""
    return [
        binary,
        "-f",
        "-qq",
        "-e",
        "signal=none",
        "--seccomp-bpf",
        "-y",
        "-s",
        "4096",
        "-e",
        f"trace={STRACE_CALLS}",
        "-e",
        f"inject={STRACE_BLOCK}",
        "-o",
        log,
        "--",
        *cmd,
    ]


_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+)(?:<(.*?)>)?(?:\s.*)?$")
_PATH_ARG = re.compile(r'(?:(AT_FDCWD|\d+)(?:<([^>]*)>)?,\s*)?"((?:[^"\\]|\\.)*)"')
_INET = re.compile(r'sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6,\s*"([^"]+)")')
_UNIX = re.compile(r'sun_path=(?:@)?"((?:[^"\\]|\\.)*)"')
_WRITE_FLAG = re.compile(r"\bO_(WRONLY|RDWR|CREAT|TRUNC|APPEND)\b")


def _unescape(text: str) -> str:
    return codecs.escape_decode(text.encode())[0].decode("utf-8", "replace")


def _calls(log: str) -> list[tuple[int, str, str, int, str | None]]:
    """(tid, syscall, arguments, return value, path of a returned fd) per finished call, in order."""
    pending: dict[str, str] = {}
    out = []
    for raw in log.splitlines():
        m = _LINE.match(raw)
        if not m:
            continue
        tid, text = m.groups()
        if text.endswith("<unfinished ...>"):
            pending[tid] = text[: -len("<unfinished ...>")].rstrip()
            continue
        if text.startswith("<..."):
            text = pending.pop(tid, "") + text.split("resumed>", 1)[-1]
        call = _CALL.match(text)
        if call:
            name, args, ret, fd_path = call.groups()
            out.append((int(tid), name, args, int(ret), fd_path))
    return out


def _arg_paths(args: str, cwd: str) -> list[str]:
    paths = []
    for _fd, dir_path, text in _PATH_ARG.findall(args):
        path = _unescape(text)
        paths.append(os.path.normpath(os.path.join(dir_path or cwd, path)))
    return paths


def traced(log: str, cwd: str, meta: str) -> list[dict]:
    """Writes and network attempts in a strace log, each with the session step it happened in."""
    calls = _calls(log)
    main = calls[0][0] if calls else None
    step, events = "start", []
    for tid, name, args, ret, fd_path in calls:
        when = step if tid == main else "background"
        if name in ("connect", "sendto", "sendmsg"):
            inet, unix = _INET.search(args), _UNIX.search(args)
            if inet:
                port, host = inet.group(1), inet.group(2) or inet.group(3)
                what = "native DNS query" if port == "53" else f"native {name} {host}:{port}"
            elif unix:
                path = _unescape(unix.group(1))
                what = "native name-service (nscd) query" if "nscd" in path else f"native {name} unix:{path}"
            else:
                continue  # a connected socket's send, netlink: no address of its own
            events.append({"kind": "net", "what": what, "when": when})
            continue
        if ret < 0:
            continue
        if name in ("open", "openat", "creat"):
            if name != "creat" and not _WRITE_FLAG.search(args):
                continue
            paths = [fd_path] if fd_path else _arg_paths(args, cwd)[:1]
        elif name in ("mkdir", "mkdirat", "truncate"):
            paths = _arg_paths(args, cwd)[:1]
        else:  # rename/link/symlink families: the new name is what is written
            paths = _arg_paths(args, cwd)[-1:]
        for path in paths:
            if path == meta or path.startswith(meta + os.sep):
                base = os.path.basename(path)
                if tid == main and base.startswith("phase-"):
                    step = base.split("-", 2)[2]
                continue
            events.append({"kind": "write", "path": path, "when": when})
    return events


# -- naming what was written -------------------------------------------------------------------

_RANDOM = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"etilqs_[0-9A-Za-z]+"), "etilqs_<random>"),
    (re.compile(r"^tmp[a-z0-9_]{8}$"), "tmp<random>"),
    (re.compile(r"[0-9a-f]{12,}", re.I), "<hex>"),
]


def _stable(part: str) -> str:
    for pattern, repl in _RANDOM:
        part = pattern.sub(repl, part)
    return part


def place(path: str, roots: dict[str, str]) -> tuple[str, str] | None:
    """(area, stable name) of a written path; None for the store itself and for device files."""
    path = os.path.normpath(path)
    if path.startswith(_IGNORED) or path in _IGNORED:
        return None
    for area, label, root in (
        ("store", "", roots["store"]),
        ("in HOME/cwd", "~", roots["home"]),
        ("in HOME/cwd", ".", roots["cwd"]),
        ("outside HOME/cwd", "$TMPDIR", roots["tmp"]),
        ("outside HOME/cwd", "<env>", sys.prefix),
        ("outside HOME/cwd", "<python>", sys.base_prefix),
    ):
        if path == root or path.startswith(root + os.sep):
            if area == "store":
                return area, ""
            rel = os.path.relpath(path, root)
            return area, label if rel == "." else f"{label}/" + "/".join(_stable(p) for p in rel.split(os.sep))
    return "outside HOME/cwd", "/".join(_stable(p) for p in path.split("/"))


def _first(a: str, b: str) -> str:
    return min(a, b, key=lambda w: ORDER.index(w) if w in ORDER else -1)


_COMPANION = re.compile(r"-(journal|wal|shm)$")  # SQLite's files beside a database


def _summary(written: dict[str, str]) -> Any:
    """Leaves only (a created directory with something written inside it says nothing more; nor does
    a SQLite journal beside its database); capped."""
    if not written:
        return "nothing"
    leaves = {
        p: w
        for p, w in written.items()
        if not any(q.startswith(p + "/") for q in written)
        and (_COMPANION.sub("", p) == p or _COMPANION.sub("", p) not in written)
    }
    names = sorted(leaves)
    out = {p: leaves[p] for p in names[:MAX_PATHS]}
    if len(names) > MAX_PATHS:
        out[f"(and {len(names) - MAX_PATHS} more)"] = ""
    return out


# -- one session -------------------------------------------------------------------------------

_SESSIONS: dict[str, dict] = {}


def _environ(sandbox: str, home: str, telemetry: bool | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()  # the worker's own, already hermetic: no credentials
        if k not in QUIETING_VARIABLES
    }
    env.update(
        HOME=home,
        XDG_CACHE_HOME=os.path.join(home, ".cache"),
        XDG_CONFIG_HOME=os.path.join(home, ".config"),
        XDG_DATA_HOME=os.path.join(home, ".local", "share"),
        TMPDIR=os.path.join(sandbox, "tmp"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    if telemetry is None:
        env.pop("ANONYMIZED_TELEMETRY", None)  # the worker turns it off by env var too
    else:
        env["ANONYMIZED_TELEMETRY"] = str(telemetry)
    return env


def run_session(label: str) -> dict:
    """One session under ``label`` (a telemetry setting, or UNWRITABLE_HOME): its outcome, writes by
    area, and network attempts.

    UNWRITABLE_HOME points HOME below a regular file: every write there fails (ENOTDIR), for root
    too, as it does where only /tmp is writable (AWS Lambda). Permissions would not do: root
    ignores them.
    """
    if label in _SESSIONS:
        return _SESSIONS[label]
    sandbox = os.path.realpath(tempfile.mkdtemp(prefix="side-effects-", dir=os.getcwd()))
    try:
        roots = {k: os.path.join(sandbox, k) for k in ("home", "cwd", "tmp", "meta", "store")}
        for key in ("home", "cwd", "tmp", "meta"):
            os.makedirs(roots[key])
        config = os.path.join(roots["meta"], "config.json")
        with open(config, "w") as fh:
            json.dump({"meta": roots["meta"], "store": roots["store"], "telemetry": _TELEMETRY[label]}, fh)
        home = roots["home"]
        if label == UNWRITABLE_HOME:
            open(os.path.join(sandbox, "not-a-directory"), "w").close()
            home = os.path.join(sandbox, "not-a-directory", "home")
        binary, why = strace()
        trace = os.path.join(roots["meta"], "strace.log")
        cmd = [sys.executable, SESSION, config]
        if binary:
            cmd = strace_command(binary, trace, cmd)
        with open(os.path.join(roots["meta"], "output.log"), "wb") as output:
            _run(cmd, roots["cwd"], _environ(sandbox, home, _TELEMETRY[label]), output)
        result = _read(roots, binary is not None, why)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
    _SESSIONS[label] = result
    return result


def _run(cmd: list[str], cwd: str, env: dict[str, str], output: Any) -> None:
    """Run the session in a process group of its own, killed whole on timeout: killing strace alone
    would detach the traced session and leave it running."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        proc.wait(timeout=SESSION_TIMEOUT)
    except subprocess.TimeoutExpired:
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError(f"the side-effect session did not finish in {SESSION_TIMEOUT:.0f} s") from None


def _read(roots: dict[str, str], native: bool, why: str) -> dict:
    meta = roots["meta"]
    try:
        with open(os.path.join(meta, "outcome.json")) as fh:
            outcome = json.load(fh)["session"]
    except (OSError, ValueError, KeyError):
        with open(os.path.join(meta, "output.log"), "rb") as fh:
            tail = fh.read()[-600:].decode("utf-8", "replace")
        raise RuntimeError(f"the side-effect session ended without an outcome: {tail}") from None
    with open(os.path.join(meta, "events.jsonl")) as fh:
        events = [json.loads(line) for line in fh if line.strip()]
    if native:  # strace sees every write the hooks see, and only those that succeeded: it alone says
        events = [e for e in events if e["kind"] == "net"]
        with open(os.path.join(meta, "strace.log"), errors="replace") as fh:
            events += traced(fh.read(), roots["cwd"], meta)
    areas: dict[str, dict[str, str]] = {"outside HOME/cwd": {}, "in HOME/cwd": {}}
    network: dict[str, str] = {}
    store_written = False
    for e in events:
        if e["kind"] == "net":
            network[e["what"]] = _first(network.get(e["what"], e["when"]), e["when"])
            continue
        placed = place(e["path"], roots)
        if placed is None:
            continue
        area, name = placed
        if area == "store":
            store_written = True
            continue
        areas[area][name] = _first(areas[area].get(name, e["when"]), e["when"])
    if native and outcome == "ok" and not store_written:
        raise RuntimeError("strace saw no write to the store: the side-effect measurement is broken")
    return {
        "session": outcome,
        "writes": {a: _summary(w) for a, w in areas.items()},
        "network": dict(sorted(network.items())) or "none",
        "seen by": "strace and audit hooks"
        if native
        else f"audit hooks only (Python-level attempts); native writes and connects {why}",
    }


# -- the probes --------------------------------------------------------------------------------


def _per_setting(part: str) -> dict:
    out: dict[str, Any] = {}
    for label in SETTINGS:
        result = run_session(label)
        value = dict(result[part]) if isinstance(result[part], dict) else result[part]
        if result["session"] != "ok":
            value = {"session": result["session"], part: value}
        out[label] = value
    out["seen by"] = run_session(next(iter(SETTINGS)))["seen by"]
    return out


def file_writes() -> dict:
    """Files and directories the session writes outside its store, per telemetry setting, with the
    step that first wrote each (``import``, ``client``, ... ``exit`` for atexit work, ``background``)."""
    return _per_setting("writes")


def network_attempts() -> dict:
    """Host lookups and connections the session attempts (all refused), per telemetry setting."""
    return _per_setting("network")


def unwritable_home() -> Any:
    """Does the session still run when nothing can be written under HOME? "ok", or the error and the step."""
    return run_session(UNWRITABLE_HOME)["session"]


PROBES = ("file_writes", "network_attempts", "unwritable_home")
