"""What a benchmark ran on and how busy the machine was meanwhile.

Why both a load average and the other processes' CPU: the page must show the
load (os.getloadavg before and after), but our own comparison raises the load
by itself, so the decision to rerun looks at the CPU that *other* processes
used while it ran (validate_scale.Noise: the machine's busy time minus our own
and our reaped children's).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _uv_version() -> str | None:
    try:
        from uv import find_uv_bin

        uv = find_uv_bin()
    except Exception:
        uv = shutil.which("uv")
    if not uv:
        return None
    out = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.split()
    return out[1] if len(out) > 1 else None


def describe() -> dict:
    """The machine, as the page prints it."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uv": _uv_version(),
        "date": now(),
    }


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class Watch:
    """Load before and after one comparison, and the cores other processes used during it."""

    def __init__(self) -> None:
        from validate_scale import Noise  # benchmarks/ is on the path: run.py's own folder

        self.before = loadavg()
        self.started = time.perf_counter()
        self.noise = Noise()

    def result(self) -> dict:
        other = self.noise.other_share()
        return {
            "load_before": self.before,
            "load_after": loadavg(),
            "other_processes_cores": None if other is None else round(other, 2),
            "seconds": round(time.perf_counter() - self.started, 1),
        }
