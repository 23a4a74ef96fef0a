"""The worker protocol: one JSON object per line, both ways.

This module is imported by the host (as ``pytest_chroma_compat.worker.wire``)
and by the worker (as a sibling file run by a release's own interpreter), so
both sides share one definition of the format. It must stay stdlib-only: the
release environment has chromadb and its dependencies, nothing of ours.

Request:   {"id": 7, "op": "get", "args": {...}}
Reply:     {"id": 7, "ok": true, "result": ...}
           {"id": 7, "ok": false, "error": {"type", "module", "message",
                                            "traceback", "base_exception"}}
Stream:    {"id": 7, "chunk": ...}   (zero or more, before the final reply)

Vectors never travel as decimal text: a float32 that went through ``repr`` and
back is exact, but a float32 *array* turned into Python floats by one release
and into float64 JSON by us would hide which dtype the release returned. So
arrays travel as base64 little-endian bytes with their dtype, shape and the
Python type the release handed back ("ndarray", "list", ...).
"""

from __future__ import annotations

import base64
import json
import sys
from array import array
from typing import Any

ND = "__nd__"
PROTOCOL_VERSION = 1

_ARRAY_CODES = {"float32": "f", "float64": "d", "int64": "q", "int32": "i"}


def _is_ndarray(obj: Any) -> bool:
    return hasattr(obj, "dtype") and hasattr(obj, "tobytes") and hasattr(obj, "shape")


def _dtype_name(obj: Any) -> str:
    return str(getattr(obj.dtype, "name", obj.dtype))


def pack_ndarray(arr: Any, pytype: str = "ndarray") -> dict:
    """Pack a numpy array (duck-typed, so this file needs no numpy)."""
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder == "big"):
        arr = arr.byteswap().view(arr.dtype.newbyteorder("<"))
    data = arr.tobytes(order="C")
    return {
        ND: base64.b64encode(data).decode("ascii"),
        "dtype": _dtype_name(arr),
        "shape": list(arr.shape),
        "pytype": pytype,
    }


def pack_rows(rows: Any, dtype: str = "float64", pytype: str = "list") -> dict:
    """Pack a list of equal-length float rows (Python floats are float64: exact)."""
    rows = list(rows)
    width = len(rows[0]) if rows else 0
    flat = array(_ARRAY_CODES[dtype])
    for row in rows:
        if len(row) != width:
            raise ValueError("ragged embeddings cannot be packed")
        flat.extend(float(x) for x in row)
    if sys.byteorder == "big":
        flat.byteswap()
    return {
        ND: base64.b64encode(flat.tobytes()).decode("ascii"),
        "dtype": dtype,
        "shape": [len(rows), width],
        "pytype": pytype,
    }


def pack_embeddings(value: Any) -> Any:
    """Pack whatever a release returned as ``embeddings`` and remember its type."""
    if value is None:
        return None
    if _is_ndarray(value):
        return pack_ndarray(value, "ndarray")
    value = list(value)
    if value and all(_is_ndarray(v) for v in value):
        # a list of 1-d arrays (some releases return this from get())
        rows = [[float(x) for x in v] for v in value]
        return pack_rows(rows, _dtype_name(value[0]), "list[ndarray]")
    return pack_rows([list(map(float, r)) for r in value], "float64", "list")


def unpack_rows(packed: dict) -> list:
    """Decode packed vectors into lists of Python floats (worker side)."""
    code = _ARRAY_CODES[packed["dtype"]]
    flat = array(code)
    flat.frombytes(base64.b64decode(packed[ND]))
    if sys.byteorder == "big":
        flat.byteswap()
    shape = packed["shape"]
    if len(shape) == 1:
        return flat.tolist()
    n, width = shape[0], shape[1]
    values = flat.tolist()
    return [values[i * width : (i + 1) * width] for i in range(n)]


def unpack_ndarray(packed: dict, np: Any) -> Any:
    """Decode packed vectors into a numpy array of the dtype that was sent (host side)."""
    arr = np.frombuffer(base64.b64decode(packed[ND]), dtype=np.dtype(packed["dtype"]).newbyteorder("<"))
    return arr.astype(packed.get("restore") or packed["dtype"]).reshape(packed["shape"])


def to_jsonable(obj: Any) -> Any:
    """Make a chromadb result JSON-safe without losing value types.

    bool stays bool, int stays int (JSON keeps them apart); numpy scalars become
    Python scalars; arrays are packed.
    """
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return default(obj)


def default(obj: Any) -> Any:
    """What json cannot encode itself, encoded as :func:`to_jsonable` would.

    Why a hook and not ``to_jsonable`` on every reply: a page of a thousand
    records is almost all str/int/float/bool, which the C encoder handles; walking
    it in Python first cost more than chromadb spent reading it.
    """
    if _is_ndarray(obj):
        return obj.item() if obj.shape == () else pack_ndarray(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return repr(obj)


def dumps(message: dict) -> str:
    return json.dumps(message, ensure_ascii=True, allow_nan=True, separators=(",", ":"), default=default)


def loads(line: str, object_hook: Any = None) -> dict:
    return json.loads(line, object_hook=object_hook)
