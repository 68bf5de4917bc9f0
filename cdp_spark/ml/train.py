"""Training of the churn and purchase-propensity models, tracked and registered in MLflow.

A training run, for one model:

1. (re)builds ``gold.features`` at the training cutoff ``run_date - horizon`` (the latest one
   whose label horizon is complete) and reads its labelled rows through Spark at one Delta
   version, sampled (seeded) to ``training.max_rows`` before anything reaches the driver;
2. splits people into train and holdout by a hash of ``person_id`` (the same person is always
   on the same side, run after run);
3. fits the configured estimator (default: HistGradientBoosting calibrated with
   CalibratedClassifierCV) and, for comparison, the baselines (recency rank, logistic
   regression);
4. logs to MLflow one run with the parameters, the resolved configuration, the Delta versions
   read, holdout metrics (ROC AUC, PR AUC, Brier, top-decile lift, calibration error) of the
   model and of the baselines, plots (ROC, calibration, lift, permutation importance), the
   training distributions for drift monitoring, and the model with its signature and an input
   example, registered as ``cdp_churn`` / ``cdp_purchase_propensity``;
5. moves the ``champion`` alias to the new version only if it beats the current champion,
   scored on the same holdout, by more than ``training.champion_margin``. The decision is an
   MLflow tag of the run and of the version, a log line, and a row of the stage report.

Example:
    >>> run_train(ctx, models=["churn"]).rows[0]["decision"]       # doctest: +SKIP
    'promoted: no champion yet'
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.ml import evaluate as ev
from cdp_spark.ml.config import EstimatorConfig, ModelSpec
from cdp_spark.ml.estimators import make_estimator
from cdp_spark.ml.features import FEATURES_TABLE, feature_columns, write_features
from cdp_spark.storage import Lakehouse

if TYPE_CHECKING:
    from cdp_spark.pipeline import RunContext, StageReport

log = logging.getLogger(__name__)

MODELS = ("churn", "propensity")
REFERENCE_ARTIFACT = "monitoring/reference.json"
DIRECTION = {"churn": 1, "propensity": -1}  # for the recency baseline


class NotEnoughDataError(CdpError):
    """Too few labelled rows (or positives) to train a model worth registering."""


def training_as_of(run_date: date, horizon_days: int) -> date:
    """The training cutoff: the latest one whose horizon ends by the end of the run date.

    Example:
        >>> training_as_of(date(2026, 3, 1), 30)
        datetime.date(2026, 1, 31)
    """
    return run_date - timedelta(days=horizon_days - 1)


def is_holdout(person_id: Column, *, fraction: float, seed: int) -> Column:
    """True for the people of the holdout: a stable hash of ``person_id`` below ``fraction``.

    Example:
        >>> df.withColumn("holdout", is_holdout(F.col("person_id"), fraction=0.25, seed=42))
        ...                                                               # doctest: +SKIP
    """
    bucket = F.pmod(F.xxhash64(person_id, F.lit(seed)), F.lit(10_000))
    return bucket < F.lit(round(fraction * 10_000))


@dataclass
class TrainingSet:
    """Labelled rows collected to the driver, split by person."""

    features: list[str]
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_hold: pd.DataFrame
    y_hold: np.ndarray
    rows_available: int
    sampled: bool


def load_training_set(
    df: DataFrame, *, features: Sequence[str], label: str, max_rows: int, fraction: float, seed: int
) -> TrainingSet:
    """Labelled rows of ``df`` (a ``gold.features`` cutoff), sampled to ``max_rows``, split.

    Sampling happens in Spark, so only what fits in memory is collected.

    Example:
        >>> ts = load_training_set(features_df, features=cols, label="label_churn",
        ...                        max_rows=100_000, fraction=0.25, seed=42)  # doctest: +SKIP
    """
    labelled = df.where(F.col(label).isNotNull())
    available = labelled.count()
    sampled = available > max_rows
    if sampled:
        labelled = labelled.sample(fraction=min(1.0, max_rows / available * 1.02), seed=seed)
        labelled = labelled.limit(max_rows)
    collected: pd.DataFrame = labelled.select(
        "person_id",
        *features,
        F.col(label).alias("_y"),
        is_holdout(F.col("person_id"), fraction=fraction, seed=seed).alias("_holdout"),
    ).toPandas()
    # A stable row order: the same data gives the same model, run after run.
    pdf = collected.sort_values("person_id", kind="stable")
    X = pdf[list(features)].astype("float64")
    y = pdf["_y"].to_numpy(dtype=int)
    hold = pdf["_holdout"].to_numpy(dtype=bool)
    return TrainingSet(
        features=list(features),
        X_train=X[~hold].reset_index(drop=True),
        y_train=y[~hold],
        X_hold=X[hold].reset_index(drop=True),
        y_hold=y[hold],
        rows_available=available,
        sampled=sampled,
    )


def check_enough(ts: TrainingSet, cfg: CdpConfig, model: str) -> None:
    """Raise :class:`NotEnoughDataError` when a model cannot be trained or evaluated.

    Example:
        >>> check_enough(ts, cfg, "churn")                                 # doctest: +SKIP
    """
    tcfg = cfg.models.training
    n = len(ts.y_train) + len(ts.y_hold)
    positives = int(ts.y_train.sum() + ts.y_hold.sum())
    negatives = n - positives
    problems = []
    if n < tcfg.min_labelled_rows:
        problems.append(f"{n} labelled rows (< {tcfg.min_labelled_rows})")
    if min(positives, negatives) < tcfg.min_positives:
        problems.append(f"{positives} positives / {negatives} negatives (< {tcfg.min_positives})")
    if len(set(ts.y_hold.tolist())) < 2 or len(set(ts.y_train.tolist())) < 2:
        problems.append("train or holdout holds a single class")
    if problems:
        raise NotEnoughDataError(
            f"not enough labelled data to train {model}: " + "; ".join(problems),
            hint="the training cutoff is run_date - horizon_days: run later, with more history, "
            "or lower models.training.min_labelled_rows / min_positives",
        )


def fit_and_score(
    ecfg: EstimatorConfig, ts: TrainingSet, *, direction: int, seed: int
) -> tuple[Any, np.ndarray, float]:
    """Fit ``ecfg``'s estimator on the train split; holdout scores and seconds taken.

    Example:
        >>> est, p, secs = fit_and_score(EstimatorConfig(), ts, direction=1,
        ...                              seed=42)                  # doctest: +SKIP
    """
    est = make_estimator(ecfg, direction=direction, seed=seed)
    empty = [c for c in ts.X_train.columns if ts.X_train[c].isna().all()]
    if empty and ecfg.kind == "hist_gradient_boosting":
        # A source the shop does not have leaves its features all null; HistGradientBoosting
        # cannot bin an all-NaN column (sklearn 1.9 raises), so those columns become constant.
        est = Pipeline(
            [
                (
                    "fill_empty",
                    ColumnTransformer(
                        [
                            (
                                "empty",
                                SimpleImputer(
                                    strategy="constant", fill_value=0.0, keep_empty_features=True
                                ),
                                empty,
                            )
                        ],
                        remainder="passthrough",
                    ),
                ),
                ("model", est),
            ]
        )
    started = time.perf_counter()
    est.fit(ts.X_train, ts.y_train)
    seconds = time.perf_counter() - started
    return est, est.predict_proba(ts.X_hold)[:, 1], seconds


@dataclass(frozen=True)
class ChampionDecision:
    """Whether the new version takes the alias, and why."""

    promoted: bool
    reason: str
    champion_version: str | None = None
    champion_metric: float | None = None

    @property
    def summary(self) -> str:
        return ("promoted: " if self.promoted else "kept champion: ") + self.reason


def decide_champion(
    new_metric: float, champion_metric: float | None, *, margin: float, metric: str = "roc_auc"
) -> ChampionDecision:
    """The new version wins when there is no champion or it beats it by more than ``margin``.

    Example:
        >>> decide_champion(0.80, 0.79, margin=0.005).summary
        'promoted: roc_auc 0.8000 > champion 0.7900 + margin 0.005'
        >>> decide_champion(0.80, 0.799, margin=0.005).promoted
        False
    """
    if champion_metric is None or not np.isfinite(champion_metric):
        return ChampionDecision(True, "no champion yet")
    detail = f"{metric} {new_metric:.4f} %s champion {champion_metric:.4f} + margin {margin:g}"
    if new_metric > champion_metric + margin:
        return ChampionDecision(True, detail % ">", champion_metric=champion_metric)
    return ChampionDecision(False, detail % "<=", champion_metric=champion_metric)


def _metric(name: str, y: np.ndarray, p: np.ndarray) -> float:
    return ev.evaluate(y, p)[name]


def apply_champion_policy(
    client: Any,
    *,
    name: str,
    new_version: str,
    new_metric: float,
    ts: TrainingSet,
    cfg: CdpConfig,
) -> ChampionDecision:
    """Score the current champion on ``ts``'s holdout and move the alias if the new one wins.

    A champion that cannot score the holdout (its features differ from today's) is replaced.

    Example:
        >>> apply_champion_policy(MlflowClient(), name="cdp_churn", new_version="3",
        ...                       new_metric=0.81, ts=ts, cfg=cfg).promoted   # doctest: +SKIP
        True
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    tcfg = cfg.models.training
    alias = tcfg.champion_alias
    try:
        current = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        current = None
    champion_metric: float | None = None
    reason_prefix = ""
    if current is not None and str(current.version) != str(new_version):
        try:
            champ = mlflow.pyfunc.load_model(f"models:/{name}/{current.version}")
            p = np.asarray(champ.predict(ts.X_hold))
            p = p[:, 1] if p.ndim == 2 else p
            champion_metric = _metric(tcfg.champion_metric, ts.y_hold, p)
        except Exception as exc:  # the champion expects other features: it cannot compete
            log.warning("champion %s v%s cannot score the holdout: %s", name, current.version, exc)
            reason_prefix = f"champion v{current.version} cannot score today's features; "
    decision = decide_champion(
        new_metric, champion_metric, margin=tcfg.champion_margin, metric=tcfg.champion_metric
    )
    if reason_prefix:
        decision = ChampionDecision(True, reason_prefix + decision.reason)
    decision = ChampionDecision(
        decision.promoted,
        decision.reason,
        champion_version=str(current.version) if current is not None else None,
        champion_metric=champion_metric,
    )
    if decision.promoted:
        client.set_registered_model_alias(name, alias, new_version)
    client.set_model_version_tag(name, new_version, "champion_decision", decision.summary)
    return decision


def reference_distributions(
    X: pd.DataFrame, scores: np.ndarray, bins: int
) -> dict[str, dict[str, list[float]]]:
    """Bin edges and shares of every feature and of the score, for drift monitoring.

    Example:
        >>> reference_distributions(X, p, 10)["tenure_days"].keys()        # doctest: +SKIP
        dict_keys(['edges', 'shares'])
    """
    out: dict[str, dict[str, list[float]]] = {}
    columns = {c: X[c].to_numpy(dtype=float) for c in X.columns}
    columns["score"] = np.asarray(scores, dtype=float)
    for name, values in columns.items():
        edges = ev.quantile_edges(values, bins)
        out[name] = {"edges": edges, "shares": ev.bin_shares(values, edges)}
    return out


@dataclass(frozen=True)
class TrainResult:
    """One model's training: MLflow run, registered version, metrics, champion decision."""

    model: str
    registered_name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    baselines: dict[str, float]
    decision: ChampionDecision
    rows_train: int
    rows_holdout: int
    seconds: float

    def row(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "roc_auc": round(self.metrics["roc_auc"], 4),
            "pr_auc": round(self.metrics["pr_auc"], 4),
            **{f"{k}_auc": round(v, 4) for k, v in self.baselines.items()},
            "rows": self.rows_train + self.rows_holdout,
            "decision": self.decision.summary,
        }


def configure_mlflow(cfg: CdpConfig) -> Any:
    """Point MLflow at the configured tracking server and experiment; returns a client.

    Example:
        >>> configure_mlflow(load_config()).tracking_uri                    # doctest: +SKIP
        'sqlite:////work/main/mlflow.db'
    """
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(cfg.mlflow_tracking_uri)
    if cfg.mlflow.registry_uri:
        mlflow.set_registry_uri(cfg.mlflow.registry_uri)
    mlflow.set_experiment(cfg.mlflow.experiment)
    return MlflowClient()


def train_model(
    cfg: CdpConfig,
    model: str,
    ts: TrainingSet,
    *,
    as_of: date,
    versions: dict[str, int],
    spec: ModelSpec | None = None,
    run_name: str | None = None,
) -> TrainResult:
    """Fit, evaluate, log and register one model on ``ts``; apply the champion policy.

    ``spec`` overrides the configured one (the notebook trains other settings this way).

    Example:
        >>> train_model(cfg, "churn", ts, as_of=date(2026, 1, 31), versions={}).version
        ...                                                               # doctest: +SKIP
        '1'
    """
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.inspection import permutation_importance

    spec = spec or cfg.models.spec(model)
    tcfg = cfg.models.training
    client = configure_mlflow(cfg)
    started = time.perf_counter()
    direction = DIRECTION[model]
    est, p_hold, fit_seconds = fit_and_score(
        spec.estimator, ts, direction=direction, seed=tcfg.seed
    )
    metrics = ev.evaluate(ts.y_hold, p_hold)
    curves: dict[str, np.ndarray] = {spec.estimator.kind: p_hold}
    baselines: dict[str, float] = {}
    if tcfg.compare_baselines:
        for kind in ("recency_rank", "logistic_regression"):
            if kind == spec.estimator.kind:
                continue
            _, p_base, _ = fit_and_score(
                EstimatorConfig(kind=kind), ts, direction=direction, seed=tcfg.seed
            )
            curves[kind] = p_base
            baselines[kind] = ev.evaluate(ts.y_hold, p_base)["roc_auc"]
    n_imp = min(len(ts.y_hold), tcfg.permutation_max_rows)
    imp = permutation_importance(
        est,
        ts.X_hold.iloc[:n_imp],
        ts.y_hold[:n_imp],
        scoring="roc_auc",
        n_repeats=tcfg.permutation_repeats,
        random_state=tcfg.seed,
    )
    importances = dict(zip(ts.features, imp.importances_mean.tolist(), strict=True))
    title = f"{spec.registered_name} @ {as_of} (holdout n={len(ts.y_hold)})"

    with mlflow.start_run(run_name=run_name or f"{model}-{as_of}") as run:
        mlflow.set_tags({"cdp.model": model, "cdp.as_of": as_of.isoformat()})
        mlflow.log_params(
            {
                "model": model,
                "label": spec.label,
                "as_of": as_of.isoformat(),
                "horizon_days": cfg.models.features.horizon_days,
                **{f"estimator.{k}": v for k, v in spec.estimator.model_dump().items()},
                "rows_available": ts.rows_available,
                "rows_train": len(ts.y_train),
                "rows_holdout": len(ts.y_hold),
                "sampled": ts.sampled,
                "max_rows": tcfg.max_rows,
                "holdout_fraction": tcfg.holdout_fraction,
                "seed": tcfg.seed,
                "features": len(ts.features),
                **{f"delta_version.{t}": v for t, v in sorted(versions.items())},
            }
        )
        mlflow.log_dict(cfg.model_dump(mode="json"), "config/resolved_config.json")
        mlflow.log_dict({"tables": versions}, "data/delta_versions.json")
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_metrics({f"baseline_{k}_roc_auc": v for k, v in baselines.items()})
        mlflow.log_metric("fit_seconds", fit_seconds)
        mlflow.log_figure(ev.roc_figure(ts.y_hold, curves, title), "plots/roc.png")
        mlflow.log_figure(ev.calibration_figure(ts.y_hold, p_hold, title), "plots/calibration.png")
        mlflow.log_figure(ev.lift_figure(ts.y_hold, p_hold, title), "plots/lift.png")
        mlflow.log_figure(ev.importance_figure(importances, title), "plots/feature_importance.png")
        mlflow.log_dict(importances, "plots/feature_importance.json")
        mlflow.log_dict(
            reference_distributions(ts.X_train, p_hold, cfg.models.monitoring.psi_bins),
            REFERENCE_ARTIFACT,
        )
        example = ts.X_train.head(5)
        signature = infer_signature(example, est.predict_proba(example))
        info = mlflow.sklearn.log_model(
            est,
            name="model",
            signature=signature,
            input_example=example,
            registered_model_name=spec.registered_name,
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=trusted_types(est),
        )
        version = str(info.registered_model_version)
        new_metric = metrics[tcfg.champion_metric]
        decision = apply_champion_policy(
            client,
            name=spec.registered_name,
            new_version=version,
            new_metric=new_metric,
            ts=ts,
            cfg=cfg,
        )
        mlflow.set_tags(
            {
                "champion_decision": decision.summary,
                "champion_promoted": str(decision.promoted).lower(),
                "registered_version": version,
            }
        )
        if decision.champion_metric is not None:
            mlflow.log_metric(f"champion_{tcfg.champion_metric}", decision.champion_metric)
    log.warning("%s v%s: %s", spec.registered_name, version, decision.summary)
    return TrainResult(
        model=model,
        registered_name=spec.registered_name,
        version=version,
        run_id=run.info.run_id,
        metrics=metrics,
        baselines=baselines,
        decision=decision,
        rows_train=len(ts.y_train),
        rows_holdout=len(ts.y_hold),
        seconds=time.perf_counter() - started,
    )


def trusted_types(estimator: Any) -> list[str]:
    """The types MLflow's skops format must trust to load ``estimator`` again.

    We built the estimator in this run, so its own types are trusted; the list is stored
    with the model, and loading accepts nothing else.

    Example:
        >>> trusted_types(HistGradientBoostingClassifier().fit(X, y))      # doctest: +SKIP
        ['sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor']
    """
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(estimator)))


