"""Benchmark ingest + standardise end to end against pyarrow converting the same files.

Generates a data set with the project's generator (or reuses ``--landing``), then in one run:

1. **reference**: pyarrow alone reads every landing file of every declared source
   (``pyarrow.csv`` / ``pyarrow.json``) and writes it as Parquet: no typing of dates, no
   normalisation, no quarantine, no dedup, no Delta commit. A lower bound for the work.
   Malformed lines are skipped (CSV: ``invalid_row_handler``; JSON: a file that fails is
   re-read without the lines ``json.loads`` rejects).
2. **cdp**: ``run_ingest`` then ``run_standardize`` of every source into a fresh lakehouse.

Prints the machine (it may be shared: the load average is shown), records/s of each, the
ratio, and the peak memory of the driver plus its JVM and Python workers (proportional set
size, so pages shared by forked workers count once; sampled with psutil every 0.25 s).

Usage::

    .venv/bin/python bench/bench_ingest.py --customers 20000 --days 30
    .venv/bin/python bench/bench_ingest.py --landing data/landing     # existing files
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from _machine import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdp_spark.config import CdpConfig, SourceConfig, load_config
from cdp_spark.ingest import list_landing_files, run_ingest
from cdp_spark.pipeline import RunContext
from cdp_spark.standardize import run_standardize


def machine() -> str:
    cpu = cpu_model()
    mem = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}; "
        f"load average {load}"
    )


class PeakRss:
    """Samples the memory (PSS) of this process and its descendants (JVM, Python workers)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_total = 0
        self.peak_by_kind: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        total, by_kind = 0, {"python driver": 0, "jvm": 0, "python workers": 0}
        for proc in [me, *me.children(recursive=True)]:
            try:
                # PSS, not RSS: forked Python workers share pages with their daemon, and
                # summing their RSS would count those pages once per worker.
                rss = getattr(proc.memory_full_info(), "pss", 0) or proc.memory_info().rss
                name = proc.name()
            except psutil.Error:
                continue
            kind = (
                "python driver"
                if proc.pid == me.pid
                else ("jvm" if "java" in name else "python workers")
            )
            total += rss
            by_kind[kind] = by_kind.get(kind, 0) + rss
        self.peak_total = max(self.peak_total, total)
        for kind, rss in by_kind.items():
            self.peak_by_kind[kind] = max(self.peak_by_kind.get(kind, 0), rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v / 2**20:,.0f} MiB" for k, v in self.peak_by_kind.items())
        return f"{self.peak_total / 2**20:,.0f} MiB (peak of each: {parts})"


def cpu_seconds() -> float:
    """CPU time of this process and its descendants (JVM, Python workers), reaped ones too.

    Unlike wall time it barely depends on how busy a shared machine is.
    """
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


@contextmanager
def timed(label: str, out: dict[str, float]) -> Iterator[None]:
    began = time.perf_counter()
    yield
    out[label] = time.perf_counter() - began
    print(f"  {label}: {out[label]:.1f} s", flush=True)


# --- the pyarrow reference -------------------------------------------------------------------


def _read_csv(path: Path, source: SourceConfig) -> tuple[pa.Table, int]:
    skipped = 0

    def skip(_row: Any) -> str:
        nonlocal skipped
        skipped += 1
        return "skip"

    def read(data: Any, encoding: str) -> pa.Table:
        return pacsv.read_csv(
            data,
            read_options=pacsv.ReadOptions(encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter=source.delimiter, invalid_row_handler=skip),
            # Undecodable bytes would fail the file; keep them, as bronze keeps raw text.
            convert_options=pacsv.ConvertOptions(check_utf8=False),
        )

    try:
        return read(path, source.encoding), skipped
    except (pa.ArrowInvalid, UnicodeDecodeError):
        # A malformed row in a file of another encoding (a cp1251 export): pyarrow cannot
        # hand the row to the skip handler as text. Decode the file leniently and read again.
        skipped = 0
        text = path.read_bytes().decode(source.encoding, errors="replace")
        return read(pa.BufferReader(text.encode()), "utf8"), skipped


def _read_jsonl(path: Path) -> tuple[pa.Table, int]:
    try:
        return pajson.read_json(path), 0
    except pa.ArrowInvalid:
        good, bad = [], 0
        for line in path.read_bytes().splitlines():
            try:
                if isinstance(json.loads(line), dict):
                    good.append(line)
                    continue
            except ValueError:
                pass
            bad += 1
        return pajson.read_json(pa.BufferReader(b"\n".join(good) + b"\n")), bad


