"""A stand-in for the identity stage in benchmarks only: person_id from the generator's truth.

``data/landing/_truth/records.csv`` says which true person is behind each record, so a
benchmark can measure the models without depending on identity resolution's own errors (and
before the identity stage exists). The pipeline never reads the truth; this helper writes
``gold.identity_clusters`` into a *benchmark* lakehouse only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_spark.config import CdpConfig
from cdp_spark.storage import Lakehouse

CLUSTERS_SCHEMA = (
    "source string, record_id string, person_id string, run_date date, "
    "updated_at timestamp"
)


def write_truth_identity(
    spark: SparkSession, lake: Lakehouse, cfg: CdpConfig, truth_dir: Path, run_date: date
) -> int:
    """Write ``gold.identity_clusters`` from the truth files; returns the rows written."""
    truth = spark.read.option("header", True).csv(str(truth_dir / "records.csv"))
    parts: list[DataFrame] = []
    by_key = {
        "orders": "order_id",
        "pos_sales": "transaction_id",
        "web_events": "event_id",
        "support_tickets": "ticket_id",
        "crm_contacts": "customer_id",
    }
    for source, key in by_key.items():
        table = f"silver.{source}"
        if source not in cfg.sources or not lake.exists(table):
            continue
        keys = cfg.sources[source].keys
        t = (
            truth.where((F.col("source") == source) & (F.col("key_type") == key))
            .select(F.col("key").alias(key), "person_id")
            .dropDuplicates([key])
        )
        df = lake.read(table).join(t, key, "inner")
        parts.append(
            df.select(
                F.lit(source).alias("source"),
                F.concat_ws("|", *[F.col(k).cast("string") for k in keys]).alias("record_id"),
                "person_id",
            )
        )
    if "email_events" in cfg.sources and lake.exists("silver.email_events"):
        emails = (
            truth.where((F.col("source") == "identity") & (F.col("key_type") == "email"))
            .select(F.lower(F.trim("key")).alias("email_norm"), "person_id")
            .dropDuplicates(["email_norm"])
        )
        df = lake.read("silver.email_events").join(emails, "email_norm", "inner")
        keys = cfg.sources["email_events"].keys
        parts.append(
            df.select(
                F.lit("email_events").alias("source"),
                F.concat_ws("|", *[F.col(k).cast("string") for k in keys]).alias("record_id"),
                "person_id",
            )
        )
    clusters = (
        reduce(DataFrame.unionByName, parts)
        .dropDuplicates(["source", "record_id"])
        .withColumn("run_date", F.lit(run_date).cast("date"))
        .withColumn(
            "updated_at", F.lit(datetime.now(tz=UTC).replace(tzinfo=None)).cast("timestamp")
        )
    )
    schema = spark.createDataFrame([], CLUSTERS_SCHEMA).schema
    if not lake.exists("gold.identity_clusters"):
        lake.create("gold.identity_clusters", schema)
    return lake.overwrite("gold.identity_clusters", clusters).rows_written
