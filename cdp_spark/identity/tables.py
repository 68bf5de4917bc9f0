"""Names and schemas of the tables the identity stage writes (see docs/tables.md)."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdp_spark.identity.graph import EDGES_SCHEMA, EDGES_TABLE

CLUSTERS_TABLE = "gold.identity_clusters"
IDENTIFIERS_TABLE = "gold.identity_identifiers"
HISTORY_TABLE = "gold.person_id_history"
REVIEW_TABLE = "gold.identity_review"
METRICS_TABLE = "ops.identity_metrics"
LOG_TABLE = "ops.identity_log"

CLUSTERS_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("record_id", StringType(), False),
        StructField("person_id", StringType(), False),
        # No per-person figures here (a person's record count lived here once): a new record
        # would rewrite every row of its person, i.e. nearly every file (docs/decisions.md).
        StructField("run_date", DateType(), False),  # the run that last changed the row
        StructField("updated_at", TimestampType(), False),
    ]
)

IDENTIFIERS_SCHEMA = StructType(
    [
        StructField("id_type", StringType(), False),
        StructField("id_value", StringType(), False),
        StructField("person_id", StringType(), False),
        StructField("run_date", DateType(), False),
    ]
)

HISTORY_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("event", StringType(), False),  # merge | split
        StructField("old_person_id", StringType(), False),
        StructField("new_person_id", StringType(), False),
        StructField("records", LongType(), False),
        StructField("run_date", DateType(), False),
        StructField("recorded_at", TimestampType(), False),
    ]
)

REVIEW_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        # shared_identifier: a value linking more anchors than allowed, its links dropped;
        # oversized_cluster: a cluster over identity.oversize, split along its weakest links.
        StructField("review_type", StringType(), False),
        StructField(
            "node", StringType(), False
        ),  # the identifier node / the cluster's first record
        StructField("id_type", StringType(), True),
        StructField("measure", LongType(), False),  # anchors linked / identifiers in the cluster
        StructField("limit", LongType(), False),
        StructField("action", StringType(), False),
        StructField("person_ids", ArrayType(StringType()), False),  # persons it touches now
        StructField("recorded_at", TimestampType(), False),
    ]
)

METRICS_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("run_id", StringType(), False),
        StructField("mode", StringType(), False),  # full | incremental | eval
        StructField("metric", StringType(), False),
        StructField("dimension", StringType(), False),  # e.g. a source, a rule, a size bucket
        StructField("value", DoubleType(), False),
        StructField("recorded_at", TimestampType(), False),
    ]
)

LOG_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("last_batch_id", LongType(), False),  # silver batches <= this are resolved
        StructField("records", LongType(), False),  # records of this source taken this run
        StructField("mode", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("processed_at", TimestampType(), False),
    ]
)

ALL_TABLES: dict[str, StructType] = {
    EDGES_TABLE: EDGES_SCHEMA,
    CLUSTERS_TABLE: CLUSTERS_SCHEMA,
    IDENTIFIERS_TABLE: IDENTIFIERS_SCHEMA,
    HISTORY_TABLE: HISTORY_SCHEMA,
    REVIEW_TABLE: REVIEW_SCHEMA,
    METRICS_TABLE: METRICS_SCHEMA,
    LOG_TABLE: LOG_SCHEMA,
}
