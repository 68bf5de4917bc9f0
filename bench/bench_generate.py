"""Benchmark the synthetic data generator: records per second and peak memory.

Usage::

    .venv/bin/python bench/bench_generate.py                       # 100k customers, 90 days
    .venv/bin/python bench/bench_generate.py --customers 1000000 --days 80 --workers 2
    .venv/bin/python bench/bench_generate.py --keep --out /tmp/landing   # keep the files

Prints the machine (CPU, cores, memory, load when starting: the machine may be shared), the
size, wall time, records/s overall and for web events, bytes written and the peak resident
memory of the parent and of the largest worker process. The output folder is deleted afterwards
unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

from _machine import cpu_model, ram_gib

from cdp_spark.generate import generate


def _machine() -> str:
    cpu = cpu_model()
    mem = ram_gib()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average at start {load}"
    )


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "generate")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    print(f"machine: {_machine()}")
    print(
        f"size: {args.customers:,} customers x {args.days} days, seed {args.seed}, "
        f"{args.workers} worker(s) -> {args.out}"
    )
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            last[0] = now
            print(f"  {stage}: {done}/{total}  ({now - began:.0f} s)", flush=True)

    began = time.perf_counter()
    summary = generate(
        args.out,
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        workers=args.workers,
        progress=progress,
    )
    seconds = time.perf_counter() - began
    size = _size(args.out)
    # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN reports the largest finished child.
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
    print(summary)
    total = summary.total_records
    web = summary.records["web_events"]
    print(
        f"RESULT customers={args.customers} days={args.days} workers={args.workers} "
        f"records={total} web_events={web} seconds={seconds:.1f} "
        f"records_per_s={total / seconds:,.0f} web_events_per_s={web / seconds:,.0f} "
        f"bytes={size / 2**30:.2f}GiB truth_rows={summary.truth_rows} "
        f"peak_rss_parent={self_rss:.0f}MiB "
        + (f"peak_rss_worker={child_rss:.0f}MiB" if args.workers > 1 else "(no workers)")
    )
    cpu = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = sum(r.ru_utime + r.ru_stime for r in cpu)
    # CPU time per record does not depend on how busy a shared machine is, wall time does.
    print(f"CPU {cpu_s:.1f} s = {cpu_s / total * 1e6:.1f} us per record (parent + workers)")
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
