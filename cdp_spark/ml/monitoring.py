"""Drift of features and scores against the training data, per scoring run.

At training, :func:`cdp_spark.ml.train.reference_distributions` stores, for every feature and
for the score, quantile bin edges and the share of training rows in each bin (one extra bin for
missing values) as the MLflow artifact ``monitoring/reference.json`` of the run. At scoring,
:func:`bin_counts` counts today's rows in the same bins in one distributed aggregation and the
population stability index (:func:`cdp_spark.ml.evaluate.psi`) compares the two.

Example:
    >>> rows = drift_rows(scored, reference, features=cols, score_col="churn_score",
    ...                   model="cdp_churn", version="2", score_date=day, threshold=0.2)
    ...                                                                   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    StringType,
    StructField,
    StructType,
)

from cdp_spark.ml.evaluate import psi

MONITORING_TABLE = "ops.model_monitoring"
MONITORING_SCHEMA = StructType(
    [
        StructField("score_date", DateType(), False),
        StructField("model", StringType(), False),
        StructField("model_version", StringType(), False),
        StructField("metric", StringType(), False),  # psi:<feature>, psi:score, score_mean...
        StructField("value", DoubleType(), True),
        StructField("threshold", DoubleType(), True),  # only for psi:* metrics
        StructField("alert", BooleanType(), False),
    ]
)


def bin_index(value: Column, edges: Sequence[float]) -> Column:
    """The bin of ``value``: the number of ``edges`` strictly below it; -1 when missing.

    Matches :func:`cdp_spark.ml.evaluate.bin_shares` (numpy ``searchsorted``, side left).

    Example:
        >>> df.select(bin_index(F.col("x"), [1.0, 2.0]))                  # doctest: +SKIP
    """
    below = [F.when(value > F.lit(float(e)), 1).otherwise(0) for e in edges]
    count = sum(below[1:], below[0]) if below else F.lit(0)
    return F.when(value.isNull() | F.isnan(value), F.lit(-1)).otherwise(count)


def bin_counts(
    df: DataFrame,
    reference: Mapping[str, Mapping[str, Sequence[float]]],
    columns: Mapping[str, str],
) -> dict[str, list[float]]:
    """Counts of ``df``'s rows per reference bin (value bins, then missing) for each column.

    ``columns`` maps a reference name to a column of ``df``. One aggregation, distributed.

    Example:
        >>> bin_counts(df, {"x": {"edges": [1.0]}}, {"x": "x"})            # doctest: +SKIP
        {'x': [3.0, 5.0, 0.0]}
    """
    aggs: list[Column] = []
    layout: dict[str, int] = {}
    for name, col in columns.items():
        edges = list(reference[name]["edges"])
        idx = bin_index(F.col(col).cast("double"), edges)
        bins = [*range(len(edges) + 1), -1]
        layout[name] = len(bins)
        aggs += [F.sum(F.when(idx == k, 1.0).otherwise(0.0)) for k in bins]
    row = df.agg(*aggs).first() if aggs else None
    values = [float(v or 0.0) for v in (row or [])]
    out: dict[str, list[float]] = {}
    pos = 0
    for name, n in layout.items():
        out[name] = values[pos : pos + n]
        pos += n
    return out


def drift_rows(
    df: DataFrame,
    reference: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    features: Sequence[str],
    score_col: str,
    model: str,
    version: str,
    score_date: date,
    threshold: float,
) -> list[dict[str, Any]]:
    """``ops.model_monitoring`` rows: PSI of each feature and of the score, score statistics.

    Features missing from the reference (a model trained on other features) are left out.

    Example:
        >>> drift_rows(scored, ref, features=["tenure_days"], score_col="churn_score",
        ...            model="cdp_churn", version="3", score_date=date(2026, 3, 1),
        ...            threshold=0.2)[0]["metric"]                         # doctest: +SKIP
        'psi:tenure_days'
    """
    columns = {f: f for f in features if f in reference}
    if "score" in reference:
        columns["score"] = score_col
    counts = bin_counts(df, reference, columns)
    rows: list[dict[str, Any]] = []

    def add(metric: str, value: float | None, limit: float | None = None) -> None:
        rows.append(
            {
                "score_date": score_date,
                "model": model,
                "model_version": version,
                "metric": metric,
                "value": value,
                "threshold": limit,
                "alert": bool(limit is not None and value is not None and value > limit),
            }
        )

    for name, actual in counts.items():
        add(f"psi:{name}", psi(reference[name]["shares"], actual), threshold)
    stats = df.agg(
        F.count(score_col),
        F.mean(score_col),
        F.stddev(score_col),
        F.min(score_col),
        F.max(score_col),
    ).first()
    assert stats is not None
    for metric, value in zip(
        ("rows_scored", "score_mean", "score_std", "score_min", "score_max"), stats, strict=True
    ):
        add(metric, None if value is None else float(value))
    return rows
