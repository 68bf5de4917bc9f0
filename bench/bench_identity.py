"""Benchmark of identity resolution: accuracy against the generator's truth, full vs incremental.

Works on a copy of a lakehouse whose silver tables are built (``make demo`` or ``cdp run
ingest standardize``); the original is never written.

1. **Full run** on 99% of the records: a share ``--new-share`` (1%) of every source's silver
   records, picked by a hash of the record id, is held back.
2. **Incremental run**: the held-back records come back as a new silver batch and the stage
   resolves them (only them and the persons they touch).
3. **Reference full run** on a copy of the state after step 1 with all records: its wall
   time is the cost the incremental run is compared with, and its clusters must equal the
   incremental run's. The script prints the records grouped differently and the records whose
   ``person_id`` differs (both runs start from step 1's ids). A value found shared stays
   shared until a full run (docs/identity.md), so a few differences are expected.
4. **Accuracy** of the final clusters against ``_truth/records.csv`` (pairwise precision,
   recall, F1, over/under-merges per source; definitions in docs/identity.md).

    .venv/bin/python bench/bench_identity.py --lakehouse lakehouse \
        --truth data/landing/_truth/records.csv --work /tmp/bench_identity

``--save-state DIR`` keeps a copy of the state after step 1; ``--from-state DIR`` starts from
it and measures step 2 alone (for trying a change to the incremental path in minutes). The
progress lines carry the seconds since start, so the cost of each step can be read off.

Wall times on a shared machine vary with its load: the script prints CPU seconds of the driver
and the load average next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model, ram_gib

from cdp_spark.caching import release_local_blocks
from cdp_spark.config import load_config
from cdp_spark.identity.graph import record_id_column, silver_record_table
from cdp_spark.identity.metrics import evaluate
from cdp_spark.identity.stage import run_identity
from cdp_spark.identity.tables import ALL_TABLES, CLUSTERS_TABLE
from cdp_spark.pipeline import RunContext


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _copy(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for layer in ("silver", "ops"):
        if (src / layer).is_dir():
            shutil.copytree(src / layer, dst / layer)
    # Identity's own tables start empty: the benchmark measures a first full run.
    for table in ALL_TABLES:
        layer, name = table.split(".")
        shutil.rmtree(dst / layer / name, ignore_errors=True)


def _ctx(root: Path, day: date, args: argparse.Namespace) -> RunContext:
    cfg = load_config(
        "local",
        overrides={
            "storage.root": str(root),
            "spark.master": args.master,
            "spark.shuffle_partitions": args.shuffle_partitions,
            "spark.driver_memory": args.driver_memory,
            "identity.plots_dir": str(root.parent / "plots"),
            "mlflow.tracking_uri": f"sqlite:///{root.parent / 'mlflow.db'}",
        },
    )
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"  {time.perf_counter() - started:8.1f} s  {message}", flush=True)

    return RunContext.create(cfg, run_date=day, progress=progress)


def _hold_back(ctx: RunContext, share: float) -> dict[str, int]:
    """Move ``share`` of every identity source's records into a later batch; held back."""
    held: dict[str, int] = {}
    buckets = max(1, round(1 / share))
    for name in ctx.cfg.identity.sources:
        table = silver_record_table(name, ctx.cfg.sources[name])
        if not ctx.lake.exists(table):
            continue
        df = ctx.lake.read(table).localCheckpoint()
        pick = F.abs(F.hash(record_id_column(ctx.cfg.sources[name].keys))) % buckets == 0
        top = df.agg(F.max("_batch_id")).first()
        hi = (top[0] if top is not None else None) or 0
        later = df.where(pick).withColumn("_batch_id", F.lit(hi + 1).cast("long"))
        later.write.mode("overwrite").parquet(str(Path(ctx.lake.root).parent / "held" / name))
        held[name] = later.count()
        ctx.lake.overwrite(table, df.where(~pick))
    return held


def _bring_back(ctx: RunContext) -> None:
    for name in ctx.cfg.identity.sources:
        path = Path(ctx.lake.root).parent / "held" / name
        if path.exists():
            table = silver_record_table(name, ctx.cfg.sources[name])
            ctx.lake.append(table, ctx.spark.read.parquet(str(path)))


def _partition(clusters: DataFrame) -> DataFrame:
    """``(source, record_id, first record of its person)``: the grouping, whatever the ids."""
    rec = F.concat_ws(":", "source", "record_id")
    first = F.min(rec).over(Window.partitionBy("person_id"))
    return clusters.select("source", "record_id", first.alias("first"))


