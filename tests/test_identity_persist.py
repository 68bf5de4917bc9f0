"""Persistent person ids: join, merge (retired id mapped), split (largest part keeps the id)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from cdp_spark.identity.persist import (
    SALTS,
    IdEvent,
    assign_person_ids,
    greedy_assignment,
    spark_free_id,
)

CLUSTERS = "source string, record_id string, component string"
PREVIOUS = "source string, record_id string, person_id string"


def _run(
    spark: SparkSession,
    clusters: list[tuple[str, str, str]],
    previous: list[tuple[str, str, str]],
    known: list[str] | None = None,
) -> tuple[DataFrame, list[IdEvent]]:
    known_ids = spark.createDataFrame(
        [(k,) for k in (known if known is not None else {p for _, _, p in previous})],
        "person_id string",
    )
    return assign_person_ids(
        spark.createDataFrame(clusters, CLUSTERS),
        spark.createDataFrame(previous, PREVIOUS),
        known_ids,
        prefix="P",
    )


def test_new_clusters_get_deterministic_ids(spark: SparkSession) -> None:
    ids, events = _run(
        spark, [("orders", "O2", "c1"), ("orders", "O1", "c1"), ("web_events", "E1", "c2")], []
    )
    first = spark_free_id("orders:O1", "P", 0)
    second = spark_free_id("web_events:E1", "P", 0)
    assertDataFrameEqual(
        ids,
        spark.createDataFrame(
            [("orders", "O1", first), ("orders", "O2", first), ("web_events", "E1", second)],
            PREVIOUS,
        ),
    )
    assert events == []
    assert first.startswith("P") and len(first) == 17


def test_new_record_joining_a_cluster_gets_its_id(spark: SparkSession) -> None:
    ids, events = _run(
        spark,
        [("crm", "C1", "c"), ("orders", "O1", "c"), ("orders", "O9", "c")],
        [("crm", "C1", "PA"), ("orders", "O1", "PA")],
    )
    assertDataFrameEqual(
        ids,
        spark.createDataFrame(
            [("crm", "C1", "PA"), ("orders", "O1", "PA"), ("orders", "O9", "PA")], PREVIOUS
        ),
    )
    assert events == []


def test_merge_keeps_the_id_with_most_records_and_maps_the_retired_one(
    spark: SparkSession,
) -> None:
    ids, events = _run(
        spark,
        [("crm", "C1", "c"), ("orders", "O1", "c"), ("crm", "C2", "c")],
        [("crm", "C1", "PB"), ("orders", "O1", "PB"), ("crm", "C2", "PA")],
    )
    assert {r["person_id"] for r in ids.collect()} == {"PB"}
    assert events == [IdEvent("merge", "PA", "PB", 1)]


def test_split_keeps_the_id_for_the_largest_part(spark: SparkSession) -> None:
    ids, events = _run(
        spark,
        [("crm", "C1", "c1"), ("orders", "O1", "c1"), ("crm", "C2", "c2")],
        [("crm", "C1", "PA"), ("orders", "O1", "PA"), ("crm", "C2", "PA")],
    )
    new = spark_free_id("crm:C2", "P", 0)
    assertDataFrameEqual(
        ids,
        spark.createDataFrame(
            [("crm", "C1", "PA"), ("orders", "O1", "PA"), ("crm", "C2", new)], PREVIOUS
        ),
    )
    assert events == [IdEvent("split", "PA", new, 1)]


def test_a_retired_id_is_never_issued_again(spark: SparkSession) -> None:
    # crm:C2 once had its own id, since retired: re-forming around it must not reuse it.
    reused = spark_free_id("crm:C2", "P", 0)
    ids, _events = _run(spark, [("crm", "C2", "c")], [], known=[reused])
    got = ids.first()
    assert got is not None
    assert got["person_id"] == spark_free_id("crm:C2", "P", 1) != reused


def test_salting_goes_on_past_a_round_of_taken_salts(spark: SparkSession) -> None:
    # Two clusters re-form around retired ids; C2's first SALTS salted ids are taken too, so a
    # second round of salts is needed for it, and C3 takes its first free salt.
    known = [spark_free_id("crm:C2", "P", s) for s in range(SALTS + 1)]
    known += [spark_free_id("crm:C3", "P", 0), spark_free_id("crm:C3", "P", 2)]
    ids, _events = _run(spark, [("crm", "C2", "a"), ("crm", "C3", "b")], [], known=known)
    got = {r["record_id"]: r["person_id"] for r in ids.collect()}
    assert got == {
        "C2": spark_free_id("crm:C2", "P", SALTS + 1),
        "C3": spark_free_id("crm:C3", "P", 1),
    }


def test_greedy_assignment_merge_and_split_at_once() -> None:
    # c1 holds 3 of PA's records and 1 of PB's; c2 holds 2 of PB's and 1 of PA's.
    kept, retired, split_from = greedy_assignment(
        [("c1", "PA", 3), ("c1", "PB", 1), ("c2", "PB", 2), ("c2", "PA", 1), ("c3", "PA", 1)]
    )
    assert kept == {"c1": "PA", "c2": "PB"}
    assert retired == {}
    assert split_from == {"c3": ("PA", 1)}
