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
   card scanned with a phone number). With ``identity.corroborate_shared`` on, anchor groups
   that are one person by their CRM attributes (same name key, birth dates equal or missing
   on one side) count as one: a person's two accounts sharing only a phone stay joined, a
   couple's landline (two first names) is still cut (:func:`guard_values`).
3. **Oversized** clusters (more identifiers or CRM accounts than ``identity.oversize``) are
   split along their weakest links (:func:`split_oversized`).

Example:
    >>> links, junk = drop_junk(links, cfg)                              # doctest: +SKIP
    >>> shared = shared_identifiers(links, pairs, cfg.identity)         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from cdp_spark import normalize as N
from cdp_spark.config import CdpConfig
from cdp_spark.identity.clusters import cluster_records
from cdp_spark.identity.config import CorroborateConfig, IdentityConfig
from cdp_spark.identity.graph import is_junk_identifier, node_value

ProgressFn = Callable[[str], None]

# Marks the links of a value kept by corroboration in silver.identity_edges (rule column), so
# `cdp why` / `cdp explain` show that a shared value was kept because its accounts agree.
CORROBORATED_SUFFIX = "+corroborated"

SHARED_SCHEMA = StructType(
    [
        StructField("node", StringType(), False),
        StructField("id_type", StringType(), False),
        StructField("anchors", LongType(), False),
        StructField("max_links", LongType(), False),
    ]
)

# Values over their limit by raw anchor groups, kept because the groups are one person.
CORROBORATED_SCHEMA = StructType(
    [
        StructField("node", StringType(), False),
        StructField("id_type", StringType(), False),
        StructField("anchors", LongType(), False),
        StructField("persons", LongType(), False),
        StructField("max_links", LongType(), False),
    ]
)

# What corroboration compares: one row per record of the attribute source.
ATTRIBUTES_SCHEMA = StructType(
    [
        StructField("rec", StringType(), False),
        StructField("name_key", StringType(), True),
        StructField("date_of_birth", StringType(), True),
    ]
)


@dataclass
class GuardedValues:
    """What the shared-value guard found: values cut, and values kept by corroboration."""

    shared: DataFrame  # SHARED_SCHEMA
    corroborated: DataFrame  # CORROBORATED_SCHEMA


def person_attributes(records: DataFrame, corroborate: CorroborateConfig) -> DataFrame:
    """``rec``, ``name_key``, ``date_of_birth`` (ISO string) of person records, for corroboration.

    ``records``: rows of :func:`~cdp_spark.identity.graph.records_of_source` over the silver
    table of ``corroborate.source`` (``name_key`` is the silver name key; without it the key is
    made from ``first_name`` / ``last_name``). Placeholder dates (``missing_dates``) and, when
    ``date_of_birth`` is not among the attributes, every date are null.

    Example:
        >>> attrs = person_attributes(crm, cfg.identity.corroborate_shared)  # doctest: +SKIP
        >>> attrs.first()                                                   # doctest: +SKIP
        Row(rec='rec:crm_contacts:C1', name_key='ilia ivanov', date_of_birth='1990-05-01')
    """
    cols = set(records.columns)
    if "name_key" in cols:
        name = F.col("name_key").cast("string")
    else:
        parts = [F.col(c) for c in ("first_name", "middle_name", "last_name") if c in cols]
        name = N.name_match_key(F.concat_ws(" ", *parts)) if parts else F.lit(None)
    dob = F.lit(None).cast("string")
    if "date_of_birth" in corroborate.attributes and "date_of_birth" in cols:
        iso = F.col("date_of_birth").cast("date").cast("string")
        dob = F.when(~iso.isin(list(corroborate.missing_dates)), iso)
    return records.select(
        "rec",
        F.when(F.trim(name) != "", name).cast("string").alias("name_key"),
        dob.alias("date_of_birth"),
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
    attributes: DataFrame | None = None,
) -> DataFrame:
    """Identifier values linking more anchors than their type allows (:data:`SHARED_SCHEMA`).

    ``links``: (rec, node, id_type) after junk removal; ``pairs``: fuzzy (rec_l, rec_r);
    ``attributes``: :func:`person_attributes`, for corroboration (see :func:`guard_values`).

    Example:
        >>> shared_identifiers(links, pairs, cfg.identity).select("node").first()  # doctest: +SKIP
        Row(node='loyalty_card:2000000000017')
    """
    return guard_values(links, pairs, identity, engine=engine, attributes=attributes).shared


