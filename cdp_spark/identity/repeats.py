"""Incremental identity: new records that only repeat what the graph already holds.

A day's batch is mostly page views on a known cookie, e-mail events of a known address, orders
of a known customer and logins on a cookie already tied to that customer. Such a record adds a
leaf to its person and nothing else: every guard counts distinct anchors reached through values
that share a record, the oversize limits count distinct identifiers, and the id rules count the
records a person held before. So when a new record

- holds one identifier, or two that an earlier record already held together,
- and every identifier it holds is a current, unshared identifier of one person
  (``gold.identity_identifiers``), none of them kept by corroboration (its edges' rule would
  differ) and none a receipt group,
- and that person is not part of an oversized cluster that was split,

a full run would give it that person and change nothing else. The stage attaches it directly
and re-resolves only the persons the other records touch (docs/identity.md, "Incremental
runs"); a repeat record whose person those others touch is re-resolved with them.

Example:
    >>> repeats = repeat_records(new_links, old_links, identifiers, blocked)  # doctest: +SKIP
    >>> repeats.columns
    ['source', 'record_id', 'rec', 'person_id']
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_spark.caching import broadcast_if_small
from cdp_spark.identity.config import GROUP_TYPE
from cdp_spark.identity.guards import CORROBORATED_SUFFIX

KEYS = ["source", "record_id"]


def repeat_records(
    new_links: DataFrame, old_links: DataFrame, identifiers: DataFrame, blocked: DataFrame
) -> DataFrame:
    """``(source, record_id, rec, person_id)`` of the records of ``new_links`` that repeat the
    graph (module docstring).

    ``new_links``: links (``LINKS_SCHEMA``) of records that were never resolved before, none in
    a fuzzy pair. ``old_links``: the stored links (``silver.identity_edges``). ``identifiers``:
    ``node, person_id`` of the current identifiers. ``blocked``: ``person_id`` of persons that
    must be re-resolved whatever their new records hold.
    """
    per_rec = new_links.groupBy(*KEYS, "rec").agg(
        F.count(F.lit(1)).alias("n"),
        F.max((F.col("id_type") == GROUP_TYPE).cast("int")).alias("grouped"),
        F.min("node").alias("a"),
        F.max("node").alias("b"),
    )
    candidates = per_rec.where((F.col("n") <= 2) & (F.col("grouped") == 0)).localCheckpoint()
    # One pass over the current identifiers (millions at 1M customers), filtered against the
    # batch's (broadcast) values where they are read, instead of two shuffled joins.
    values = candidates.select(F.col("a").alias("node")).unionByName(
        candidates.select(F.col("b").alias("node"))
    )
    owners = identifiers.join(broadcast_if_small(values.distinct()), "node", "left_semi")
    owners = broadcast_if_small(owners)
    owner_a = owners.select(F.col("node").alias("a"), F.col("person_id").alias("p_a"))
    owner_b = owners.select(F.col("node").alias("b"), F.col("person_id").alias("p_b"))
    known = (
        candidates.join(owner_a, "a")
        .join(owner_b, "b")
        .where(F.col("p_a") == F.col("p_b"))
        .select(*KEYS, "rec", "n", "a", "b", F.col("p_a").alias("person_id"))
        .localCheckpoint()
    )
    nodes = (
        known.select(F.col("a").alias("node"))
        .unionByName(known.select(F.col("b").alias("node")))
        .distinct()
        .localCheckpoint()
    )
    # The stored links are the biggest table here: the candidates' side is broadcast, so the
    # stored links are filtered where they are read instead of being shuffled.
    corroborated = (
        old_links.where(F.col("rule").endswith(CORROBORATED_SUFFIX))
        .join(broadcast_if_small(nodes), "node", "left_semi")
        .select("node")
        .distinct()
    )
    # Pairs of candidate values that an earlier record held together: only the two-value
    # candidates' values are looked up (one-value candidates hold a day's page views).
    pairs = known.where(F.col("n") == 2).select("a", "b").distinct().localCheckpoint()
    two_nodes = pairs.select(F.col("a").alias("node")).unionByName(
        pairs.select(F.col("b").alias("node"))
    )
    held = old_links.join(broadcast_if_small(two_nodes.distinct()), "node", "left_semi").select(
        "rec", "node"
    )
    seen = (
        held.select("rec", F.col("node").alias("a"))
        .join(held.select("rec", F.col("node").alias("b")), "rec")
        .join(broadcast_if_small(pairs), ["a", "b"], "left_semi")
        .select("a", "b")
        .distinct()
    )
    two = known.where(F.col("n") == 2).join(seen, ["a", "b"], "left_semi")
    out = known.where(F.col("n") == 1).unionByName(two)
    bad = broadcast_if_small(corroborated)
    return (
        out.join(bad.withColumnRenamed("node", "a"), "a", "left_anti")
        .join(bad.withColumnRenamed("node", "b"), "b", "left_anti")
        .join(broadcast_if_small(blocked.select("person_id").distinct()), "person_id", "left_anti")
        .select(*KEYS, "rec", "person_id")
    )
