"""Batch scoring with the champion models: ``gold.features`` -> ``gold.scored_profiles``.

The champion of each model (the version holding the ``champion`` alias) scores every person's
features at ``as_of = run_date`` through ``mlflow.pyfunc.spark_udf`` with the local Python
environment: the model runs inside Spark's Python workers, batch by batch, and nothing is
collected to the driver. Deciles come from approximate quantiles of the scores (10 = the
highest scores). The write replaces exactly the run's ``score_date``, so a re-run is
idempotent. Per run, :mod:`cdp_spark.ml.monitoring` writes the score distribution and the PSI
of each feature against the training data to ``ops.model_monitoring``.

With no champion yet the stage reports ``skipped`` with a hint (train first).

Example:
    >>> run_score(ctx).figures["rows"]                                     # doctest: +SKIP
    1994
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from cdp_spark.ml.features import FEATURES_TABLE, write_features
from cdp_spark.ml.monitoring import MONITORING_SCHEMA, MONITORING_TABLE, drift_rows
from cdp_spark.ml.train import MODELS, REFERENCE_ARTIFACT, configure_mlflow
from cdp_spark.storage.layout import serving_layout

if TYPE_CHECKING:
    from cdp_spark.pipeline import RunContext, StageReport

log = logging.getLogger(__name__)

SCORED_TABLE = "gold.scored_profiles"
SCORED_SCHEMA = StructType(
    [
        StructField("person_id", StringType(), False),
        StructField("churn_score", DoubleType(), True),
        StructField("churn_decile", IntegerType(), True),
        StructField("churn_model_version", StringType(), True),
        StructField("propensity_score", DoubleType(), True),
        StructField("propensity_decile", IntegerType(), True),
        StructField("propensity_model_version", StringType(), True),
        StructField("score_date", DateType(), False),
    ]
)


@dataclass(frozen=True)
class Champion:
    """The version of a registered model that holds the champion alias."""

    model: str  # churn | propensity
    name: str  # registered name
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def find_champion(client: Any, model: str, name: str, alias: str) -> Champion | None:
    """The champion of ``name``, or None when no version holds ``alias`` (or no such model).

    Example:
        >>> find_champion(MlflowClient(), "churn", "cdp_churn", "champion")   # doctest: +SKIP
        Champion(model='churn', name='cdp_churn', version='2', run_id='9f...')
    """
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return Champion(model=model, name=name, version=str(mv.version), run_id=str(mv.run_id))


def decile(score: Column, cut_points: Sequence[float]) -> Column:
    """Decile 1..10 (10 = highest) of ``score`` given the 9 cut points (10%..90% quantiles).

    A score above the k-th cut point is in decile k + 1; null scores have a null decile.

    Example:
        >>> df.select(decile(F.col("churn_score"), [0.1 * i for i in range(1, 10)]))
        ...                                                               # doctest: +SKIP
    """
    above = [F.when(score > F.lit(float(q)), 1).otherwise(0) for q in cut_points]
    total = sum(above[1:], above[0]) if above else F.lit(0)
    return F.when(score.isNotNull(), (total + 1).cast("int"))


def model_inputs(uri: str) -> list[str]:
    """The input column names of a logged model's signature.

    Example:
        >>> model_inputs("models:/cdp_churn/2")[:2]                         # doctest: +SKIP
        ['tenure_days', 'days_since_last_purchase']
    """
    from mlflow.models import get_model_info

    signature = get_model_info(uri).signature
    if signature is None:
        raise ValueError(f"{uri} has no signature")
    return list(signature.inputs.input_names())


def with_score(df: DataFrame, spark: Any, champion: Champion, column: str) -> DataFrame:
    """``df`` plus ``column``: the champion's probability of the positive class (a Spark UDF).

    Example:
        >>> with_score(features, spark, champ, "churn_score")             # doctest: +SKIP
    """
    import mlflow

    udf = mlflow.pyfunc.spark_udf(
        spark, champion.uri, result_type="array<double>", env_manager="local"
    )
    inputs = model_inputs(champion.uri)
    return df.withColumn(column, udf(F.struct(*[F.col(c) for c in inputs])).getItem(1))


def _ensure(lake: Any, table: str, schema: StructType, partition_by: Sequence[str]) -> None:
    if not lake.exists(table):
        lake.create(table, schema, partition_by=list(partition_by))


def run_score(ctx: RunContext, score_date: date | None = None) -> StageReport:
    """The ``score`` stage: the champions score every person at ``score_date`` (run date).

    Example:
        >>> run_score(ctx).status                                          # doctest: +SKIP
        'ok'
    """
    from cdp_spark.pipeline import StageReport

    cfg, lake = ctx.cfg, ctx.lake
    day = score_date or ctx.run_date
    client = configure_mlflow(cfg)
    alias = cfg.models.training.champion_alias
    champions = {
        m: c
        for m in MODELS
        if (c := find_champion(client, m, cfg.models.spec(m).registered_name, alias)) is not None
    }
    if not champions:
        message = (
            f"no model holds the '{alias}' alias yet in {cfg.mlflow_tracking_uri}: "
            "train first (`cdp train all` or `cdp run train`)"
        )
        ctx.progress(f"score: skipped: {message}")
        return StageReport(stage="score", status="skipped", figures={"reason": message})

    has_rows = lake.exists(FEATURES_TABLE) and (
        lake.read(FEATURES_TABLE).where(F.col("as_of") == F.lit(day)).limit(1).count() > 0
    )
    if not has_rows:
        ctx.progress(f"score: building {FEATURES_TABLE} at {day}")
        write_features(lake, cfg, as_of=day, run_date=ctx.run_date)
    features = lake.read(FEATURES_TABLE).where(F.col("as_of") == F.lit(day))

    scored = features
    for model, champ in champions.items():
        ctx.progress(f"score: {champ.name} v{champ.version}")
        scored = with_score(scored, ctx.spark, champ, f"{model}_score")
    score_cols = [f"{m}_score" for m in champions]
    feature_cols = [c for c in features.columns if c not in ("person_id", "as_of")]
    # Scored once: the deciles, the write and the drift all read the persisted scores.
    scored = scored.select("person_id", *feature_cols, *score_cols).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        cuts = dict(
            zip(
                score_cols,
                scored.approxQuantile(score_cols, [i / 10 for i in range(1, 10)], 0.001),
                strict=True,
            )
        )
        out_cols: list[Column] = [F.col("person_id")]
        for model in MODELS:
            if model in champions:
                col = F.col(f"{model}_score")
                out_cols += [
                    col.alias(f"{model}_score"),
                    decile(col, cuts[f"{model}_score"]).alias(f"{model}_decile"),
                    F.lit(champions[model].version).alias(f"{model}_model_version"),
                ]
            else:
                out_cols += [
                    F.lit(None).cast("double").alias(f"{model}_score"),
                    F.lit(None).cast("int").alias(f"{model}_decile"),
                    F.lit(None).cast("string").alias(f"{model}_model_version"),
                ]
        out_cols.append(F.lit(day).cast("date").alias("score_date"))
        _ensure(lake, SCORED_TABLE, SCORED_SCHEMA, ["score_date"])
        where = f"score_date = DATE'{day.isoformat()}'"
        # Sorted by person_id within the score date: the look-up reads one file of it.
        laid_out = serving_layout(scored.select(*out_cols), SCORED_TABLE, rows=scored.count())
        result = lake.overwrite(SCORED_TABLE, laid_out, where=where)

        monitoring = monitor(ctx, scored, champions, day)
    finally:
        scored.unpersist()
    alerts = [r for r in monitoring if r["alert"]]
    figures: dict[str, Any] = {
        "score_date": day.isoformat(),
        "rows": result.rows_written,
        **{f"{m}_version": c.version for m, c in champions.items()},
        "drift_alerts": len(alerts),
    }
    missing = [m for m in MODELS if m not in champions]
    if missing:
        figures["no_champion"] = ",".join(missing)
    rows = [
        {"model": r["model"], "metric": r["metric"], "value": round(r["value"], 4)} for r in alerts
    ]
    return StageReport(stage="score", figures=figures, rows=rows)


def monitor(
    ctx: RunContext, scored: DataFrame, champions: dict[str, Champion], day: date
) -> list[dict[str, Any]]:
    """Write this run's drift and score statistics to ``ops.model_monitoring``; warn on PSI.

    Example:
        >>> monitor(ctx, scored, champions, date(2026, 3, 1))[0]["metric"]  # doctest: +SKIP
        'psi:tenure_days'
    """
    import mlflow

    mcfg = ctx.cfg.models.monitoring
    rows: list[dict[str, Any]] = []
    for model, champ in champions.items():
        try:
            reference = mlflow.artifacts.load_dict(f"runs:/{champ.run_id}/{REFERENCE_ARTIFACT}")
        except Exception as exc:  # a model logged without a reference: no drift, but scores
            log.warning("%s v%s has no %s: %s", champ.name, champ.version, REFERENCE_ARTIFACT, exc)
            reference = {}
        rows += drift_rows(
            scored,
            reference,
            features=model_inputs(champ.uri),
            score_col=f"{model}_score",
            model=champ.name,
            version=champ.version,
            score_date=day,
            threshold=mcfg.psi_threshold,
        )
    for r in rows:
        if r["alert"]:
            log.warning(
                "drift: %s v%s %s = %.3f > %.3f",
                r["model"],
                r["model_version"],
                r["metric"],
                r["value"],
                r["threshold"],
            )
    _ensure(ctx.lake, MONITORING_TABLE, MONITORING_SCHEMA, ["score_date"])
    df = ctx.spark.createDataFrame(rows, MONITORING_SCHEMA)
    ctx.lake.overwrite(MONITORING_TABLE, df, where=f"score_date = DATE'{day.isoformat()}'")
    return rows
