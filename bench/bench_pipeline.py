"""Benchmark the whole pipeline at scale: a backfill, then one daily run, as a deployment sees it.

Takes a data set written by ``cdp generate`` (``--data``), and in a work folder of its own:

1. **backfill**: a landing folder holding every file dated before ``--daily-day`` (symlinks, so
   nothing is copied), then every stage of ``cdp run all`` with the day before as run date
   (the run date is the last day processed, as the DAG's ``{{ ds }}``);
2. **daily**: the files of ``--daily-day`` land (plus any late files dated that day), and the
   stages of the ``cdp_daily`` DAG run with that day as run date: the incremental run a
   scheduler makes every morning;
3. **identity accuracy**: ``cdp identity-eval``'s pairwise scores against ``_truth/records.csv``.

With ``--lakehouse`` it instead times ``--stages`` on a lakehouse that already holds their
inputs (e.g. the silver that ``bench_ingest.py --keep`` left at 1M customers), writing into it.

Every stage runs in this process on one Spark session (as ``cdp run`` does; the Airflow DAG adds
one spark-submit start-up per task, measured apart). For each stage it prints wall time, CPU
time of the process tree (driver, JVM, Python workers) and its peak memory (PSS).

Usage::

    .venv/bin/python bench/bench_pipeline.py --data /work/bench-data/c100k_d90 \\
        --work /tmp/bench_pipeline --daily-day 2026-03-31
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psutil
from _machine import machine_line
from bench_ingest import PeakRss, cpu_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdp_spark.config import load_config
from cdp_spark.pipeline import RunContext, run_stage, stage_names

DAILY_STAGES = [
    "ingest",
    "standardize",
    "identity",
    "profiles",
    "features",
    "score",
    "segments",
    "publish",
]
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def link_landing(data: Path, landing: Path, *, before: date | None, on: date | None) -> int:
    """Symlink the generated files dated before ``before`` (or on ``on``) into ``landing``."""
    linked = 0
    for src in sorted(data.rglob("*")):
        if not src.is_file() or "_truth" in src.parts:
            continue
        m = _DATE.search(src.name)
        day = date.fromisoformat(m.group(1)) if m else None
        # Undated files (the catalogue, the stores) belong to the backfill.
        wanted = (day is None or day < before) if before else (day is not None and day == on)
        if not wanted:
            continue
        dst = landing / src.relative_to(data)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            dst.symlink_to(src.resolve())
            linked += 1
    return linked


def run_phase(
    label: str, stages: list[str], ctx: RunContext
) -> list[tuple[str, float, float, int]]:
    rows = []
    print(f"\n== {label} (run date {ctx.run_date}); load average {os.getloadavg()[0]:.1f}")
    for name in stages:
        cpu0 = cpu_seconds()
        with PeakRss(interval=1.0) as mem:
            report = run_stage(name, ctx)
        cpu = cpu_seconds() - cpu0
        rows.append((name, report.seconds, cpu, mem.peak_total))
        print(
            f"  {name:<12} {report.status:<8} {report.seconds:8.1f} s wall {cpu:8.1f} s CPU "
            f"peak {mem.peak_total / 2**20:7,.0f} MiB",
            flush=True,
        )
        if report.figures:
            print(f"    figures: {report.figures}", flush=True)
    total = sum(r[1] for r in rows)
    print(f"  {'total':<21} {total:8.1f} s wall {sum(r[2] for r in rows):8.1f} s CPU")
    return rows


def stages_only(args: argparse.Namespace) -> int:
    """Time ``args.stages`` on an existing lakehouse."""
    from cdp_spark.session import build_session

    overrides: dict[str, Any] = {"storage.root": str(args.lakehouse)}
    if args.mlflow_uri:
        overrides["mlflow.tracking_uri"] = args.mlflow_uri
    cfg = load_config(overrides=overrides)
    began = time.perf_counter()
    spark = build_session(cfg)
    print(f"spark session: {time.perf_counter() - began:.1f} s")
    ctx = RunContext.create(
        cfg, run_date=args.run_date, spark=spark, progress=lambda m: print(f"    {m}", flush=True)
    )
    run_phase(f"stages on {args.lakehouse}", args.stages, ctx)
    spark.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, help="a `cdp generate` output folder")
    parser.add_argument("--work", type=Path, help="scratch folder (emptied)")
    parser.add_argument(
        "--daily-day",
        type=date.fromisoformat,
        help="the day held back for the daily run (YYYY-MM-DD)",
    )
    parser.add_argument("--lakehouse", type=Path, help="time --stages on this lakehouse instead")
    parser.add_argument("--run-date", type=date.fromisoformat, help="with --lakehouse")
    parser.add_argument("--stages", nargs="+", default=[], help="with --lakehouse")
    parser.add_argument("--mlflow-uri", help="with --lakehouse: where the champion models are")
    parser.add_argument("--backfill-stages", nargs="+", default=["all"])
    parser.add_argument("--daily-stages", nargs="+", default=DAILY_STAGES)
    parser.add_argument("--skip-eval", action="store_true", help="no identity accuracy")
    parser.add_argument("--keep", action="store_true", help="reuse --work if it exists")
    args = parser.parse_args(argv)

    print(machine_line())
    if args.lakehouse:
        return stages_only(args)
    if not (args.data and args.work and args.daily_day):
        parser.error("--data, --work and --daily-day are required (or --lakehouse)")
    work: Path = args.work
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    landing = work / "landing"
    overrides: dict[str, Any] = {
        "storage.root": str(work / "lakehouse"),
        "paths.landing": str(landing),
        "paths.exports": str(work / "exports"),
        "mlflow.tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
    }
    cfg = load_config(overrides=overrides)
    n = link_landing(args.data, landing, before=args.daily_day, on=None)
    print(f"backfill: {n} files linked from {args.data} (dated before {args.daily_day})")

    from cdp_spark.session import build_session

    began = time.perf_counter()
    spark = build_session(cfg)
    print(f"spark session: {time.perf_counter() - began:.1f} s")
    ctx = RunContext.create(
        cfg,
        run_date=args.daily_day - timedelta(days=1),
        spark=spark,
        progress=lambda m: print(f"    {m}", flush=True),
    )
    backfill = stage_names() if args.backfill_stages == ["all"] else args.backfill_stages
    run_phase("backfill", backfill, ctx)

    n = link_landing(args.data, landing, before=None, on=args.daily_day)
    print(f"\ndaily: {n} files of {args.daily_day} landed")
    ctx = RunContext.create(
        cfg,
        run_date=args.daily_day,
        spark=spark,
        progress=lambda m: print(f"    {m}", flush=True),
    )
    run_phase("daily", args.daily_stages, ctx)

    if not args.skip_eval:
        from cdp_spark.identity.metrics import evaluate

        began = time.perf_counter()
        scores = evaluate(spark, ctx.lake, str(args.data / "_truth" / "records.csv"))
        print(f"\n== identity accuracy against the truth ({time.perf_counter() - began:.0f} s)")
        table: dict[str, dict[str, float]] = {}
        for metric, dimension, value in scores:
            table.setdefault(dimension, {})[metric] = value
        print(f"  {'items':<28} {'n':>10} {'precision':>9} {'recall':>7} {'over':>6} {'under':>6}")
        for dim, m in sorted(table.items()):
            print(
                f"  {dim:<28} {int(m['items']):>10,} {m['precision']:9.4f} {m['recall']:7.4f} "
                f"{m['over_merged_clusters']:6.0f} {m['under_merged_persons']:6.0f}"
            )
    print(f"\npeak system memory in use: {psutil.virtual_memory().percent:.0f}% at the end")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
