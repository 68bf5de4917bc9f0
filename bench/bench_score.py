"""Scoring throughput at 1M profiles: the score stage next to the models' own predict in pandas.

Takes a lakehouse holding ``gold.features`` at ``--as-of`` and an MLflow store whose models hold
the champion alias (e.g. what ``bench_pipeline.py`` left at 100k customers). In a work folder it
writes ``gold.features`` replicated ``--replicate`` times (``person_id`` suffixed ``~r<k>``, the
feature values unchanged: throughput depends on rows, not on who they are), then, interleaved,
``--runs`` times each:

- ``score stage``: ``run_score`` (both champions through ``mlflow.pyfunc.spark_udf``, deciles,
  the write of ``gold.scored_profiles`` and the drift of every feature), on the local profile;
- ``pandas reference``: the same champions loaded with ``mlflow.pyfunc.load_model`` predicting
  the same rows in this one process (features read with pyarrow): the single-machine reference.

Prints profiles/s (median) of each and the ratio, with the machine and its load average.

    .venv/bin/python bench/bench_score.py --lakehouse /work/runs/p100k/lakehouse \\
        --mlflow-uri sqlite:////work/runs/p100k/mlflow.db --as-of 2026-04-01 \\
        --replicate 10 --work /tmp/bench_score
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import date
from pathlib import Path

from _machine import machine_line

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdp_spark.config import load_config
from cdp_spark.pipeline import RunContext

FEATURES = "gold.features"


def replicate(ctx: RunContext, source_root: Path, as_of: date, times: int) -> int:
    from pyspark.sql import functions as F

    from cdp_spark.session import open_configured_lakehouse

    source_cfg = load_config(overrides={"storage.root": str(source_root)})
    source = open_configured_lakehouse(ctx.spark, source_cfg)
    one = source.read(FEATURES).where(F.col("as_of") == F.lit(as_of))
    copies = ctx.spark.range(times).withColumnRenamed("id", "_k")
    many = (
        one.crossJoin(copies)
        .withColumn("person_id", F.concat("person_id", F.lit("~r"), F.col("_k").cast("string")))
        .drop("_k")
    )
    many = many.select(*one.columns)
    ctx.lake.create(FEATURES, many.schema, partition_by=["as_of"])
    ctx.lake.overwrite(FEATURES, many, where=f"as_of = DATE'{as_of.isoformat()}'")
    return int(ctx.lake.read(FEATURES).count())


def pandas_reference(root: Path, cfg_uri: str, as_of: date) -> tuple[int, float]:
    """Rows and seconds for both champions' predict on the features, in one process."""
    import mlflow
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from cdp_spark.ml.score import MODELS

    mlflow.set_tracking_uri(cfg_uri)
    cfg = load_config(overrides={"storage.root": str(root), "mlflow.tracking_uri": cfg_uri})
    alias = cfg.models.training.champion_alias
    models = [
        mlflow.pyfunc.load_model(f"models:/{cfg.models.spec(m).registered_name}@{alias}")
        for m in MODELS
    ]
    began = time.perf_counter()
    table = DeltaTable(str(root / "gold" / "features")).to_pyarrow_table(
        filters=[("as_of", "=", as_of)]
    )
    frame = table.filter(pc.field("as_of") == as_of).to_pandas()
    for model in models:
        cols = [c.name for c in model.metadata.get_input_schema().inputs]
        model.predict(frame[cols])
    return len(frame), time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lakehouse", type=Path, required=True)
    parser.add_argument("--mlflow-uri", required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--replicate", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_score"))
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    print(machine_line())
    shutil.rmtree(args.work, ignore_errors=True)
    root = args.work / "lakehouse"
    cfg = load_config(overrides={"storage.root": str(root), "mlflow.tracking_uri": args.mlflow_uri})
    ctx = RunContext.create(cfg, run_date=args.as_of, progress=lambda m: None)
    began = time.perf_counter()
    rows = replicate(ctx, args.lakehouse, args.as_of, args.replicate)
    print(f"gold.features: {rows:,} rows at {args.as_of} ({time.perf_counter() - began:.0f} s)")

    from cdp_spark.ml.score import run_score

    stage_s: list[float] = []
    ref_s: list[float] = []
    for run in range(1, args.runs + 1):
        began = time.perf_counter()
        report = run_score(ctx)
        stage_s.append(time.perf_counter() - began)
        n, seconds = pandas_reference(root, args.mlflow_uri, args.as_of)
        ref_s.append(seconds)
        print(
            f"run {run}: score stage {stage_s[-1]:.1f} s ({report.figures.get('rows')} rows), "
            f"pandas reference {seconds:.1f} s ({n:,} rows); "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    stage, ref = statistics.median(stage_s), statistics.median(ref_s)
    print(f"median of {args.runs}: score stage {stage:.1f} s = {rows / stage:,.0f} profiles/s")
    print(f"median of {args.runs}: pandas reference {ref:.1f} s = {rows / ref:,.0f} profiles/s")
    print(f"ratio score stage / reference: {stage / ref:.2f}x")
    ctx.spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
