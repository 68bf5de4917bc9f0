"""Business KPIs per run (``gold.kpis``): CLV, customer equity, lifecycle, unification, repeat rate.

One row per KPI and run date: ``run_date``, ``kpi``, ``value`` (double, null when it cannot be
computed, e.g. a change with no earlier run) and ``detail`` (JSON text with the factors).
The formulas are in docs/profiles.md ("KPIs"); the per-person ``clv`` is a profile column.

Example:
    >>> build_kpis(profiles, cfg.profiles, run_date=date(2026, 3, 1), previous=None).show()
    ...                                                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType

from cdp_spark.profiles.build import days_before, run_end
from cdp_spark.profiles.config import ProfilesConfig
from cdp_spark.profiles.profile_config import LIFECYCLE_STAGES

KPIS_TABLE = "gold.kpis"
KPI_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("kpi", StringType(), False),
        StructField("value", DoubleType(), True),
        StructField("detail", StringType(), True),
    ]
)


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return round(float(num) / float(den), 6)


def kpi_figures(
    profiles: DataFrame,
    cfg: ProfilesConfig,
    *,
    run_date: date,
    previous: Mapping[str, float] | None,
    previous_date: date | None = None,
) -> list[tuple[str, float | None, dict[str, Any]]]:
    """The KPIs as ``(kpi, value, detail)``, from one aggregation pass over ``profiles``.

    ``previous`` maps ``lifecycle_count:<stage>`` to the counts of the last earlier run (None
    when there is none): ``lifecycle_change:<stage>`` is the difference.

    Example:
        >>> dict((k, v) for k, v, _ in kpi_figures(profiles, cfg.profiles,
        ...      run_date=d, previous=None))["repeat_purchase_rate"]          # doctest: +SKIP
        0.25
    """
    end = run_end(run_date)
    buyer = F.col("orders") > 0
    acquired = buyer & (F.col("first_purchase_at") >= days_before(end, cfg.kpis.acquisition_days))
    row = profiles.agg(
        F.count(F.lit(1)).alias("persons"),
        F.count_if(buyer).alias("customers"),
        F.count_if(F.col("orders") >= 2).alias("repeat"),
        F.sum("source_records").alias("records"),
        F.sum("revenue").alias("revenue"),
        F.sum(F.when(F.col("aov").isNotNull(), F.col("orders"))).alias("converted_orders"),
        F.avg(F.when(buyer, F.col("clv"))).alias("avg_clv"),
        F.sum(F.when(buyer, F.col("clv"))).alias("total_clv"),
        F.avg(F.when(buyer, F.col("purchase_frequency"))).alias("frequency"),
        F.avg(F.when(buyer, F.col("churn_rate"))).alias("churn"),
        F.count_if(acquired).alias("acquired"),
        *[F.count_if(F.col("lifecycle_stage") == s).alias(f"stage_{s}") for s in LIFECYCLE_STAGES],
    ).first()
    assert row is not None  # an aggregation without grouping always returns one row
    persons, customers = int(row["persons"]), int(row["customers"])
    avg_clv = float(row["avg_clv"]) if row["avg_clv"] is not None else None
    acquired_n = int(row["acquired"])
    aov = _ratio(row["revenue"], row["converted_orders"])
    out: list[tuple[str, float | None, dict[str, Any]]] = [
        ("persons", float(persons), {}),
        ("customers", float(customers), {"definition": "persons with at least one purchase"}),
        (
            "unification_rate",
            _ratio(row["records"], persons),
            {"source_records": int(row["records"] or 0), "persons": persons},
        ),
        (
            "repeat_purchase_rate",
            _ratio(row["repeat"], customers),
            {"repeat_customers": int(row["repeat"]), "customers": customers},
        ),
        ("revenue", round(float(row["revenue"] or 0.0), 2), {"currency": cfg.base_currency}),
        ("aov", aov, {"currency": cfg.base_currency}),
        (
            "purchase_frequency",
            round(float(row["frequency"]), 6) if row["frequency"] is not None else None,
            {"period_days": cfg.kpis.period_days, "over": "customers"},
        ),
        (
            "churn_rate",
            round(float(row["churn"]), 6) if row["churn"] is not None else None,
            {"over": "customers", "min_churn_rate": cfg.kpis.min_churn_rate},
        ),
        (
            "clv_avg",
            round(avg_clv, 2) if avg_clv is not None else None,
            {"gross_margin": cfg.kpis.gross_margin, "currency": cfg.base_currency},
        ),
        ("clv_total", round(float(row["total_clv"] or 0.0), 2), {"currency": cfg.base_currency}),
        (
            "customers_acquired",
            float(acquired_n),
            {"acquisition_days": cfg.kpis.acquisition_days},
        ),
        (
            "customer_equity",
            round(avg_clv * acquired_n, 2) if avg_clv is not None else None,
            {
                "clv_avg": round(avg_clv, 2) if avg_clv is not None else None,
                "customers_acquired": acquired_n,
                "acquisition_days": cfg.kpis.acquisition_days,
            },
        ),
    ]
    for stage in LIFECYCLE_STAGES:
        count = int(row[f"stage_{stage}"])
        out.append((f"lifecycle_count:{stage}", float(count), {}))
        out.append((f"lifecycle_share:{stage}", _ratio(count, persons), {"persons": persons}))
        before = None if previous is None else previous.get(f"lifecycle_count:{stage}", 0.0)
        out.append(
            (
                f"lifecycle_change:{stage}",
                None if before is None else float(count) - float(before),
                {"previous_run_date": previous_date.isoformat() if previous_date else None},
            )
        )
    return out


def build_kpis(
    profiles: DataFrame,
    cfg: ProfilesConfig,
    *,
    run_date: date,
    previous: Mapping[str, float] | None,
    previous_date: date | None = None,
) -> DataFrame:
    """``gold.kpis`` rows of one run (see :func:`kpi_figures`).

    Example:
        >>> build_kpis(profiles, cfg.profiles, run_date=d, previous=None).columns  # doctest: +SKIP
        ['run_date', 'kpi', 'value', 'detail']
    """
    rows = [
        (run_date, kpi, value, json.dumps(detail, sort_keys=True, ensure_ascii=False))
        for kpi, value, detail in kpi_figures(
            profiles, cfg, run_date=run_date, previous=previous, previous_date=previous_date
        )
    ]
    return profiles.sparkSession.createDataFrame(rows, KPI_SCHEMA)


def previous_lifecycle(
    kpis: DataFrame | None, run_date: date
) -> tuple[dict[str, float], date] | None:
    """The lifecycle counts of the latest run before ``run_date`` in ``gold.kpis``, if any.

    Example:
        >>> previous_lifecycle(lake.read("gold.kpis"), d)                 # doctest: +SKIP
        ({'lifecycle_count:active': 812.0, ...}, datetime.date(2026, 2, 28))
    """
    if kpis is None:
        return None
    earlier = kpis.where(
        (F.col("run_date") < F.lit(run_date)) & F.col("kpi").startswith("lifecycle_count:")
    )
    last = earlier.agg(F.max("run_date")).first()
    if last is None or last[0] is None:
        return None
    rows = earlier.where(F.col("run_date") == F.lit(last[0])).select("kpi", "value").collect()
    return {r["kpi"]: float(r["value"] or 0.0) for r in rows}, last[0]
