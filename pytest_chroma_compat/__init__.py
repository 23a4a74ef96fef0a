"""pytest-chroma-compat: will your Chroma data and code survive a chromadb upgrade?

Importing this package never imports chromadb (nor numpy): every release runs
in its own environment, driven through a worker process.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public API: what the README and the docs use. Each name -> the module that defines it; the
# rest of the package is internal and may move. Loaded on first use, so that importing the package
# (which pytest does in every suite through the plugin) never imports chromadb, numpy or hypothesis.
PUBLIC = {
    "Release": "pytest_chroma_compat.engine.client",
    "ChromaCompatFailure": "pytest_chroma_compat.common.errors",
    "ChromaError": "pytest_chroma_compat.common.errors",
    "CompatError": "pytest_chroma_compat.common.errors",
    "WorkerCrashed": "pytest_chroma_compat.common.errors",
    "WorkerTimeout": "pytest_chroma_compat.common.errors",
    "install_chromadb": "pytest_chroma_compat.usercode.nox",
    "strategies": "pytest_chroma_compat.roundtrip.strategies",
}
__all__ = sorted(PUBLIC)

if TYPE_CHECKING:
    # `X as X`: re-exported for type checkers (the names are loaded lazily by __getattr__ below)
    from pytest_chroma_compat.common.errors import ChromaCompatFailure as ChromaCompatFailure
    from pytest_chroma_compat.common.errors import ChromaError as ChromaError
    from pytest_chroma_compat.common.errors import CompatError as CompatError
    from pytest_chroma_compat.common.errors import WorkerCrashed as WorkerCrashed
    from pytest_chroma_compat.common.errors import WorkerTimeout as WorkerTimeout
    from pytest_chroma_compat.engine.client import Release as Release
    from pytest_chroma_compat.roundtrip import strategies as strategies
    from pytest_chroma_compat.usercode.nox import install_chromadb as install_chromadb


def __getattr__(name: str) -> Any:
    """Lazy exports keep `import pytest_chroma_compat` cheap for every pytest run."""
    if name not in PUBLIC:
        raise AttributeError(f"module 'pytest_chroma_compat' has no attribute {name!r}")
    module = import_module(PUBLIC[name])
    return module if module.__name__.rpartition(".")[2] == name else getattr(module, name)