def prepare_training_features(
    lake: Lakehouse, cfg: CdpConfig, run_date: date
) -> tuple[date, dict[str, int]]:
    """(Re)build ``gold.features`` at the training cutoff so its labels are complete.

    Returns the cutoff and the Delta versions of every table the features were read from
    (``gold.features`` included). Raises :class:`NotEnoughDataError` when the horizon is not
    complete or the history before the cutoff is too short.

    Example:
        >>> prepare_training_features(lake, cfg, date(2026, 3, 1))         # doctest: +SKIP
        (datetime.date(2026, 1, 31), {'gold.features': 4, ...})
    """
    fcfg, tcfg = cfg.models.features, cfg.models.training
    as_of = training_as_of(run_date, fcfg.horizon_days)
    written = write_features(lake, cfg, as_of=as_of, run_date=run_date)
    if not written.labels_complete:
        raise NotEnoughDataError(
            f"the label horizon of the training cutoff {as_of} (+{fcfg.horizon_days} days) is "
            "not complete in the data",
            hint="run training with a run date whose data covers the horizon",
        )
    if (
        written.first_purchase is None
        or (as_of - written.first_purchase).days < tcfg.min_history_days
    ):
        raise NotEnoughDataError(
            f"only {(as_of - written.first_purchase).days if written.first_purchase else 0} days "
            f"of purchase history before the training cutoff {as_of} "
            f"(< models.training.min_history_days = {tcfg.min_history_days})",
            hint=f"the data must cover at least horizon_days + min_history_days = "
            f"{fcfg.horizon_days + tcfg.min_history_days} days",
        )
    return as_of, {**written.inputs, FEATURES_TABLE: int(written.version or 0)}


