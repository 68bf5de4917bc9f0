"""Over-merge protection: junk values, shared identifiers, oversized clusters.

1. **Junk** values (``test@test.com``, ``0000000000``, configured blocklists) never link
   anyone: their links are removed before clustering (:func:`drop_junk`).
2. **Shared** values: an identifier that links more distinct *anchors* than its type's
   ``max_links`` is a household tablet, a family landline or the store's own loyalty card
   (:func:`shared_identifiers`). Its links are dropped; the records keep their other links.
   For anchor types (CRM customer id, e-mail) an anchor is a value of another anchor type
   (the CRM accounts an e-mail is used by); for the other types it is a group of accounts and
   e-mails that anchor links join (the *anchor group*), reached directly (the value sits in a
   record with an anchor) or through one other non-anchor value of the same record (a loyalty
   card scanned with a phone number).
3. **Oversized** clusters (more identifiers or CRM accounts than ``identity.oversize``) are
   split along their weakest links (:func:`split_oversized`).

Example:
    >>> links, junk = drop_junk(links, cfg)                              # doctest: +SKIP
    >>> shared = shared_identifiers(links, pairs, cfg.identity)         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from cdp_spark.config import CdpConfig
from cdp_spark.identity.clusters import cluster_records
from cdp_spark.identity.config import IdentityConfig
from cdp_spark.identity.graph import is_junk_identifier, node_value

ProgressFn = Callable[[str], None]

SHARED_SCHEMA = StructType(
    [
        StructField("node", StringType(), False),
        StructField("id_type", StringType(), False),
        StructField("anchors", LongType(), False),
        StructField("max_links", LongType(), False),
    ]
)


def drop_junk(links: DataFrame, cfg: CdpConfig) -> tuple[DataFrame, DataFrame]:
    """``(clean links, junk links)``: links to blocklisted values go to the second frame.

    Example:
        >>> clean, junk = drop_junk(links, cfg)                  # doctest: +SKIP
    """
    flagged = links.withColumn(
        "__junk", is_junk_identifier(F.col("id_type"), node_value("node"), cfg)
    )
    return (
        flagged.where(~F.col("__junk")).drop("__junk"),
        flagged.where(F.col("__junk")).drop("__junk"),
    )


def shared_identifiers(
    links: DataFrame,
    pairs: DataFrame,
    identity: IdentityConfig,
    *,
    engine: str = "auto",
) -> DataFrame:
    """Identifier values linking more anchors than their type allows (:data:`SHARED_SCHEMA`).

    ``links``: (rec, node, id_type) after junk removal; ``pairs``: fuzzy (rec_l, rec_r).

    Example:
        >>> shared_identifiers(links, pairs, cfg.identity).select("node").first()  # doctest: +SKIP
        Row(node='loyalty_card:2000000000017')
    """
    spark = links.sparkSession
    anchor_types = identity.anchor_types()
    limits = spark.createDataFrame(
        [(t, int(p.max_links)) for t, p in identity.identifiers.items() if p.max_links],
        "id_type string, max_links long",
    )
    # Materialised: every step below reads it.
    slim = links.select("rec", "node", "id_type").distinct().localCheckpoint()
    anchor_links = slim.where(F.col("id_type").isin(anchor_types))

    # 1. Anchor values: distinct values of the other anchor types in the same records.
    other = anchor_links.select(
        "rec", F.col("node").alias("other"), F.col("id_type").alias("other_type")
    )
    anchor_counts = (
        anchor_links.join(other, "rec")
        .where(F.col("id_type") != F.col("other_type"))
        .groupBy("node", "id_type")
        .agg(F.countDistinct("other").alias("anchors"))
    )
    shared_anchor = anchor_counts.join(limits, "id_type").where(
        F.col("anchors") > F.col("max_links")
    )

    # 2. Anchor groups: components of the anchor links (without shared anchors) + fuzzy pairs.
    trusted = anchor_links.join(shared_anchor.select("node"), "node", "left_anti")
    recs = trusted.select("rec").distinct()
    groups = cluster_records(recs, trusted, pairs, engine=engine)
    rec_group = groups.select("rec", F.col("component").alias("label")).localCheckpoint()

    # 3. Non-anchor values: distinct anchor groups reached directly or through one other
    #    non-anchor value of the same record.
    weak = slim.where(~F.col("id_type").isin(anchor_types))
    direct = weak.join(rec_group, "rec").select("node", "label").distinct()
    partner = weak.select("rec", F.col("node").alias("partner"))
    via = (
        weak.join(partner, "rec")
        .where(F.col("node") != F.col("partner"))
        .select("node", "partner")
        .distinct()
        .join(direct.withColumnRenamed("node", "partner"), "partner")
        .select("node", "label")
    )
    weak_counts = (
        direct.unionByName(via)
        .groupBy("node")
        .agg(F.countDistinct("label").alias("anchors"))
        .join(weak.select("node", "id_type").distinct(), "node")
    )
    shared_weak = weak_counts.join(limits, "id_type").where(F.col("anchors") > F.col("max_links"))
    cols = SHARED_SCHEMA.fieldNames()
    return shared_anchor.select(*cols).unionByName(shared_weak.select(*cols))


def drop_shared(links: DataFrame, shared: DataFrame) -> DataFrame:
    """``links`` without the links of shared values.

    Example:
        >>> drop_shared(links, shared).count()                    # doctest: +SKIP
    """
    return links.join(shared.select("node"), "node", "left_anti")
