"""Models benchmark: holdout ROC AUC of churn and propensity next to the baselines, training
time, and scoring throughput with ``mlflow.pyfunc.spark_udf``.

It works on a *copy* of a lakehouse that holds silver (e.g. the demo's), never on the original:

    python bench/bench_models.py --lake lakehouse --truth data/landing/_truth \
        --run-date 2026-03-01 --work /tmp/bench_models

``--identity truth`` (default) writes ``gold.identity_clusters`` from the generator's truth
(``bench/_truth_identity.py``), so the figures measure the models and not identity resolution;
``--identity stage`` runs the pipeline's identity stage instead; ``--identity keep`` uses the
clusters already in the lakehouse. Everything (lakehouse copy, MLflow store) goes to ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from _machine import cpu_model, ram_gib
from _truth_identity import write_truth_identity

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default=str(ROOT / "lakehouse"), help="lakehouse with silver")
    parser.add_argument("--truth", default=str(ROOT / "data/landing/_truth"))
    parser.add_argument("--run-date", type=date.fromisoformat, default=date(2026, 3, 1))
    parser.add_argument("--work", default="/tmp/bench_models")
    parser.add_argument("--identity", choices=["truth", "stage", "keep"], default="truth")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    from pyspark.sql import functions as F

    from cdp_spark.config import load_config
    from cdp_spark.ml import evaluate as ev
    from cdp_spark.ml.config import EstimatorConfig
    from cdp_spark.ml.features import FEATURES_TABLE, feature_columns
    from cdp_spark.ml.score import run_score
    from cdp_spark.ml.train import (
        DIRECTION,
        fit_and_score,
        load_training_set,
        prepare_training_features,
        train_model,
    )
    from cdp_spark.pipeline import RunContext, run_stage

    work = Path(args.work)
    lake_copy = work / "lakehouse"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copytree(args.lake, lake_copy)
    cfg = load_config(
        "local",
        overrides={
            "storage.root": str(lake_copy),
            "spark.master": args.master,
            "spark.conf": {"spark.ui.enabled": "false"},
            "mlflow.tracking_uri": f"sqlite:///{work}/mlflow.db",
            "mlflow.experiment": "cdp-bench",
        },
    )
    ctx = RunContext.create(cfg, run_date=args.run_date)
    if args.identity == "truth":
        write_truth_identity(ctx.spark, ctx.lake, cfg, Path(args.truth), args.run_date)
    elif args.identity == "stage":
        run_stage("identity", ctx)

    started = time.perf_counter()
    as_of, versions = prepare_training_features(ctx.lake, cfg, args.run_date)
    features_s = time.perf_counter() - started
    print(json.dumps({"features_build_s": features_s, "as_of": as_of}, default=str), flush=True)
    df = ctx.lake.read(FEATURES_TABLE, version=versions[FEATURES_TABLE]).where(
        F.col("as_of") == F.lit(as_of)
    )
    tcfg = cfg.models.training
    results: dict[str, dict[str, float]] = {}
    for model in ("churn", "propensity"):
        spec = cfg.models.spec(model)
        ts = load_training_set(
            df,
            features=feature_columns(cfg.models.features),
            label=spec.label,
            max_rows=tcfg.max_rows,
            fraction=tcfg.holdout_fraction,
            seed=tcfg.seed,
        )
        row: dict[str, float] = {
            "rows": len(ts.y_train) + len(ts.y_hold),
            "positive_rate": float(ts.y_hold.mean()),
        }
        for kind in ("hist_gradient_boosting", "logistic_regression", "recency_rank"):
            ecfg = spec.estimator if kind == spec.estimator.kind else EstimatorConfig(kind=kind)
            _, p, secs = fit_and_score(ecfg, ts, direction=DIRECTION[model], seed=tcfg.seed)
            m = ev.evaluate(ts.y_hold, p)
            row[f"{kind}_roc_auc"] = m["roc_auc"]
            row[f"{kind}_pr_auc"] = m["pr_auc"]
            row[f"{kind}_fit_s"] = secs
        t0 = time.perf_counter()
        train_model(cfg, model, ts, as_of=as_of, versions=versions)
        row["train_run_s"] = time.perf_counter() - t0  # fit + baselines + plots + MLflow
        results[model] = row
        print(json.dumps({model: row}, default=str), flush=True)  # partial results survive

    t0 = time.perf_counter()
    report = run_score(ctx)
    score_s = time.perf_counter() - t0
    scored = int(report.figures.get("rows", 0))
    summary = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, {ram_gib():.0f} GiB",
        "load_average": os.getloadavg(),
        "run_date": args.run_date.isoformat(),
        "training_as_of": as_of.isoformat(),
        "features_build_s": round(features_s, 1),
        "models": results,
        "scoring": {
            "rows": scored,
            "seconds": round(score_s, 1),
            "profiles_per_s": round(scored / score_s, 1) if score_s else None,
        },
    }
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
