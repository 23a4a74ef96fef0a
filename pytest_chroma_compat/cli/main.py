"""The ``chroma-compat`` command.

Imports stay inside the handlers so ``chroma-compat env ensure`` on a warm
cache costs a process start and a few stats, not numpy and Hypothesis.
Exit codes: 0 fine, 1 the upgrade is unsafe, 2 bad input or could not run,
3 a bug in the harness (rerun with --debug for the traceback).
"""

from __future__ import annotations

import argparse
import atexit
import errno
import os
import sys
import threading
from collections.abc import Sequence
from typing import Callable

from pytest_chroma_compat.cli.verb_args import say as _say
from pytest_chroma_compat.cli.verb_args import versions as _versions  # noqa: F401  (used by tests and scenarios)
from pytest_chroma_compat.common.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, CompatError
from pytest_chroma_compat.contracts.cli import register as register_contracts
from pytest_chroma_compat.contracts.cli import register_sweep
from pytest_chroma_compat.engine.cli import register as register_envs
from pytest_chroma_compat.roundtrip.cli import register as register_round_trip
from pytest_chroma_compat.roundtrip.matrix.cli import register as register_matrix
from pytest_chroma_compat.servers.cli import register as register_servers
from pytest_chroma_compat.snapshot.cli import register as register_validate
from pytest_chroma_compat.transfer.cli import register as register_migrate
from pytest_chroma_compat.usercode.cli import register as register_user_runs
from pytest_chroma_compat.usercode.scan.cli import register as register_scan

#: Every verb, in the order `--help` lists them: each capability's ``register`` adds its subparsers
#: and handlers (stdlib and errors only at import time; the work is imported when a verb runs).
VERBS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    register_envs,  # env (ensure, list, prune), releases
    register_sweep,  # sweep
    register_round_trip,  # check, replay
    register_matrix,  # matrix: plan, shard, merge
    register_contracts,  # contracts, crossed
    register_validate,  # validate
    register_servers,  # serve, skew
    register_migrate,  # migrate
    register_user_runs,  # run, bisect
    register_scan,  # scan
)


# -- wiring ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chroma-compat", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    for register in VERBS:
        register(sub)
    return parser


#: errors that are the machine's answer, not a bug of ours: a full disk or quota, a read-only filesystem
_MACHINE_REFUSALS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. SIGINT, SIGTERM and SIGHUP unwind through every clean-up path, kill
    every process the command started (common/interrupts.py), and exit 128 + the signal's number."""
    from pytest_chroma_compat.common import interrupts

    with interrupts.handling():
        try:
            return _run(argv)
        finally:
            # workers stopped in the background (``close(wait=False)``) are reaped here, while a second
            # signal still only stops children: once the handlers are gone it would kill us mid-reap
            interrupts.hold()
            _reap_workers()


def entry() -> None:
    """The ``chroma-compat`` program (console script and ``python -m``): :func:`main`, then exit with its
    code. A signal that lands after the outcome was told, while the interpreter exits (an impatient
    second Ctrl-C or SIGTERM), ends the exit with that same code instead of killing us with -15."""
    from pytest_chroma_compat.common import interrupts

    code = main()
    interrupts.exit_on_signal(code)
    # the interpreter's own exit sets the default handlers back before tearing down its modules (tens of
    # ms): a signal in that window killed us with -15 after a clean run. Exit as it would, minus that.
    # as the interpreter would: non-daemon threads joined (a pool's threads told to finish), then atexit
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe: nothing more to tell
            pass
    os._exit(code)


def _reap_workers() -> None:
    client = sys.modules.get("pytest_chroma_compat.engine.client")  # never imported just for this
    if client is not None:
        client.close_all()


def _run(argv: Sequence[str] | None) -> int:
    """The command, inside :func:`main`'s signal handling."""
    from pytest_chroma_compat.common import interrupts

    args = argparse.Namespace(debug=False)
    try:
        try:
            args = build_parser().parse_args(argv)
            if args.command == "validate":  # copies of killed runs are hundreds of MB: drop them first
                try:
                    from pytest_chroma_compat.engine import leftovers

                    leftovers.sweep(leftovers.cache_roots(create=False))
                except Exception:  # noqa: BLE001 - a best effort; `env prune` reports what it cannot
                    pass
            return int(args.handler(args) or 0)
        finally:
            interrupts.hold()  # a signal from here on stops children only: the outcome is being told
    except interrupts.Interrupted as exc:
        interrupts.kill_all()
        _say(f"chroma-compat: interrupted ({exc.name}); stopped its processes and removed its private copies")
        return exc.exit_code
    except CompatError as exc:
        if args.debug:
            raise
        _say(f"chroma-compat: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        interrupts.kill_all()
        _say("chroma-compat: interrupted (SIGINT); stopped its processes and removed its private copies")
        return 130
    except BrokenPipeError:  # `chroma-compat ... | head` closed the pipe: not an error
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:
        if args.debug:
            raise
        if exc.errno in _MACHINE_REFUSALS:  # the machine refused a write (a report to a full disk): not our bug
            where = f" ({exc.filename})" if exc.filename else ""
            _say(
                f"chroma-compat: error: {exc.strerror}{where} while writing an output; free space or choose "
                "another place, then run the command again"
            )
            return EXIT_BAD_INPUT
        _say(f"chroma-compat: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return EXIT_INTERNAL
    except Exception as exc:  # a bug of ours: one line, the traceback on --debug
        if args.debug:
            raise
        _say(f"chroma-compat: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return EXIT_INTERNAL


if __name__ == "__main__":
    entry()
