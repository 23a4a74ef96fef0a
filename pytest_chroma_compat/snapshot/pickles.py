"""Which of a store's pickles hold code: read statically, opcode by opcode, never loaded.

Why statically: a pickle names the callables it will run (GLOBAL, STACK_GLOBAL,
INST, extension codes), and ``pickletools.genops`` lists opcodes without
executing any. STACK_GLOBAL takes its two names from the stack, where a crafted
file can put them by memo lookups rather than literals, so the scan follows a
model of the stack and the memo; a name it cannot resolve counts as code (the
file is refused, never given the benefit of the doubt). What counts as data is
the allowlist the workers enforce (``engine/worker/safe_pickle.py``), so the inventory
and the releases refuse exactly the same files.
"""

from __future__ import annotations

import pickletools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_chroma_compat.engine.worker.safe_pickle import ALLOWED, describe

#: file names chromadb pickles under: 0.4-1.x ``<segment>/index_metadata.pickle``, 0.3 ``index/*.pkl``
SUFFIXES = (".pickle", ".pkl")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MARK, _OTHER = object(), object()
_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
#: what a name the scan cannot resolve is reported as
UNRESOLVED = "<a name computed at load time>"


@dataclass
class Scan:
    """One pickle: every global it names, and the ones outside the allowlist."""

    references: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unreadable: str | None = None

    @property
    def hostile(self) -> bool:
        return bool(self.refused)


def scan(data: bytes) -> Scan:
    """Every callable ``data`` would resolve when unpickled; malformed data is ``unreadable``, never raised."""
    out = Scan()
    try:
        _walk(data, out)
    except Exception as exc:  # noqa: BLE001 - genops and the model raise many kinds on garbage
        out.unreadable = f"not a readable pickle ({type(exc).__name__}: {str(exc)[:120]})"
    return out


def _note(out: Scan, module: Any, name: Any) -> None:
    resolved = isinstance(module, str) and isinstance(name, str)
    ref = f"{module}.{name}" if resolved else UNRESOLVED
    if ref not in out.references:
        out.references.append(ref)
    if (not resolved or (module, name) not in ALLOWED) and ref not in out.refused:
        out.refused.append(ref)


def _walk(data: bytes, out: Scan) -> None:
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    for op, arg, _pos in pickletools.genops(data):
        name = op.name
        if name in _STRINGS:
            stack.append(arg if isinstance(arg, str) else _OTHER)
        elif name in _GETS:
            stack.append(memo.get(arg, _OTHER))
        elif name in _PUTS:
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name == "DUP":
            stack.append(stack[-1])
        elif name == "STACK_GLOBAL":
            gname, module = stack.pop(), stack.pop()
            if gname is _MARK or module is _MARK:
                raise ValueError("STACK_GLOBAL consumed a mark")
            _note(out, module, gname)
            stack.append(_OTHER)
        elif name in ("GLOBAL", "INST"):
            module, _, gname = str(arg).partition(" ")
            _note(out, module, gname)
            _generic(op, stack)
        elif name in ("EXT1", "EXT2", "EXT4"):
            _note(out, "copyreg extension", str(arg))
            stack.append(_OTHER)
        elif name in ("PERSID", "BINPERSID"):
            _note(out, "persistent id", str(arg) if arg is not None else "?")
            _generic(op, stack)
        else:
            _generic(op, stack)


def _generic(op: pickletools.OpcodeInfo, stack: list[Any]) -> None:
    """Pop what the opcode consumes (to the mark for a stack slice), push placeholders for what it makes."""
    for item in reversed(op.stack_before):
        if item is pickletools.stackslice:
            while stack[-1] is not _MARK:
                stack.pop()
        elif item is pickletools.markobject:
            if stack.pop() is not _MARK:
                raise ValueError(f"{op.name} without a mark")
        else:
            if stack.pop() is _MARK:
                raise ValueError(f"{op.name} consumed a mark")
    for item in op.stack_after:
        stack.append(_MARK if item is pickletools.markobject else _OTHER)


def segment_of(rel: str) -> str | None:
    """The segment (or, for 0.3, the collection) a pickle belongs to: its directory or its name's uuid."""
    parts = rel.split("/")
    if len(parts) >= 2 and _UUID.match(parts[-2]):
        return parts[-2]
    found = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", parts[-1])
    return found.group(0) if found else None


def scan_store(root: Path, names: Iterable[str]) -> dict[str, list[dict]]:
    """``hostile_pickles`` and ``unreadable_pickles`` of the store at ``root`` (``names`` relative to it)."""
    hostile, unreadable = [], []
    for rel in sorted(n for n in names if n.endswith(SUFFIXES)):
        path = root / rel
        try:
            data = path.read_bytes()
        except OSError as exc:
            unreadable.append({"file": rel, "segment": segment_of(rel), "reason": f"unreadable ({exc.strerror})"})
            continue
        found = scan(data)
        if found.unreadable:
            unreadable.append({"file": rel, "segment": segment_of(rel), "reason": found.unreadable})
        elif found.hostile:
            hostile.append({"file": rel, "segment": segment_of(rel), "references": found.refused})
    return {"hostile_pickles": hostile, "unreadable_pickles": unreadable}


def problem(entry: dict) -> str:
    """The one-line finding for an entry of ``scan_store``, worded as the workers word their refusal."""
    where = describe(entry["file"])
    if "references" in entry:
        return (
            f"{where} holds code, not data (references {', '.join(entry['references'][:5])}): chromadb "
            "0.3-0.6 run it when they open the segment (this harness's workers refuse to); the store was "
            "tampered with"
        )
    return f"{where} is {entry['reason']}: a release that opens the segment fails"