def pyarrow_reference(cfg: CdpConfig, out: Path) -> tuple[int, int]:
    """Convert every landing file to Parquet with pyarrow; returns (rows, rows skipped)."""
    rows = skipped = 0
    for name, source in cfg.sources.items():
        for f in list_landing_files(cfg.landing_dir, source):
            path = Path(f.fs_path)
            if source.format == "csv":
                table, bad = _read_csv(path, source)
            elif source.format == "jsonl":
                table, bad = _read_jsonl(path)
            else:
                table, bad = pq.read_table(path), 0
            target = out / name / (path.stem + ".parquet")
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target)
            rows += table.num_rows
            skipped += bad
    return rows, skipped


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--landing", type=Path, default=None, help="use these files, no generate")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "ingest")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--driver-memory", default=None, help="e.g. 10g (default: the profile's)")
    parser.add_argument("--keep", action="store_true", help="keep the output folder")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="standardise what the lakehouse in --out still has pending (after a failed run);"
        " no reference, no ingest",
    )
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    if args.resume:
        return resume(args)
    shutil.rmtree(args.out / "lake", ignore_errors=True)
    shutil.rmtree(args.out / "reference", ignore_errors=True)
    seconds: dict[str, float] = {}
    landing = args.landing
    if landing is None:
        from cdp_spark.generate import generate

        landing = args.out / "landing"
        print(f"generating {args.customers:,} customers x {args.days} days -> {landing}")
        with timed("generate", seconds):
            summary = generate(
                landing,
                customers=args.customers,
                days=args.days,
                seed=args.seed,
                workers=os.cpu_count() or 1,
            )
        print(summary)
    size = sum(p.stat().st_size for p in Path(landing).rglob("*") if p.is_file())
    cfg = load_config(
        "local",
        overrides={
            "storage.root": str(args.out / "lake"),
            "paths.landing": str(landing),
            "spark.master": args.master,
            **({"spark.driver_memory": args.driver_memory} if args.driver_memory else {}),
        },
    )
    print(f"landing: {landing} ({size / 2**20:,.0f} MiB, {len(cfg.sources)} sources)")

    print("reference (pyarrow -> Parquet):")
    cpu0 = time.process_time()
    with timed("reference", seconds):
        ref_rows, ref_skipped = pyarrow_reference(cfg, args.out / "reference")
    ref_cpu = time.process_time() - cpu0
    # Only its time is needed: at 1M customers the copy is gigabytes of disk.
    shutil.rmtree(args.out / "reference", ignore_errors=True)

    print("cdp (ingest + standardize):")
    with PeakRss() as rss:
        with timed("session", seconds):
            ctx = RunContext.create(cfg, run_date=date.today(), progress=_quiet())
        cpu0 = cpu_seconds()
        with timed("ingest", seconds):
            ingest = run_ingest(ctx)
        with timed("standardize", seconds):
            std = run_standardize(ctx)
        cdp_cpu = cpu_seconds() - cpu0
        ctx.spark.stop()

    read, bronze, quarantined = (ingest.figures[k] for k in ("read", "bronze", "quarantined"))
    silver_out = std.figures["rows_out"]
    e2e = seconds["ingest"] + seconds["standardize"]
    print(json.dumps({"ingest": ingest.figures, "standardize": std.figures}, indent=1))
    print(
        f"RESULT records={read} bronze={bronze} quarantined={quarantined} silver_out={silver_out}"
        f" ingest_s={seconds['ingest']:.1f} standardize_s={seconds['standardize']:.1f}"
        f" cdp_records_per_s={read / e2e:,.0f}"
        f" ingest_records_per_s={read / seconds['ingest']:,.0f}"
        f" standardize_records_per_s={bronze / seconds['standardize']:,.0f}"
    )
    print(
        f"REFERENCE pyarrow rows={ref_rows} skipped={ref_skipped} s={seconds['reference']:.1f}"
        f" records_per_s={(ref_rows + ref_skipped) / seconds['reference']:,.0f}"
        f" ratio_cdp_over_pyarrow={e2e / seconds['reference']:.1f}x"
    )
    print(
        f"CPU cdp={cdp_cpu:.0f}s ({cdp_cpu / read * 1e6:.0f} us/record, driver+JVM+workers)"
        f" pyarrow={ref_cpu:.1f}s ({ref_cpu / (ref_rows + ref_skipped) * 1e6:.1f} us/record)"
        f" cpu_ratio={cdp_cpu / ref_cpu:.1f}x"
    )
    print(f"PEAK MEMORY (PSS) driver+JVM+workers: {rss.describe()}")
    print(f"machine at end: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if not args.keep:
        shutil.rmtree(args.out / "lake", ignore_errors=True)
        shutil.rmtree(args.out / "reference", ignore_errors=True)
        if args.landing is None:
            shutil.rmtree(args.out / "landing", ignore_errors=True)
    return 0


def resume(args: argparse.Namespace) -> int:
    """Standardise the pending bronze batches of an existing run's lakehouse, timed alone."""
    if not (args.out / "lake" / "bronze").is_dir():
        print(f"--resume: no lakehouse with bronze tables under {args.out / 'lake'}")
        return 2
    cfg = load_config(
        "local",
        overrides={
            "storage.root": str(args.out / "lake"),
            "spark.master": args.master,
            **({"spark.driver_memory": args.driver_memory} if args.driver_memory else {}),
        },
    )
    seconds: dict[str, float] = {}
    with PeakRss() as rss:
        with timed("session", seconds):
            ctx = RunContext.create(cfg, run_date=date.today(), progress=_quiet())
        cpu0 = cpu_seconds()
        with timed("standardize", seconds):
            std = run_standardize(ctx)
        cdp_cpu = cpu_seconds() - cpu0
        ctx.spark.stop()
    print(json.dumps(std.figures, indent=1))
    print(
        f"RESUMED standardize_s={seconds['standardize']:.1f} rows_in={std.figures.get('rows_in')}"
        f" rows_out={std.figures.get('rows_out')} cpu_s={cdp_cpu:.0f}"
    )
    print(f"PEAK MEMORY (PSS) driver+JVM+workers: {rss.describe()}")
    print(f"machine at end: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


def _quiet() -> Callable[[str], None]:
    last = [time.perf_counter()]

    def progress(message: str) -> None:
        # Batch starts only, with the time since the previous one: enough to see where it goes.
        now = time.perf_counter()
        print(f"    {message}  (+{now - last[0]:.1f} s)", flush=True)
        last[0] = now

    return progress


if __name__ == "__main__":
    sys.exit(main())
