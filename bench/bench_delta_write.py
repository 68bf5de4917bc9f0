"""Benchmark: writing a Delta table with the delta-rs engine vs writing plain Parquet with Spark.

The same cached DataFrame (``--rows`` rows, 10 columns: longs, ints, doubles, strings, a
boolean, a timestamp and a date) is written ``--runs`` times each way, alternating, after one
untimed warm-up of each. Both paths write the same Parquet files with the same codec; the Delta
path adds what the two-phase commit costs (listing the new files, reading their footers,
one commit to the log). Target: Delta / Parquet <= 1.3x.

Run it (10M rows takes a few minutes on 2 cores):

    .venv/bin/python bench/bench_delta_write.py --rows 10000000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import deltalake
import pyarrow
import pyspark
from _machine import cpu_model, ram_gib
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdp_spark.session import REQUIRED_CONF
from cdp_spark.storage import _files
from cdp_spark.storage.deltars import DeltaRsLakehouse

EPOCH_2026 = 1_767_225_600  # 2026-01-01T00:00:00Z


def build_input(spark: SparkSession, rows: int) -> DataFrame:
    """10 columns computed from the row number (deterministic, no Python UDFs)."""
    countries = F.array(*[F.lit(c) for c in ("RU", "KZ", "BY", "AM", "UZ")])
    ts = F.timestamp_seconds(F.lit(EPOCH_2026) + (F.col("id") * 37) % 31_536_000)
    return spark.range(rows).select(
        F.col("id").alias("order_id"),
        (F.col("id") % 1_000_003).alias("customer_id"),
        ((F.col("id") * 7_919) % 100_000 / 100.0).alias("amount"),
        (F.col("id") % 7 + 1).cast("int").alias("quantity"),
        (F.hash("id") % 1000 / 1000.0).alias("score"),
        F.concat(
            F.lit("user"), (F.col("id") % 1_000_003).cast("string"), F.lit("@example.com")
        ).alias("email"),
        F.element_at(countries, (F.col("id") % 5 + 1).cast("int")).alias("country"),
        (F.col("id") % 3 == 0).alias("is_member"),
        ts.alias("ordered_at"),
        F.to_date(ts).alias("order_date"),
    )


def folder_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, names in os.walk(path)
        for f in names
        if f.endswith(".parquet")
    )


def machine(load: tuple[float, float, float]) -> list[str]:
    model, ram = cpu_model(), ram_gib()
    return [
        f"machine: {os.cpu_count()} cores, {ram:.1f} GiB RAM, {model}",
        f"load average (1/5/15 min) when the timed runs began: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"python {platform.python_version()}, pyspark {pyspark.__version__}, "
        f"deltalake {deltalake.__version__}, pyarrow {pyarrow.__version__}, "
        f"{platform.system()} {platform.release()}",
    ]


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--driver-memory", default="8g")
    args = parser.parse_args(argv)

    builder = (
        SparkSession.builder.master("local[*]")
        .appName("bench-delta-write")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.sql.shuffle.partitions", str(os.cpu_count() or 2))
    )
    for key, value in REQUIRED_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="bench-delta-"))
    scratch.mkdir(parents=True, exist_ok=True)

    df = build_input(spark, args.rows).persist(StorageLevel.MEMORY_AND_DISK)
    materialise = timed(df.count)  # time the writes, not the generation
    lake = DeltaRsLakehouse(spark, str(scratch / "lake"))

    # Phase timings of the Delta path: the Spark write, the footers, the commit.
    phases: dict[str, list[float]] = {"write": [], "footers": [], "commit": []}

    def timing(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                phases[phase].append(time.perf_counter() - start)

        return wrapper

    lake._write = timing("write", lake._write)  # type: ignore[method-assign]
    lake._commit = timing("commit", lake._commit)  # type: ignore[method-assign]
    _files.build_add_actions = timing("footers", _files.build_add_actions)

    def write_parquet(run: str) -> None:
        df.write.mode("overwrite").parquet(str(scratch / "parquet" / run))

    def write_delta(run: str) -> None:
        table = f"bronze.bench_{run}"
        lake.create(table, df.schema)
        lake.append(table, df)

    results: dict[str, list[float]] = {"parquet": [], "delta": []}
    write_parquet("warmup")
    write_delta("warmup")
    for times in phases.values():
        times.clear()
    load_at_start = os.getloadavg()
    for run in range(args.runs):
        # Alternate which path goes first, so a drift in machine load hits both alike.
        order = ["parquet", "delta"] if run % 2 == 0 else ["delta", "parquet"]
        for name in order:
            write_path = write_parquet if name == "parquet" else write_delta
            results[name].append(timed(partial(write_path, f"run{run}")))

    parquet_bytes = folder_bytes(str(scratch / "parquet" / "run0"))
    delta_bytes = folder_bytes(lake.path("bronze.bench_run0"))
    print(
        f"bench_delta_write: {args.rows:,} rows x {len(df.columns)} columns, {args.runs} runs each"
    )
    for line in machine(load_at_start):
        print(line)
    partitions = df.rdd.getNumPartitions()
    print(f"input materialised (cached) in {materialise:.1f} s, {partitions} partitions")
    print(
        f"{'path':<26}{'median s':>9}{'min s':>8}{'rows/s':>12}{'MB/s':>8}{'MB written':>12}"
        "  runs (s)"
    )
    for name, label, size in (
        ("parquet", "Spark Parquet", parquet_bytes),
        ("delta", "Delta (delta-rs engine)", delta_bytes),
    ):
        median = statistics.median(results[name])
        runs = " ".join(f"{t:.2f}" for t in results[name])
        print(
            f"{label:<26}{median:>9.2f}{min(results[name]):>8.2f}{args.rows / median:>12,.0f}"
            f"{size / 1e6 / median:>8.1f}{size / 1e6:>12.1f}  {runs}"
        )
    ratio = statistics.median(results["delta"]) / statistics.median(results["parquet"])
    spark_write = [w - f for w, f in zip(phases["write"], phases["footers"], strict=True)]
    print(
        f"Delta path phases (median): Spark write {statistics.median(spark_write):.2f} s, "
        f"list + footers {statistics.median(phases['footers']):.3f} s, "
        f"commit {statistics.median(phases['commit']):.3f} s"
    )
    best = min(results["delta"]) / min(results["parquet"])
    print(
        f"ratio Delta / Parquet: {ratio:.2f}x on medians, {best:.2f}x on best runs (target <= 1.3x)"
    )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    df.unpersist()
    spark.stop()
    if not args.dir:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
