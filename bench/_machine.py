"""What every benchmark prints about the machine it ran on (imported by the bench scripts)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo, or what ``platform`` knows elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def ram_gib() -> float:
    """Physical memory in GiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``"6.21 7.02 8.90"``."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line() -> str:
    """One line naming the machine and how busy it is, printed first by the bench scripts."""
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {ram_gib():.0f} GiB RAM; "
        f"load average {load_average()}"
    )
