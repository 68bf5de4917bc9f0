"""Batch scoring with the champion, deciles, and drift monitoring (PSI)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from cdp_spark.config import CdpConfig, load_config
from cdp_spark.ml.evaluate import bin_shares, psi
from cdp_spark.ml.features import FEATURES_TABLE, features_schema
from cdp_spark.ml.monitoring import MONITORING_TABLE, bin_counts, bin_index
from cdp_spark.ml.score import SCORED_TABLE, decile, run_score
from cdp_spark.ml.train import train_model
from cdp_spark.pipeline import RunContext
from cdp_spark.storage import open_lakehouse

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 3, 1)


def test_psi_matches_hand_computed_values() -> None:
    # (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.274653, abs=1e-6)
    # 0.1 ln(1.5) + 0 + (-0.1) ln(0.8); counts are normalised first
    assert psi([20, 30, 50], [3, 3, 4]) == pytest.approx(0.062861, abs=1e-6)
    assert psi([1, 1], [1, 1]) == 0.0
    # An empty bin is floored, not infinite.
    assert np.isfinite(psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))


def test_spark_bins_match_the_training_bins(spark: SparkSession) -> None:
    values = [0.0, 0.0, 1.0, 2.5, 3.0, 9.0, None]
    edges = [0.0, 2.5, 5.0]
    df = spark.createDataFrame([(v,) for v in values], "x double")
    counts = bin_counts(df, {"x": {"edges": edges}}, {"x": "x"})["x"]
    expected = bin_shares(np.array(values, dtype=float), edges)
    assert [c / len(values) for c in counts] == pytest.approx(expected)
    assert counts == [2.0, 2.0, 1.0, 1.0, 1.0]  # <=0, (0,2.5], (2.5,5], >5, missing
    got = df.select(bin_index(F.col("x"), edges).alias("b")).collect()
    assert [r.b for r in got] == [0, 0, 1, 1, 2, 3, -1]


def test_decile_is_ten_for_the_highest_scores(spark: SparkSession) -> None:
    cuts = [0.1 * i for i in range(1, 10)]
    df = spark.createDataFrame([(0.05,), (0.1,), (0.55,), (0.95,), (None,)], "s double")
    got = df.select("s", decile(F.col("s"), cuts).alias("d"))
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [(0.05, 1), (0.1, 1), (0.55, 6), (0.95, 10), (None, None)], "s double, d int"
        ),
    )


def scoring_setup(spark: SparkSession, tmp_path: Path) -> tuple[RunContext, list[str]]:
    cfg: CdpConfig = load_config(
        "local",
        conf_dir=REPO / "conf",
        environ={},
        overrides={
            "storage.root": str(tmp_path / "lake"),
            "mlflow.tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
            "mlflow.experiment": "cdp-test-score",
            "models.training.permutation_repeats": 1,
            "models.training.compare_baselines": False,
            # Continuous scores (no tied leaves), so the top and bottom deciles are known.
            "models.churn.estimator.kind": "logistic_regression",
        },
    )
    lake = open_lakehouse(spark, cfg.lakehouse_root, engine="delta-rs")
    schema = features_schema(cfg.models.features)
    names = [
        f.name
        for f in schema.fields
        if f.name not in ("person_id", "as_of", "label_churn", "label_purchase")
    ]
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        values = [float(v) for v in rng.random(len(names))]
        rows.append((f"P{i:02d}", DAY, *values, None, None))
    lake.create(FEATURES_TABLE, schema, partition_by=["as_of"])
    lake.append(FEATURES_TABLE, spark.createDataFrame(rows, schema))
    return RunContext(spark, cfg, lake, DAY), names


def test_scoring_without_a_champion_is_skipped(spark: SparkSession, tmp_path: Path) -> None:
    ctx, _ = scoring_setup(spark, tmp_path)
    report = run_score(ctx)
    assert report.status == "skipped"
    assert "train first" in report.figures["reason"]


def test_champion_scores_every_person_with_deciles_and_drift(
    spark: SparkSession, tmp_path: Path
) -> None:
    import pandas as pd

    from cdp_spark.ml.train import TrainingSet

    ctx, names = scoring_setup(spark, tmp_path)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((300, len(names))), columns=names)
    y = (X["tenure_days"] + 0.3 * rng.random(300) > 0.6).astype(int).to_numpy()
    ts = TrainingSet(
        names, X.iloc[:200], y[:200], X.iloc[200:].reset_index(drop=True), y[200:], 300, False
    )
    champion = train_model(ctx.cfg, "churn", ts, as_of=date(2026, 1, 31), versions={})

    report = run_score(ctx)
    report_again = run_score(ctx)  # idempotent per score date

    scored = ctx.lake.read(SCORED_TABLE)
    assert report.status == report_again.status == "ok"
    assert scored.count() == 40
    rows = scored.orderBy("churn_score").collect()
    assert [r.churn_decile for r in rows] == sorted(r.churn_decile for r in rows)
    assert rows[0].churn_decile == 1 and rows[-1].churn_decile == 10
    assert {r.churn_model_version for r in rows} == {champion.version}
    assert {r.propensity_score for r in rows} == {None}  # no propensity champion yet
    assert {r.score_date for r in rows} == {DAY}
    assert report.figures["no_champion"] == "propensity"

    metrics = ctx.lake.read(MONITORING_TABLE).where(F.col("model") == "cdp_churn")
    got = {r.metric: r for r in metrics.collect()}
    assert len(got) == metrics.count()  # one row per metric: the re-run replaced the first
    assert {f"psi:{n}" for n in names} | {"psi:score", "rows_scored", "score_mean"} <= set(got)
    assert got["rows_scored"].value == 40.0
    # Uniform features in both training and scoring: little drift; the threshold is conf's.
    assert got["psi:tenure_days"].threshold == ctx.cfg.models.monitoring.psi_threshold
    assert got["psi:tenure_days"].value < 1.0
