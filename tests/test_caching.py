"""broadcast_if_small: the small side of a join with a stored table is broadcast, a big one not."""

from __future__ import annotations

from pyspark.sql import SparkSession

from cdp_spark.caching import broadcast_if_small


def _plan(df_join: object) -> str:
    return df_join._jdf.queryExecution().executedPlan().toString()  # type: ignore[attr-defined]


def test_small_side_is_broadcast_and_big_side_is_not(spark: SparkSession) -> None:
    stored = spark.range(1000).withColumnRenamed("id", "k")
    small = spark.range(0, 1000, 100).withColumnRenamed("id", "k")
    # Spark's own size-based broadcast off: only the hint can make a broadcast join.
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        joined = stored.join(broadcast_if_small(small, max_rows=10), "k", "left_semi")
        assert sorted(r.k for r in joined.collect()) == list(range(0, 1000, 100))
        assert "BroadcastHashJoin" in _plan(joined)
        # One row over the bound: the join shuffles (sort-merge) instead.
        big = stored.join(broadcast_if_small(small, max_rows=9), "k", "left_semi")
        assert "BroadcastHashJoin" not in _plan(big)
        assert big.count() == 10
    finally:
        spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")