def run_train(
    ctx: RunContext, models: Sequence[str] | None = None, *, strict: bool = False
) -> StageReport:
    """The ``train`` stage: train, register and maybe promote the churn and propensity models.

    With ``strict=False`` (``cdp run all``) a model with too little labelled data is skipped
    with a warning; with ``strict=True`` (``cdp train``) that is an error.

    Example:
        >>> run_train(ctx, ["propensity"], strict=True).rows[0]["model"]     # doctest: +SKIP
        'propensity'
    """
    from cdp_spark.pipeline import StageReport

    selected = list(models or MODELS)
    unknown = [m for m in selected if m not in MODELS]
    if unknown:
        raise CdpError(f"unknown model(s) {unknown}", hint="models: churn, propensity, all")
    tcfg = ctx.cfg.models.training
    try:
        ctx.progress("train: building the training features")
        as_of, versions = prepare_training_features(ctx.lake, ctx.cfg, ctx.run_date)
    except NotEnoughDataError as exc:
        if strict:
            raise
        ctx.progress(f"train: skipped: {exc}")
        return StageReport(stage="train", status="skipped", figures={"reason": str(exc)})
    features = feature_columns(ctx.cfg.models.features)
    df = ctx.lake.read(FEATURES_TABLE, version=versions[FEATURES_TABLE]).where(
        F.col("as_of") == F.lit(as_of)
    )
    rows: list[dict[str, Any]] = []
    trained = 0
    for model in selected:
        spec = ctx.cfg.models.spec(model)
        ctx.progress(f"train: {model} on features at {as_of}")
        ts = load_training_set(
            df,
            features=features,
            label=spec.label,
            max_rows=tcfg.max_rows,
            fraction=tcfg.holdout_fraction,
            seed=tcfg.seed,
        )
        try:
            check_enough(ts, ctx.cfg, model)
        except NotEnoughDataError as exc:
            if strict:
                raise
            ctx.progress(f"train: {model} skipped: {exc}")
            rows.append({"model": model, "decision": f"skipped: {exc}"})
            continue
        labelled = len(ts.y_train) + len(ts.y_hold)
        if labelled < tcfg.warn_labelled_rows:
            log.warning(
                "%s: only %d labelled rows at %s; holdout metrics are noisy", model, labelled, as_of
            )
        result = train_model(ctx.cfg, model, ts, as_of=as_of, versions=versions)
        ctx.progress(
            f"train: {result.registered_name} v{result.version}: {result.decision.summary}"
        )
        rows.append(result.row())
        trained += 1
    figures = {"as_of": as_of.isoformat(), "trained": trained, "versions": json.dumps(versions)}
    return StageReport(
        stage="train", status="ok" if trained else "skipped", figures=figures, rows=rows
    )
