"""Training: metrics, holdout split, MLflow logging and the champion alias policy."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny fits; no thread pool on a shared machine

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from cdp_spark.config import CdpConfig, load_config
from cdp_spark.ml.config import EstimatorConfig, FeaturesConfig, ModelSpec
from cdp_spark.ml.evaluate import calibration_error, evaluate, lift_by_decile
from cdp_spark.ml.features import feature_columns
from cdp_spark.ml.train import (
    TrainingSet,
    decide_champion,
    is_holdout,
    train_model,
    training_as_of,
)

REPO = Path(__file__).resolve().parent.parent
FEATURES = feature_columns(FeaturesConfig())
AS_OF = date(2026, 1, 31)


def synthetic(n: int = 800, seed: int = 0) -> TrainingSet:
    """The label depends on the e-mail open rate only; recency is noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.random((n, len(FEATURES))) * 10, columns=FEATURES)
    X["email_open_rate_90d"] = rng.random(n)
    X.loc[rng.random(n) < 0.1, "days_since_last_visit"] = np.nan
    y = (rng.random(n) < 1 / (1 + np.exp(-8 * (X["email_open_rate_90d"] - 0.5)))).astype(int)
    cut = int(n * 0.75)
    return TrainingSet(
        features=FEATURES,
        X_train=X.iloc[:cut].reset_index(drop=True),
        y_train=y[:cut].to_numpy(),
        X_hold=X.iloc[cut:].reset_index(drop=True),
        y_hold=y[cut:].to_numpy(),
        rows_available=n,
        sampled=False,
    )


def model_config(tmp_path: Path, **overrides: Any) -> CdpConfig:
    """Small, fast settings and an MLflow store of the test's own."""
    base = {
        "mlflow.tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
        "mlflow.experiment": "cdp-test",
        "models.training.permutation_repeats": 1,
        "models.training.permutation_max_rows": 200,
        "models.churn.estimator.max_iter": 30,
        "models.churn.estimator.calibration_folds": 2,
    }
    return load_config("local", conf_dir=REPO / "conf", environ={}, overrides={**base, **overrides})


@pytest.mark.parametrize(
    ("new", "champion", "promoted"),
    [(0.80, None, True), (0.80, 0.79, True), (0.80, 0.7951, False), (0.79, 0.80, False)],
)
def test_decide_champion_needs_more_than_the_margin(
    new: float, champion: float | None, promoted: bool
) -> None:
    assert decide_champion(new, champion, margin=0.005).promoted is promoted


def test_metrics_against_hand_computed_values() -> None:
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    # Top decile (1 row, p=0.9) is positive: lift = 1 / 0.2 = 5.
    assert lift_by_decile(y, p)[0] == pytest.approx(5.0)
    m = evaluate(y, p)
    # 16 positive-negative pairs: (0.9 beats all 8) + (0.2 beats 7 of 8) = 15 / 16.
    assert m["roc_auc"] == pytest.approx(15 / 16)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    # One bin: |mean(p) - mean(y)| = |0.26 - 0.2|.
    assert calibration_error(y, p, bins=1) == pytest.approx(0.06)


def test_training_cutoff_is_the_latest_with_a_complete_horizon() -> None:
    assert training_as_of(date(2026, 3, 1), 30) == date(2026, 1, 31)


def test_holdout_is_a_stable_hash_of_the_person(spark: SparkSession) -> None:
    df = spark.range(2000).select(F.concat(F.lit("P"), F.col("id").cast("string")).alias("pid"))
    flag = is_holdout(F.col("pid"), fraction=0.25, seed=42)
    first = {r.pid for r in df.where(flag).collect()}
    again = {r.pid for r in df.where(flag).collect()}
    other_seed = {
        r.pid for r in df.where(is_holdout(F.col("pid"), fraction=0.25, seed=7)).collect()
    }
    assert first == again
    assert 400 < len(first) < 600
    assert first != other_seed


def test_a_worse_model_does_not_take_the_champion_alias(tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    cfg = model_config(tmp_path)
    ts = synthetic()
    versions = {"gold.features": 7, "silver.orders": 3}

    first = train_model(cfg, "churn", ts, as_of=AS_OF, versions=versions)
    assert first.decision.promoted
    assert first.decision.reason == "no champion yet"
    assert first.metrics["roc_auc"] > 0.75

    # The recency baseline knows nothing here (the label depends on e-mail opens only).
    worse = ModelSpec(
        registered_name="cdp_churn",
        label="label_churn",
        estimator=EstimatorConfig(kind="recency_rank"),
    )
    second = train_model(cfg, "churn", ts, as_of=AS_OF, versions=versions, spec=worse)
    # The same model again does not beat itself by the margin either.
    third = train_model(cfg, "churn", ts, as_of=AS_OF, versions=versions)

    client = MlflowClient()
    assert str(client.get_model_version_by_alias("cdp_churn", "champion").version) == first.version
    for result in (second, third):
        assert not result.decision.promoted
        assert result.decision.champion_version == first.version
        assert result.decision.champion_metric == pytest.approx(first.metrics["roc_auc"])
        run = client.get_run(result.run_id)
        assert run.data.tags["champion_decision"].startswith("kept champion: roc_auc")
        version = client.get_model_version("cdp_churn", result.version)
        assert version.tags["champion_decision"] == result.decision.summary

    run = client.get_run(first.run_id)
    assert run.data.params["delta_version.gold.features"] == "7"
    assert run.data.params["estimator.kind"] == "hist_gradient_boosting"
    assert {"holdout_roc_auc", "holdout_pr_auc", "holdout_brier", "holdout_lift_top_decile",
            "holdout_calibration_error", "baseline_recency_rank_roc_auc",
            "baseline_logistic_regression_roc_auc"} <= set(run.data.metrics)  # fmt: skip
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/lift.png",
            "plots/feature_importance.png"} <= artifacts  # fmt: skip
    assert (
        mlflow.artifacts.load_dict(f"runs:/{first.run_id}/config/resolved_config.json")["models"][
            "churn"
        ]["registered_name"]
        == "cdp_churn"
    )
    info = mlflow.models.get_model_info(f"models:/cdp_churn/{first.version}")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == FEATURES


def test_a_feature_all_null_in_training_breaks_no_estimator() -> None:
    # An order-only shop has no web or e-mail features: those columns are all null.
    from types import SimpleNamespace

    from sklearn.metrics import roc_auc_score

    from cdp_spark.ml.config import EstimatorConfig
    from cdp_spark.ml.train import fit_and_score

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"days_since_last_purchase": rng.random(200), "web_sessions_30d": np.nan})
    y = (X["days_since_last_purchase"] > 0.5).astype(int).to_numpy()
    ts = SimpleNamespace(
        X_train=X[:150].reset_index(drop=True),
        y_train=y[:150],
        X_hold=X[150:].reset_index(drop=True),
        y_hold=y[150:],
    )
    estimators = [
        EstimatorConfig(calibration="none"),  # type: ignore[call-arg]
        EstimatorConfig(calibration="isotonic"),  # type: ignore[call-arg]
        EstimatorConfig(kind="logistic_regression"),  # type: ignore[call-arg]
        EstimatorConfig(kind="recency_rank"),  # type: ignore[call-arg]
    ]
    for ecfg in estimators:
        _, scores, _ = fit_and_score(ecfg, ts, direction=1, seed=0)  # type: ignore[arg-type]
        auc = roc_auc_score(y[150:], scores)
        assert auc > 0.9, (ecfg.kind, ecfg.calibration, auc)
