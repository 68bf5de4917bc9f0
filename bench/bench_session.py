"""Spark session start-up time with the platform's factory (median of N cold starts).

Each start runs in a fresh Python process, because a JVM, once started, is reused by
getOrCreate(). The reference in the same run is a bare `SparkSession.builder.getOrCreate()`
with the same master, so the factory's own cost can be read off the difference.

    python bench/bench_session.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from _machine import cpu_model, ram_gib

ROOT = Path(__file__).resolve().parent.parent

FACTORY = """
import time, json
t = time.perf_counter()
from cdp_spark.config import load_config
from cdp_spark.session import build_session, detect_engines
cfg = load_config("local", overrides={"spark.master": "local[2]"})
spark = build_session(cfg)
spark.range(1).count()
started = time.perf_counter() - t
report = detect_engines(spark, cfg)
print(json.dumps({"seconds": started, "storage": report.storage}))
"""

BARE = """
import time, json
t = time.perf_counter()
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").getOrCreate()
spark.range(1).count()
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def machine() -> str:
    cpu, mem_kb = cpu_model(), ram_gib() * 1024 * 1024
    import pyspark

    return (
        f"{os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, {cpu}; "
        f"Python {platform.python_version()}, PySpark {pyspark.__version__}, {platform.platform()}"
    )


def time_once(code: str) -> float:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    last = [line for line in out.splitlines() if line.startswith("{")][-1]
    return float(json.loads(last)["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    factory, bare = [], []
    for i in range(args.runs):
        # Interleave the two so that machine noise hits both alike.
        factory.append(time_once(FACTORY))
        bare.append(time_once(BARE))
        print(f"run {i + 1}: factory {factory[-1]:.2f}s, bare builder {bare[-1]:.2f}s")
    f_med, b_med = statistics.median(factory), statistics.median(bare)
    print(
        f"session start-up, median of {args.runs}: factory {f_med:.2f}s, bare {b_med:.2f}s, "
        f"ratio {f_med / b_med:.2f}x"
    )


if __name__ == "__main__":
    main()
