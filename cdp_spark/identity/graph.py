"""The identity graph: person-bearing records, the identifiers they hold, and the edges.

Nodes are identifier values (``email:ilya@x.ru``, ``phone:+79123456789``...) and source
records (``rec:orders:O123``). A deterministic match rule links a record to each identifier it
holds (one edge per record and identifier); a fuzzy rule links two CRM records directly. Two
records are the same person when a path joins them, unless a guard
(:mod:`cdp_spark.identity.guards`) cuts it.

Everything here is a pure ``DataFrame -> DataFrame`` transformation.

Example:
    >>> recs = records_of_source(silver_orders, "orders", cfg.sources["orders"])  # doctest: +SKIP
    >>> links = build_links(recs, "orders", cfg.identity)                       # doctest: +SKIP
    >>> links.select("node").first()
    Row(node='customer_id:C17563373')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdp_spark import normalize as N
from cdp_spark.config import CdpConfig, SourceConfig
from cdp_spark.identity.config import GROUP_TYPE, IdentityConfig

EDGES_TABLE = "silver.identity_edges"

EDGES_SCHEMA = StructType(
    [
        StructField("src", StringType(), False),
        StructField("dst", StringType(), False),
        StructField("rule", StringType(), False),
        StructField("score", DoubleType(), False),
        StructField("source", StringType(), False),
        StructField("record_id", StringType(), False),
        StructField("event_time", TimestampType(), True),
        StructField("run_date", DateType(), False),
    ]
)

# One row per person-bearing record (what the stage carries between its steps).
RECORD_COLUMNS = ("source", "record_id", "rec", "event_time", "_batch_id")

# One row per (record, identifier) link: the graph as the clustering sees it.
LINKS_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("record_id", StringType(), False),
        StructField("rec", StringType(), False),
        StructField("node", StringType(), False),
        StructField("id_type", StringType(), False),
        StructField("rule", StringType(), False),
        StructField("score", DoubleType(), False),
        StructField("event_time", TimestampType(), True),
    ]
)

FUZZY_PAIRS_SCHEMA = StructType(
    [
        StructField("record_id_l", StringType(), False),
        StructField("record_id_r", StringType(), False),
        StructField("score", DoubleType(), False),
        StructField("rule", StringType(), False),
    ]
)


def record_node(source: Column | str, record_id: Column) -> Column:
    """The node id of a record: ``rec:<source>:<record_id>``.

    Example:
        >>> df.select(record_node("orders", F.col("record_id")))   # doctest: +SKIP
        'rec:orders:O123'
    """
    src = F.lit(source) if isinstance(source, str) else source
    return F.concat(F.lit("rec:"), src, F.lit(":"), record_id)


def identifier_node(id_type: Column, id_value: Column) -> Column:
    """The node id of an identifier value: ``<type>:<value>``, e.g. ``email:ilya@x.ru``.

    Example:
        >>> df.select(identifier_node(F.lit("phone"), F.col("phone_e164")))  # doctest: +SKIP
    """
    return F.concat(id_type, F.lit(":"), id_value)


def split_node(node: Column) -> tuple[Column, Column]:
    """``(id_type, id_value)`` of an identifier node id (the value may contain ``:``).

    Example:
        >>> t, v = split_node(F.col("node"))                 # doctest: +SKIP
    """
    return F.substring_index(node, ":", 1), F.regexp_extract(node, r"^[^:]*:(.*)$", 1)


def record_id_column(keys: Sequence[str]) -> Column:
    """``record_id``: the source keys cast to string, joined with ``|`` (docs/tables.md).

    Example:
        >>> df.select(record_id_column(["transaction_id", "line_no"]))   # doctest: +SKIP
        'T000123|2'
    """
    return F.concat_ws("|", *[F.col(k).cast("string") for k in keys])


def silver_record_table(source_name: str, source: SourceConfig) -> str:
    """The silver table holding the person-bearing records of a source.

    The consent source keeps its records in ``silver.consent`` (current state per identifier,
    channel and purpose); every other source in ``silver.<source>``.

    Example:
        >>> silver_record_table("orders", cfg.sources["orders"])   # doctest: +SKIP
        'silver.orders'
    """
    from cdp_spark.standardize import silver_targets

    return silver_targets(source_name, source)[-1].table


def records_of_source(silver: DataFrame, source_name: str, source: SourceConfig) -> DataFrame:
    """The silver rows of a source with ``source``, ``record_id``, ``rec`` and ``event_time``.

    All silver columns are kept (the match rules read them).

    Example:
        >>> recs = records_of_source(silver_orders, "orders", src)  # doctest: +SKIP
        >>> recs.select("rec").first()[0]                          # doctest: +SKIP
        'rec:orders:ORD0004000000000'
    """
    time_col = source.event_time or source.order_by
    event_time = F.col(time_col).cast("timestamp") if time_col else F.lit(None).cast("timestamp")
    rid = record_id_column(source.keys)
    return silver.select(
        F.lit(source_name).alias("source"),
        rid.alias("record_id"),
        record_node(source_name, rid).alias("rec"),
        event_time.alias("event_time"),
        *[F.col(f"`{c}`") for c in silver.columns if c not in ("source", "record_id")],
    )


def _rule_links(records: DataFrame, name: str, rule: object) -> DataFrame:
    from cdp_spark.identity.config import MatchRule

    assert isinstance(rule, MatchRule)
    df = records.where(F.expr(rule.where)) if rule.where else records
    pairs: list[Column] = [
        F.struct(F.lit(t).alias("id_type"), F.col(c).cast("string").alias("id_value"))
        for c, t in rule.identifiers.items()
    ]
    if rule.same_person:
        value = F.concat_ws("|", *[F.col(c).cast("string") for c in rule.same_person])
        present = F.lit(True)
        for c in rule.same_person:
            present = present & F.col(c).isNotNull()
        pairs.append(
            F.struct(
                F.lit(GROUP_TYPE).alias("id_type"),
                F.when(present, F.concat(F.lit(f"{rule.source}:"), value)).alias("id_value"),
            )
        )
    if rule.typed_identifier is not None:
        value_col, type_col = rule.typed_identifier
        pairs.append(
            F.struct(
                F.lower(F.trim(F.col(type_col))).alias("id_type"),
                F.col(value_col).cast("string").alias("id_value"),
            )
        )
    exploded = df.select(
        "source", "record_id", "rec", "event_time", F.explode(F.array(*pairs)).alias("i")
    )
    return exploded.where(F.col("i.id_value").isNotNull() & (F.trim("i.id_value") != "")).select(
        "source",
        "record_id",
        "rec",
        identifier_node(F.col("i.id_type"), F.trim(F.col("i.id_value"))).alias("node"),
        F.col("i.id_type").alias("id_type"),
        F.lit(name).alias("rule"),
        F.lit(float(rule.score)).alias("score"),
        "event_time",
    )


def build_links(records: DataFrame, source_name: str, identity: IdentityConfig) -> DataFrame:
    """Apply the match rules of ``source_name``: one row per (record, identifier) link.

    Columns as :data:`LINKS_SCHEMA`. Identifier types a rule does not know (a consent row with
    ``identifier_type`` other than email or phone) are dropped. A value linked by two rules is
    kept once (the first rule by name).

    Example:
        >>> build_links(recs, "pos_sales", cfg.identity).select("node", "rule").first()
        ...                                                       # doctest: +SKIP
        Row(node='loyalty_card:2601684419182', rule='pos_receipt')
    """
    rules = [(n, r) for n, r in sorted(identity.rules.items()) if r.source == source_name]
    empty = records.sparkSession.createDataFrame([], LINKS_SCHEMA)
    if not rules:
        return empty
    out = None
    for name, rule in rules:
        links = _rule_links(records, name, rule)
        out = links if out is None else out.unionByName(links)
    assert out is not None
    known = [*identity.identifiers, GROUP_TYPE]
    return (
        out.where(F.col("id_type").isin(known))
        .groupBy("source", "record_id", "rec", "node", "id_type")
        .agg(
            F.min("rule").alias("rule"),
            F.max("score").alias("score"),
            F.max("event_time").alias("event_time"),
        )
        .select(*LINKS_SCHEMA.fieldNames())
    )


def node_value(node: str = "node") -> Column:
    """The value part of an identifier node column (everything after the first ``:``).

    Example:
        >>> df.select(node_value("dst"))                            # doctest: +SKIP
        'ilya@x.ru'
    """
    return F.expr(f"substr(`{node}`, instr(`{node}`, ':') + 1)")


def is_junk_identifier(id_type: Column, value: Column, cfg: CdpConfig) -> Column:
    """True for identifier values that are junk (never null).

    E-mails and phones go through the normaliser's blocklists (extended with
    ``standardize.junk_*`` and ``identity.identifiers.<type>.blocklist``); every type through
    its own ``blocklist`` and ``blocklist_patterns``.

    Example:
        >>> links.where(~is_junk_identifier(F.col("id_type"), node_value(), cfg))  # doctest: +SKIP
    """
    identity = cfg.identity
    emails = N.DEFAULT_EMAIL_BLOCKLIST
    emails = replace(
        emails,
        addresses=(
            *emails.addresses,
            *cfg.standardize.junk_emails,
            *identity.policy("email").blocklist,
        ),
    )
    phones = N.DEFAULT_PHONE_BLOCKLIST
    phones = replace(
        phones,
        numbers=(
            *phones.numbers,
            *cfg.standardize.junk_phones,
            *identity.policy("phone").blocklist,
        ),
    )
    conditions = [
        (id_type == "email") & N.is_junk_email(value, emails),
        (id_type == "phone") & N.is_junk_phone(value, phones),
    ]
    for t, policy in identity.identifiers.items():
        if policy.blocklist:
            conditions.append((id_type == t) & value.isin(list(policy.blocklist)))
        for pattern in policy.blocklist_patterns:
            conditions.append((id_type == t) & value.rlike(f"^(?:{pattern})$"))
    junk = conditions[0]
    for c in conditions[1:]:
        junk = junk | c
    return F.coalesce(junk, F.lit(False))


def links_to_edges(links: DataFrame, run_date: object) -> DataFrame:
    """Links as rows of ``silver.identity_edges`` (record node -> identifier node).

    Example:
        >>> links_to_edges(links, date(2026, 3, 1)).columns[:3]    # doctest: +SKIP
        ['src', 'dst', 'rule']
    """
    return links.select(
        F.col("rec").alias("src"),
        F.col("node").alias("dst"),
        "rule",
        "score",
        "source",
        "record_id",
        "event_time",
        F.lit(run_date).cast("date").alias("run_date"),
    )


def fuzzy_to_edges(pairs: DataFrame, source_name: str, run_date: object) -> DataFrame:
    """Fuzzy pairs of records of one source as edges (record node -> record node).

    The edge is filed under the left record; ``event_time`` is unknown (null).

    Example:
        >>> fuzzy_to_edges(pairs, "crm_contacts", date(2026, 3, 1)).first().src  # doctest: +SKIP
        'rec:crm_contacts:C001'
    """
    return pairs.select(
        record_node(source_name, F.col("record_id_l")).alias("src"),
        record_node(source_name, F.col("record_id_r")).alias("dst"),
        F.col("rule"),
        F.col("score").cast("double").alias("score"),
        F.lit(source_name).alias("source"),
        F.col("record_id_l").alias("record_id"),
        F.lit(None).cast("timestamp").alias("event_time"),
        F.lit(run_date).cast("date").alias("run_date"),
    )


def edges_to_links(edges: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split stored edges back into identifier links and record-record (fuzzy) pairs.

    Returns ``(links, pairs)``; ``pairs`` has ``rec_l``, ``rec_r``, ``score``, ``rule``.

    Example:
        >>> links, pairs = edges_to_links(lake.read("silver.identity_edges"))  # doctest: +SKIP
    """
    is_pair = F.col("dst").startswith("rec:")
    links = edges.where(~is_pair).select(
        "source",
        "record_id",
        F.col("src").alias("rec"),
        F.col("dst").alias("node"),
        F.substring_index(F.col("dst"), ":", 1).alias("id_type"),
        "rule",
        "score",
        "event_time",
    )
    pairs = edges.where(is_pair).select(
        F.col("src").alias("rec_l"), F.col("dst").alias("rec_r"), "score", "rule"
    )
    return links, pairs