def _timed(label: str, ctx: RunContext, mode: str) -> dict[str, Any]:
    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), _cpu()
    report = run_identity(ctx, mode=mode)
    out = {
        "run": label,
        "seconds": round(time.perf_counter() - started, 1),
        "driver_cpu_s": round(_cpu() - cpu, 1),
        "load_avg_before": round(load, 1),
        "figures": {k: v for k, v in report.figures.items() if k not in ("plot", "mlflow_run")},
    }
    print(json.dumps(out), flush=True)
    # Outside the timing, as run_stage does after every stage: a 1M run's blocks fill the disk.
    release_local_blocks(ctx.spark)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakehouse", default="lakehouse")
    parser.add_argument("--truth", default="data/landing/_truth/records.csv")
    parser.add_argument("--work", default="/tmp/bench_identity")
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--save-state", help="copy the state after the first full run here (for --from-state)"
    )
    parser.add_argument(
        "--from-state", help="start from a state saved by --save-state: skips steps 1 and 3"
    )
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    src = Path(args.lakehouse).resolve()
    print(f"{cpu_model()}, {os.cpu_count()} cores, {ram_gib():.0f} GiB", flush=True)

    inc_root, ref_root = work / "incremental" / "lake", work / "reference" / "lake"
    results: list[dict[str, Any]] = []
    if args.from_state:
        # Re-measure the incremental run alone, on the saved state of an earlier step 1.
        shutil.rmtree(inc_root.parent, ignore_errors=True)
        shutil.copytree(args.from_state, inc_root.parent)
        args.skip_reference = True
        ctx = _ctx(inc_root, date(2026, 3, 1), args)
    else:
        _copy(src, inc_root)
        ctx = _ctx(inc_root, date(2026, 3, 1), args)
        held = _hold_back(ctx, args.new_share)
        print(f"held back: {held}", flush=True)
        results.append(_timed("full (records minus held back)", ctx, "full"))
        if args.save_state:
            shutil.rmtree(args.save_state, ignore_errors=True)
            shutil.copytree(inc_root.parent, args.save_state)
    _bring_back(ctx)
    if not args.skip_reference:
        # The reference starts from the same state (the first run's ids), so ids compare too.
        shutil.rmtree(ref_root, ignore_errors=True)
        shutil.copytree(inc_root, ref_root)
    ctx2 = RunContext(ctx.spark, ctx.cfg, ctx.lake, date(2026, 3, 2), ctx.progress)
    results.append(_timed(f"incremental (+{args.new_share:.0%})", ctx2, "auto"))
    if not args.skip_reference:
        ref_cfg = ctx.cfg.model_copy(
            update={"storage": ctx.cfg.storage.model_copy(update={"root": str(ref_root)})}
        )
        ref = RunContext.create(ref_cfg, run_date=date(2026, 3, 2), spark=ctx.spark)
        results.append(_timed("full (all records)", ref, "full"))
        inc = ctx.lake.read(CLUSTERS_TABLE)
        full = ref.lake.read(CLUSTERS_TABLE)
        cols = ["source", "record_id", "person_id"]
        differ = inc.select(cols).exceptAll(full.select(cols)).count()
        print(f"records whose person_id differs incremental vs full: {differ}", flush=True)
        moved = _partition(inc).exceptAll(_partition(full)).count()
        print(f"records grouped differently incremental vs full: {moved}", flush=True)
        ratio = results[-2]["seconds"] / results[-1]["seconds"]
        print(f"incremental / full wall time: {ratio:.1%}", flush=True)
    if Path(args.truth).is_file():
        scores = evaluate(ctx.spark, ctx.lake, args.truth)
        table: dict[str, dict[str, float]] = {}
        for metric, dim, value in scores:
            table.setdefault(dim, {})[metric] = value
        print(
            "| items | n | precision | recall | F1 | over-merged clusters | under-merged persons |"
        )
        print("|---|---|---|---|---|---|---|")
        for dim, m in sorted(table.items()):
            print(
                f"| {dim} | {m['items']:,.0f} | {m['precision']:.4f} | {m['recall']:.4f} | "
                f"{m['f1']:.4f} | {m['over_merged_clusters']:,.0f} | "
                f"{m['under_merged_persons']:,.0f} |"
            )


if __name__ == "__main__":
    main()
