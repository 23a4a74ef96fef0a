"""One family of errors, each knowing the exit code the CLI gives it.

Exit codes (documented in the README): 0 fine, 1 the upgrade is unsafe,
2 the harness could not do what was asked (bad input, install failure),
3 a bug in the harness itself.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_UNSAFE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class CompatError(Exception):
    """Anything the user can fix or must know; printed as one line."""

    exit_code = EXIT_BAD_INPUT


class HarnessFault(CompatError):
    """The harness, its environments, its limits or the machine failed, not a release on the user's data.

    Why a class of its own: the verdict is the product, so code that turns a
    release's misbehaviour into "not safe" (exit 1) must let these through to
    "could not validate" (exit 2), whatever ``except`` they pass on the way.
    The message names the cause and the fix.
    """


class UnknownRelease(CompatError):
    pass


class YankedRelease(CompatError):
    pass


class InstallFailed(HarnessFault):
    pass


class CorruptEnvironment(HarnessFault):
    pass


class WorkDirUnusable(HarnessFault):
    """A directory the harness must write to (cache, --workdir, a report's folder) cannot be written."""


class WorkerError(CompatError):
    """The worker process itself failed (not chromadb inside it)."""

    def __init__(self, message: str, *, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


class WorkerCrashed(WorkerError):
    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str = "") -> None:
        super().__init__(message, stderr_tail=stderr_tail)
        self.returncode = returncode


class WorkerTimeout(HarnessFault):
    """A call outlived the limit the user gave (``--timeout``): a limit of ours, not a verdict.

    Deliberately not a :class:`WorkerError`, so the handlers that record a
    release's failures as findings do not catch it.
    """

    def __init__(self, message: str, *, seconds: float, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.seconds = seconds


class WorkerKilled(HarnessFault):
    """A worker killed from outside (SIGKILL we did not send: the kernel's OOM killer, an operator)."""

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class ChromaError(Exception):
    """An exception raised by chromadb inside a worker, carried across the pipe.

    ``base_exception`` is true for BaseExceptions such as the 1.x Rust core's
    ``pyo3_runtime.PanicException``: a panic, not an ordinary error.
    """

    worker: Any  # the engine.client Worker that raised it: set there, read by Client/Release (no default)

    def __init__(self, op: str, error: dict) -> None:
        self.op = op
        self.type: str = error.get("type", "Exception")
        self.module: str = error.get("module", "")
        self.message: str = error.get("message", "")
        self.traceback: str = error.get("traceback", "")
        self.base_exception: bool = bool(error.get("base_exception"))
        super().__init__(f"{self.qualified_type}: {self.message}")

    @property
    def qualified_type(self) -> str:
        return f"{self.module}.{self.type}" if self.module and self.module != "builtins" else self.type


class ChromaCompatFailure(AssertionError):
    """The one failure type of the plugin's checks: an upgrade that does not hold.

    Its message has sections, like pytest-alembic's: the pair, the migration
    path, the invariant or contract, the evidence, and how to reproduce it.
    """

    def __init__(
        self, *, pair: tuple[str, str], path: str, check: str, evidence: str = "", reproduce: str = ""
    ) -> None:
        self.pair, self.path, self.check = pair, path, check
        self.evidence, self.reproduce = evidence, reproduce
        sections = [
            f"pair: chromadb {pair[0]} -> {pair[1]}",
            f"path: {path}",
            f"check: {check}",
        ]
        if evidence:
            sections.append("evidence:\n" + "\n".join("  " + ln for ln in evidence.splitlines()))
        if reproduce:
            sections.append(f"reproduce: {reproduce}")
        super().__init__("\n".join(sections))
