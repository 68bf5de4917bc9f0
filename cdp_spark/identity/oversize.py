"""Oversized clusters: detected, split along their weakest links, reported.

A cluster with more distinct identifiers than ``identity.oversize.max_identifiers`` or more CRM
accounts than ``max_customer_ids`` is not one person: some link inside it is wrong. It is split
level by level, weakest identifier type first (``identity.identifiers.<type>.strength``; fuzzy
links at ``identity.fuzzy_strength``): the cluster is re-formed from the links stronger than the
level (the *cores*), and a value of the weak level keeps its links only if all its records fall
in one core (a cookie seen with one account stays, a cookie between two accounts is cut). The
split stops at the first level after which no part is oversized.

Example:
    >>> clusters, report = split_oversized(clusters, links, pairs, cfg.identity)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_spark.identity.clusters import cluster_records
from cdp_spark.identity.config import GROUP_TYPE, IdentityConfig

ProgressFn = Callable[[str], None]

OVERSIZED_COLUMNS = ("rec", "node", "measure", "limit", "action")


def oversized_components(
    clusters: DataFrame, links: DataFrame, identity: IdentityConfig
) -> DataFrame:
    """``component``, ``identifiers``, ``customer_ids`` of the clusters over the limits.

    Example:
        >>> oversized_components(clusters, links, cfg.identity).count()   # doctest: +SKIP
        0
    """
    limits = identity.oversize
    stats = (
        links.where(F.col("id_type") != GROUP_TYPE)
        .join(clusters, "rec")
        .groupBy("component")
        .agg(
            F.countDistinct("node").alias("identifiers"),
            F.countDistinct(F.when(F.col("id_type") == "customer_id", F.col("node"))).alias(
                "customer_ids"
            ),
        )
    )
    return stats.where(
        (F.col("identifiers") > limits.max_identifiers)
        | (F.col("customer_ids") > limits.max_customer_ids)
    )


def split_oversized(
    clusters: DataFrame,
    links: DataFrame,
    pairs: DataFrame,
    identity: IdentityConfig,
    *,
    engine: str = "auto",
    progress: ProgressFn | None = None,
) -> tuple[DataFrame, DataFrame]:
    """``(clusters, report)``: oversized clusters re-split; ``report`` one row per record of
    an oversized cluster (``rec``, ``node`` = the cluster's smallest record, ``measure``,
    ``limit``, ``action``).

    Example:
        >>> clusters, report = split_oversized(clusters, links, pairs, identity)  # doctest: +SKIP
    """
    spark = clusters.sparkSession
    empty = spark.createDataFrame(
        [], "rec string, node string, measure long, limit long, action string"
    )
    big = oversized_components(clusters, links, identity).localCheckpoint()
    if big.isEmpty():
        return clusters, empty
    n_big = big.count()
    if progress:
        progress(f"identity: {n_big} oversized cluster(s), splitting")
    strengths = {str(t): p.strength for t, p in identity.identifiers.items()}
    # Lines of one receipt are one shopper: the strongest link there is.
    strengths[GROUP_TYPE] = max([*strengths.values(), identity.fuzzy_strength]) + 1
    strength_df = spark.createDataFrame(list(strengths.items()), "id_type string, strength int")
    sub_recs = (
        clusters.join(big.select("component"), "component", "left_semi")
        .select("rec", F.col("component").alias("old_component"))
        .localCheckpoint()
    )
    sub_links = (
        links.join(sub_recs.select("rec"), "rec", "left_semi")
        .join(strength_df, "id_type", "left")
        .fillna({"strength": 0})
    )
    sub_pairs = pairs.join(sub_recs.select(F.col("rec").alias("rec_l")), "rec_l", "left_semi")
    levels = sorted({*strengths.values(), identity.fuzzy_strength} - {strengths[GROUP_TYPE]})
    current = sub_links
    cut_at = None
    parts = None
    for level in levels:
        strong = current.where(F.col("strength") > level)
        strong_pairs = sub_pairs if identity.fuzzy_strength > level else sub_pairs.limit(0)
        cores = cluster_records(sub_recs, strong, strong_pairs, engine=engine)
        weak = current.where(F.col("strength") <= level)
        touching = (
            weak.join(cores, "rec")
            .groupBy("node")
            .agg(F.countDistinct("component").alias("cores"))
            .where(F.col("cores") <= 1)
            .select("node")
        )
        current = strong.unionByName(weak.join(touching, "node", "left_semi")).localCheckpoint()
        parts = cluster_records(sub_recs, current, strong_pairs, engine=engine).localCheckpoint()
        cut_at = level
        if oversized_components(parts, current, identity).isEmpty():
            break
    assert parts is not None
    action = f"split: links of strength <= {cut_at} between parts cut"
    first = sub_recs.groupBy("old_component").agg(F.min("rec").alias("node"))
    report = (
        sub_recs.join(first, "old_component")
        .join(big.withColumnRenamed("component", "old_component"), "old_component")
        .select(
            "rec",
            "node",
            F.col("identifiers").cast("long").alias("measure"),
            F.lit(identity.oversize.max_identifiers).cast("long").alias("limit"),
            F.lit(action).alias("action"),
        )
    )
    rest = clusters.join(sub_recs.select("rec"), "rec", "left_anti")
    return rest.unionByName(parts.select("rec", "component")), report
