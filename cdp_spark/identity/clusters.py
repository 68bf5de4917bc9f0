"""Clusters of records: connected components of the identity graph, after the guards.

The graph is bipartite (records - identifiers) plus record-record fuzzy edges. Most records
(a page view) hold one identifier: they cannot join anything, so they are not sent to the
connected-components engine. Each record is represented by its smallest identifier node; the
engine sees only *star* edges from that representative to the record's other identifiers, the
fuzzy pairs between representatives, and a self-loop per representative. A record's cluster is
its representative's component, and a record without any identifier is a cluster of its own.

Example:
    >>> clusters = cluster_records(records, links, pairs, engine="auto")   # doctest: +SKIP
    >>> clusters.columns
    ['rec', 'component']
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ProgressFn = Callable[[str], None]


def record_representatives(records: DataFrame, links: DataFrame) -> DataFrame:
    """``rec``, ``rep``: a record's smallest identifier node, or the record node itself.

    Example:
        >>> record_representatives(records, links).first()        # doctest: +SKIP
        Row(rec='rec:orders:O1', rep='customer_id:C1')
    """
    reps = links.groupBy("rec").agg(F.min("node").alias("rep"))
    return (
        records.select("rec")
        .distinct()
        .join(reps, "rec", "left")
        .select("rec", F.coalesce("rep", "rec").alias("rep"))
    )


def graph_edges(reps: DataFrame, links: DataFrame, pairs: DataFrame) -> DataFrame:
    """The edges the components engine sees: stars, fuzzy pairs and self-loops (``src``, ``dst``).

    Example:
        >>> graph_edges(reps, links, pairs).columns               # doctest: +SKIP
        ['src', 'dst']
    """
    stars = (
        links.join(reps, "rec")
        .where(F.col("node") != F.col("rep"))
        .select(F.col("rep").alias("src"), F.col("node").alias("dst"))
    )
    rep_l = reps.select(F.col("rec").alias("rec_l"), F.col("rep").alias("src"))
    rep_r = reps.select(F.col("rec").alias("rec_r"), F.col("rep").alias("dst"))
    fuzzy = pairs.join(rep_l, "rec_l").join(rep_r, "rec_r").select("src", "dst")
    loops = reps.select(F.col("rep").alias("src"), F.col("rep").alias("dst"))
    return stars.unionByName(fuzzy).unionByName(loops).distinct()


def cluster_records(
    records: DataFrame,
    links: DataFrame,
    pairs: DataFrame,
    *,
    engine: str = "auto",
    progress: ProgressFn | None = None,
) -> DataFrame:
    """``rec``, ``component`` for every record: records joined by a path share a component.

    ``links``: (rec, node) after the guards; ``pairs``: (rec_l, rec_r) fuzzy links. The
    component label is the smallest node id of the component (internal; persistent ids are
    assigned by :mod:`cdp_spark.identity.persist`).

    Example:
        >>> cluster_records(records, links, pairs).groupBy("component").count()  # doctest: +SKIP
    """
    from cdp_spark.graph import connected_components

    # Materialised: the stars, the pairs, the loops and the answer all read it.
    reps = record_representatives(records, links).localCheckpoint()
    edges = graph_edges(reps, links, pairs)
    components = connected_components(edges, engine=engine, progress=progress)  # type: ignore[arg-type]
    return reps.join(
        components.select(F.col("node").alias("rep"), "component"), "rep", "left"
    ).select("rec", F.coalesce("component", "rep").alias("component"))
