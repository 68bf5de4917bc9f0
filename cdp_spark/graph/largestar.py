"""The jar-free distributed engine: large-star / small-star in DataFrame operations.

Kiveris, Lattanzi, Mirrokni, Rastogi, Vassilvitskii, "Connected Components in MapReduce and
Beyond" (SoCC 2014). The graph is a set of edges ``(hi, lo)`` with ``hi > lo`` (long ids).
Two operations, each one shuffle keyed by a node ``u``, are alternated:

- large-star: ``m(u)`` = smallest of ``u`` and its neighbours; every neighbour ``v > u`` is
  re-linked to ``m(u)``;
- small-star: ``m(u)`` = smallest of ``u`` and its neighbours ``<= u``; ``u`` and those
  neighbours are re-linked to ``m(u)``.

Both keep every component connected and never add a link between components. Their common
fixed point is a forest of stars, each centred on its component's smallest id: then no
operation changes anything, which is the convergence test (one aggregation per round: every
node is either a centre, never a ``hi``, or a leaf, ``hi`` of exactly one edge and never a
``lo``). The paper proves O(log^2 n) rounds; identity graphs take a handful.

Example:
    >>> DataFrameEngine().components(edges)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp_spark.errors import CdpError
from cdp_spark.graph.components import ComponentsEngine, ProgressFn, nodes_of, relabel_by_smallest

log = logging.getLogger(__name__)


class DataFrameEngine(ComponentsEngine):
    """Large-star / small-star on Spark DataFrames; needs no jar, runs on any cluster.

    Node ids are hashed to longs (``xxhash64``), which needs no join; if two ids of the graph
    share a hash (odds ~ n^2 / 2^65: about 3 in a million at 10M nodes) the engine numbers the
    nodes by a sort instead. Each round is checkpointed (``checkpoint_dir``, or local
    checkpoints when it is None), so the plan stays one round long however many rounds run.

    Example:
        >>> DataFrameEngine(progress=print).components(edges).count()   # doctest: +SKIP
        connected components (dataframe): round 1, 12 edges, not converged
        ...
    """

    name = "dataframe"

    def __init__(
        self,
        *,
        checkpoint_dir: str | None = None,
        progress: ProgressFn | None = None,
        max_rounds: int = 100,
        hash_fn: Callable[[Column], Column] = F.xxhash64,
    ) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress or log.info
        self.max_rounds = max_rounds
        # Replaceable so a test can force hash collisions and exercise the sort-based ids.
        self.hash_fn = hash_fn

    def components(self, edges: DataFrame) -> DataFrame:
        if self.checkpoint_dir:
            edges.sparkSession.sparkContext.setCheckpointDir(self.checkpoint_dir)
        nodes, links = self._number(edges)
        stars = self._converge(links)
        roots = nodes.join(
            stars.select(F.col("hi").alias("id"), F.col("lo").alias("root")), "id", "left"
        ).select("node", F.coalesce("root", "id").alias("component"))
        # Roots are the smallest *ids*; the contract wants the smallest node *string*.
        return relabel_by_smallest(roots)

    def _number(self, edges: DataFrame) -> tuple[DataFrame, DataFrame]:
        """``nodes(node, id)`` and the distinct links ``(hi, lo)``, hi > lo, no self-loops."""
        nodes = self._materialize(nodes_of(edges).withColumn("id", self.hash_fn(F.col("node"))))
        collisions = nodes.groupBy("id").count().where("count > 1").limit(1).count()
        if collisions == 0:
            pairs = edges.select(
                self.hash_fn(F.col("src")).alias("a"), self.hash_fn(F.col("dst")).alias("b")
            )
        else:
            self.progress(
                "connected components (dataframe): node ids collide under the hash, "
                "numbering them by a sort instead"
            )
            # A sorted frame's monotonically_increasing_id ascends with the sort; materialised
            # because a re-run of the sort could sample other range bounds and renumber.
            nodes = self._materialize(
                nodes_of(edges).orderBy("node").withColumn("id", F.monotonically_increasing_id())
            )
            ids = nodes.select(F.col("node").alias("_n"), F.col("id").alias("_i"))
            pairs = (
                edges.join(ids, F.col("src") == F.col("_n"))
                .select("dst", F.col("_i").alias("a"))
                .join(ids, F.col("dst") == F.col("_n"))
                .select("a", F.col("_i").alias("b"))
            )
        links = (
            pairs.where(F.col("a") != F.col("b"))
            .select(F.greatest("a", "b").alias("hi"), F.least("a", "b").alias("lo"))
            .distinct()
        )
        return nodes, links

    def _converge(self, links: DataFrame) -> DataFrame:
        current = self._materialize(links)
        for round_no in range(1, self.max_rounds + 1):
            current = self._materialize(small_star(large_star(current)))
            n_edges, unsettled = star_forest_check(current)
            self.progress(
                f"connected components (dataframe): round {round_no}, {n_edges:,} edges, "
                + ("converged" if unsettled == 0 else f"{unsettled:,} nodes not settled")
            )
            if unsettled == 0:
                return current
        raise CdpError(
            f"connected components (dataframe) did not converge in {self.max_rounds} rounds",
            hint="this should not happen (the algorithm converges in O(log^2 n) rounds); "
            "report it with the graph's size, or use engine=local / graphframes",
        )

    def _materialize(self, df: DataFrame) -> DataFrame:
        # Checkpointing cuts the lineage: without it round k would replan all k rounds. The
        # previous round's blocks are freed by Spark's cleaner once nothing refers to them.
        return df.checkpoint(eager=True) if self.checkpoint_dir else df.localCheckpoint(eager=True)


def large_star(links: DataFrame) -> DataFrame:
    """Re-link every neighbour ``v > u`` of each node ``u`` to the smallest of ``u``'s
    neighbourhood (``u`` included). In: distinct ``(hi, lo)``, hi > lo. Out: the same, hash
    partitioned by ``hi`` so that :func:`small_star` needs no shuffle of its own.

    Example:
        >>> links = spark.createDataFrame([(3, 2), (2, 1)], "hi long, lo long")  # doctest: +SKIP
        >>> large_star(links).collect()  # doctest: +SKIP
        [Row(hi=3, lo=1)]
    """
    both = links.select(F.col("hi").alias("u"), F.col("lo").alias("v")).union(
        links.select(F.col("lo").alias("u"), F.col("hi").alias("v"))
    )
    smallest = F.least(F.min("v").over(Window.partitionBy("u")), F.col("u"))
    return (
        both.withColumn("m", smallest)
        .where(F.col("v") > F.col("u"))
        .select(F.col("v").alias("hi"), F.col("m").alias("lo"))
        # One shuffle by hi serves both the distinct and small-star's window (a distinct on
        # its own would shuffle by (hi, lo), then the window again by hi).
        .repartition("hi")
        .distinct()
    )


def small_star(links: DataFrame) -> DataFrame:
    """Re-link each node ``u`` and its neighbours ``< u`` to the smallest of them. In and out:
    distinct ``(hi, lo)`` with hi > lo.

    Example:
        >>> links = spark.createDataFrame([(3, 2), (3, 1)], "hi long, lo long")  # doctest: +SKIP
        >>> small_star(links).collect()  # doctest: +SKIP
        [Row(hi=3, lo=1), Row(hi=2, lo=1)]
    """
    m = F.min("lo").over(Window.partitionBy("hi"))
    # explode instead of a union of two selects: a union would compute the window twice.
    pair = F.explode(F.array(F.col("hi"), F.col("lo"))).alias("hi")
    return (
        links.withColumn("m", m)
        .select(pair, F.col("m").alias("lo"))
        .where(F.col("hi") != F.col("lo"))
        .distinct()
    )


def star_forest_check(links: DataFrame) -> tuple[int, int]:
    """``(number of links, nodes not yet in star shape)``; 0 unsettled means converged.

    Settled: a node that is never a ``hi`` (a centre) or that is the ``hi`` of exactly one link
    and never a ``lo`` (a leaf). One aggregation; it also counts the links for the progress.

    Example:
        >>> links = spark.createDataFrame([(3, 1), (2, 1)], "hi long, lo long")  # doctest: +SKIP
        >>> star_forest_check(links)  # doctest: +SKIP
        (2, 0)
    """
    ends = links.select(F.col("hi").alias("x"), F.lit(1).alias("h"), F.lit(0).alias("l")).union(
        links.select(F.col("lo").alias("x"), F.lit(0).alias("h"), F.lit(1).alias("l"))
    )
    per_node = ends.groupBy("x").agg(F.sum("h").alias("h"), F.max("l").alias("l"))
    unsettled = (F.col("h") > 1) | ((F.col("h") == 1) & (F.col("l") == 1))
    row = per_node.agg(
        F.coalesce(F.sum("h"), F.lit(0)).alias("links"),
        F.coalesce(F.sum(unsettled.cast("long")), F.lit(0)).alias("unsettled"),
    ).first()
    assert row is not None  # a global aggregation always returns one row
    return int(row["links"]), int(row["unsettled"])
