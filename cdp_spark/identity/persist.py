"""Persistent person ids: a person keeps their ``person_id`` from one run to the next.

Given this run's clusters (record -> component) and the previous ids (record -> person_id):

- a cluster whose records all had one id, and that id's records are all in it, keeps the id;
- otherwise the (cluster, old id) pairs are ranked by how many records they share, most first
  (ties: the smaller old id, then the smaller component), and taken greedily: a cluster gets
  the first old id still free, an old id goes to one cluster only. So **on a merge the id
  holding most of the merged records survives**, and **on a split the part holding most of the
  old id's records keeps it**;
- an old id that no cluster took is *retired*: ``merge`` event, mapped to the id of the cluster
  that holds most of its records;
- a cluster left without an id gets a new one, ``<prefix><16 hex of SHA-256 of its smallest
  record "source:record_id">``; if the cluster came out of a split, a ``split`` event maps the
  old id to it. A new id never reuses an id issued before (a retired one included): on a
  collision the hash is salted (``...#1``, ``#2``) until it is free.

Example:
    >>> ids, events = assign_person_ids(clusters, previous, known, prefix="P")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from cdp_spark.caching import BROADCAST_MAX_ROWS


@dataclass(frozen=True)
class IdEvent:
    """A merge (``old`` retired into ``new``) or a split (``new`` split off ``old``)."""

    event: str
    old_person_id: str
    new_person_id: str
    records: int


def new_person_id(member: F.Column, prefix: str, salt: F.Column | None = None) -> F.Column:
    """The new id of a cluster whose smallest member is ``member`` ("source:record_id").

    Example:
        >>> df.select(new_person_id(F.lit("orders:O1"), "P"))     # doctest: +SKIP
        'P5f0c...'
    """
    text = member if salt is None else F.concat(member, F.lit("#"), salt.cast("string"))
    return F.concat(F.lit(prefix), F.substring(F.sha2(text, 256), 1, 16))


def greedy_assignment(
    overlaps: Iterable[tuple[str, str, int]],
) -> tuple[dict[str, str], dict[str, tuple[str, int]], dict[str, tuple[str, int]]]:
    """Pick an old id per cluster from ``(component, old_id, shared records)`` triples.

    Returns ``(kept, retired, split_from)``: ``kept`` component -> old id it keeps;
    ``retired`` old id -> (component holding most of its records, its records);
    ``split_from`` component without an id -> (old id with most records in it, records).

    Example:
        >>> greedy_assignment([("c1", "P1", 5), ("c1", "P2", 3)])
        ({'c1': 'P1'}, {'P2': ('c1', 3)}, {})
    """
    ranked = sorted(overlaps, key=lambda t: (-t[2], t[1], t[0]))
    kept: dict[str, str] = {}
    taken: set[str] = set()
    for comp, old, _n in ranked:
        if comp not in kept and old not in taken:
            kept[comp] = old
            taken.add(old)
    retired: dict[str, tuple[str, int]] = {}
    totals: dict[str, int] = {}
    split_from: dict[str, tuple[str, int]] = {}
    for comp, old, n in ranked:
        totals[old] = totals.get(old, 0) + n
        if old not in taken and old not in retired:
            retired[old] = (comp, 0)
        if comp not in kept and comp not in split_from:
            split_from[comp] = (old, n)
    retired = {old: (comp, totals[old]) for old, (comp, _) in retired.items()}
    return kept, retired, split_from


def assign_person_ids(
    clusters: DataFrame,
    previous: DataFrame,
    known_ids: DataFrame,
    *,
    prefix: str = "P",
) -> tuple[DataFrame, list[IdEvent]]:
    """``(source, record_id, person_id)`` for every clustered record, and the id events.

    ``clusters``: source, record_id, component. ``previous``: source, record_id, person_id
    (the ids these records had; empty on a first run). ``known_ids``: person_id, every id
    ever issued (current and retired), so that a new id never reuses one.

    Example:
        >>> ids, events = assign_person_ids(clusters, previous, known, prefix="P")  # doctest: +SKIP
        >>> [e.event for e in events]
        ['merge']
    """
    spark = clusters.sparkSession
    overlap = (
        clusters.join(previous, ["source", "record_id"])
        .groupBy("component", "person_id")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    overlap = overlap.withColumn("k_c", F.count(F.lit(1)).over(_window("component"))).withColumn(
        "k_p", F.count(F.lit(1)).over(_window("person_id"))
    )
    overlap = overlap.localCheckpoint()
    simple = overlap.where((F.col("k_c") == 1) & (F.col("k_p") == 1)).select(
        "component", "person_id"
    )
    # Merges and splits touch few clusters: they are settled on the driver.
    tangled = [
        (r["component"], r["person_id"], int(r["n"]))
        for r in overlap.where((F.col("k_c") > 1) | (F.col("k_p") > 1)).collect()
    ]
    kept, retired, split_from = greedy_assignment(tangled)
    kept_df = spark.createDataFrame(list(kept.items()) or [], "component string, person_id string")
    with_old = simple.unionByName(kept_df)

    members = clusters.groupBy("component").agg(
        F.min(F.concat("source", F.lit(":"), "record_id")).alias("member")
    )
    needing = members.join(with_old, "component", "left_anti")
    fresh = _fresh_ids(needing, known_ids, prefix)
    comp_ids = with_old.unionByName(fresh.select("component", "person_id")).localCheckpoint()

    events: list[IdEvent] = []
    if retired or split_from:
        lookup = {
            r["component"]: r["person_id"]
            for r in comp_ids.where(
                F.col("component").isin(list({*[c for c, _ in retired.values()], *split_from}))
            ).collect()
        }
        for old, (comp, n) in sorted(retired.items()):
            events.append(IdEvent("merge", old, lookup[comp], n))
        for comp, (old, n) in sorted(split_from.items()):
            events.append(IdEvent("split", old, lookup[comp], n))
    ids = clusters.join(comp_ids, "component").select("source", "record_id", "person_id")
    return ids, events


def _window(col: str) -> WindowSpec:
    return Window.partitionBy(col)


# Salts tried per clashing cluster and round (a second round is needed only if all are taken).
SALTS = 4


def _fresh_ids(needing: DataFrame, known_ids: DataFrame, prefix: str) -> DataFrame:
    """New ids for ``(component, member)``; salted until none collides with a known id."""
    known = known_ids.select("person_id")
    candidate = needing.select(
        "component",
        "member",
        F.lit(0).alias("salt"),
        new_person_id(F.col("member"), prefix).alias("person_id"),
    ).localCheckpoint()
    wanted = candidate.select("person_id")
    if candidate.count() <= BROADCAST_MAX_ROWS:
        # An incremental run's few new ids filter the known ids where they are read.
        wanted = F.broadcast(wanted)
    taken_ids = known.join(wanted, "person_id", "left_semi").distinct()
    clashing = candidate.join(taken_ids, "person_id", "left_semi")
    if clashing.isEmpty():
        return candidate
    # Rare (a cluster re-formed around a record whose id was retired), but a day of merges and
    # splits holds some: settled on the driver, every clashing cluster's next SALTS salts
    # checked against the known ids in one query per round, not one scan per salt tried.
    spark = needing.sparkSession
    pending = sorted((r["component"], r["member"]) for r in clashing.collect())
    taken = {r["person_id"] for r in clashing.select("person_id").collect()}
    rows: list[tuple[str, str, int, str]] = []
    first = 1
    while pending:
        salts = range(first, first + SALTS)
        tries = {key: [(s, spark_free_id(key[1], prefix, s)) for s in salts] for key in pending}
        asked = spark.createDataFrame(
            [(pid,) for options in tries.values() for _s, pid in options], "person_id string"
        )
        taken |= {
            r["person_id"]
            for r in known.join(F.broadcast(asked), "person_id", "left_semi").collect()
        }
        left: list[tuple[str, str]] = []
        for key in pending:
            free = next(((s, pid) for s, pid in tries[key] if pid not in taken), None)
            if free is None:
                left.append(key)
            else:
                taken.add(free[1])
                rows.append((key[0], key[1], *free))
        pending, first = left, first + SALTS
    fixed = spark.createDataFrame(
        rows, "component string, member string, salt int, person_id string"
    )
    return candidate.join(clashing.select("component"), "component", "left_anti").unionByName(fixed)


def spark_free_id(member: str, prefix: str, salt: int) -> str:
    """The id :func:`new_person_id` gives ``member`` with ``salt``, computed in Python.

    Example:
        >>> spark_free_id("orders:O1", "P", 0) == spark_free_id("orders:O1", "P", 0)
        True
    """
    import hashlib

    text = member if salt == 0 else f"{member}#{salt}"
    return prefix + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
