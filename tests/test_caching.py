"""broadcast_if_small broadcasts only small sides; release_local_blocks frees dropped blocks."""

from __future__ import annotations

import time

from pyspark.sql import SparkSession

from cdp_spark.caching import broadcast_if_small, release_local_blocks


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


def _stored_rdd_ids(spark: SparkSession) -> set[int]:
    infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()  # type: ignore[union-attr]
    return {int(info.id()) for info in infos}


def _checkpoint_and_drop(spark: SparkSession) -> None:
    # A stage-like helper: its checkpointed DataFrame goes out of scope when it returns.
    checkpointed = spark.range(5000).selectExpr("id", "id * 2 AS twice").localCheckpoint()
    assert checkpointed.count() == 5000


def test_release_local_blocks_frees_the_blocks_of_dropped_dataframes(spark: SparkSession) -> None:
    before = _stored_rdd_ids(spark)
    _checkpoint_and_drop(spark)
    new = _stored_rdd_ids(spark) - before
    assert new, "the local checkpoint should have stored blocks"
    release_local_blocks(spark)
    deadline = time.monotonic() + 20
    while new & _stored_rdd_ids(spark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not new & _stored_rdd_ids(spark)


def test_blocks_of_a_live_dataframe_survive_the_release(spark: SparkSession) -> None:
    before = _stored_rdd_ids(spark)
    kept = spark.range(3000).localCheckpoint()
    assert kept.count() == 3000
    new = _stored_rdd_ids(spark) - before
    release_local_blocks(spark)
    time.sleep(1)
    assert new <= _stored_rdd_ids(spark)
    assert kept.count() == 3000
