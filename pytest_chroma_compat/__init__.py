"""pytest-chroma-compat: will your Chroma data and code survive a chromadb upgrade?

Importing this package never imports chromadb (nor numpy): every release runs
in its own environment, driven through a worker process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Release", "ChromaError", "CompatError", "WorkerCrashed", "WorkerTimeout"]

if TYPE_CHECKING:
    from .client import Release
    from .errors import ChromaError, CompatError, WorkerCrashed, WorkerTimeout


def __getattr__(name: str) -> Any:
    """Lazy exports keep `import pytest_chroma_compat` cheap for every pytest run."""
    if name == "Release":
        from .client import Release

        return Release
    if name in ("ChromaError", "CompatError", "WorkerCrashed", "WorkerTimeout"):
        from . import errors

        return getattr(errors, name)
    raise AttributeError(name)