def guard_values(
    links: DataFrame,
    pairs: DataFrame,
    identity: IdentityConfig,
    *,
    engine: str = "auto",
    attributes: DataFrame | None = None,
) -> GuardedValues:
    """Shared values (cut) and corroborated values (over the limit, kept): see the module doc.

    A non-anchor value counts the *persons* among the anchor groups it touches: with
    ``identity.corroborate_shared`` on and ``attributes`` given, groups whose records hold one
    name key and at most one birth date are persons by (name key, birth date), a group without
    a birth date joining those of its name; per name key that is as many persons as distinct
    birth dates (at least one). Every other group is a person of its own. A value is shared
    when its persons exceed ``max_links``, corroborated when its raw groups do but its persons
    do not.

    Example:
        >>> g = guard_values(links, pairs, cfg.identity, attributes=attrs)   # doctest: +SKIP
        >>> g.corroborated.select("node", "anchors", "persons").first()       # doctest: +SKIP
        Row(node='phone:+79120000001', anchors=2, persons=1)
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
    touched = (
        direct.unionByName(via).distinct().join(weak.select("node", "id_type").distinct(), "node")
    )
    weak_counts = (
        touched.groupBy("node", "id_type")
        .agg(F.countDistinct("label").alias("anchors"))
        .join(limits, "id_type")
    )
    corroborate = identity.corroborate_shared
    if corroborate.enabled and attributes is not None and corroborate.id_types:
        over = weak_counts.where(F.col("anchors") > F.col("max_links")).select("node")
        persons = _persons_per_value(
            touched.join(over, "node", "left_semi").where(
                F.col("id_type").isin(list(corroborate.id_types))
            ),
            rec_group,
            attributes,
        )
        weak_counts = weak_counts.join(persons, "node", "left").withColumn(
            "persons", F.coalesce("persons", "anchors")
        )
    else:
        weak_counts = weak_counts.withColumn("persons", F.col("anchors"))
    weak_counts = weak_counts.localCheckpoint()
    shared_weak = weak_counts.where(F.col("persons") > F.col("max_links"))
    corroborated = weak_counts.where(
        (F.col("anchors") > F.col("max_links")) & (F.col("persons") <= F.col("max_links"))
    )
    cols = SHARED_SCHEMA.fieldNames()
    return GuardedValues(
        shared=shared_anchor.select(*cols).unionByName(shared_weak.select(*cols)),
        corroborated=corroborated.select(*CORROBORATED_SCHEMA.fieldNames()),
    )


def _persons_per_value(
    touched: DataFrame, rec_group: DataFrame, attributes: DataFrame
) -> DataFrame:
    """``node``, ``persons``: the persons among the anchor groups (``label``) a value touches."""
    # A group is comparable when its attribute records agree on one name key and at most one
    # birth date; any disagreement inside it (a typo, a household joined by an e-mail) and it
    # stands alone, as without corroboration.
    # Only the groups of over-limit values are compared (a handful, at any scale).
    labels = rec_group.join(touched.select("label").distinct(), "label", "left_semi")
    group_keys = (
        attributes.join(labels, "rec")
        .groupBy("label")
        .agg(
            F.countDistinct("name_key").alias("n_names"),
            F.count(F.when(F.col("name_key").isNull(), 1)).alias("n_nameless"),
            F.countDistinct("date_of_birth").alias("n_dates"),
            F.first("name_key", ignorenulls=True).alias("name_key"),
            F.first("date_of_birth", ignorenulls=True).alias("date_of_birth"),
        )
        .where((F.col("n_names") == 1) & (F.col("n_nameless") == 0) & (F.col("n_dates") <= 1))
        .select("label", "name_key", "date_of_birth")
    )
    keyed = touched.select("node", "label").join(group_keys, "label", "left")
    # Per name key: one person per distinct birth date, groups without one joining any.
    by_name = (
        keyed.where(F.col("name_key").isNotNull())
        .groupBy("node", "name_key")
        .agg(F.greatest(F.countDistinct("date_of_birth"), F.lit(1)).alias("p"))
    )
    alone = keyed.where(F.col("name_key").isNull()).select("node", F.lit(1).alias("p"))
    return (
        by_name.select("node", "p")
        .unionByName(alone)
        .groupBy("node")
        .agg(F.sum("p").cast("long").alias("persons"))
    )


def mark_corroborated(links: DataFrame, corroborated: DataFrame) -> DataFrame:
    """``links`` with the rule of a corroborated value's links ending in ``+corroborated``.

    Idempotent, and the other way round too: a stored link whose value is no longer
    corroborated gets its plain rule back.

    Example:
        >>> mark_corroborated(links, guarded.corroborated).select("rule").first()  # doctest: +SKIP
        Row(rule='crm_account+corroborated')
    """
    base = F.regexp_replace("rule", F.lit(f"\\{CORROBORATED_SUFFIX}$"), F.lit(""))
    flagged = links.join(
        corroborated.select("node", F.lit(True).alias("__corroborated")), "node", "left"
    )
    rule = F.when(F.col("__corroborated"), F.concat(base, F.lit(CORROBORATED_SUFFIX))).otherwise(
        base
    )
    return flagged.withColumn("rule", rule).select(*links.columns)


def drop_shared(links: DataFrame, shared: DataFrame) -> DataFrame:
    """``links`` without the links of shared values.

    Example:
        >>> drop_shared(links, shared).count()                    # doctest: +SKIP
    """
    return links.join(shared.select("node"), "node", "left_anti")
