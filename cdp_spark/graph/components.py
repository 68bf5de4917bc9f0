"""Connected components of an identity graph, with three engines behind one interface.

Every engine takes the same edge DataFrame (string columns ``src``, ``dst``) and returns the
same answer: one row per node with ``component`` = the smallest node id of its component
(string order, i.e. UTF-8 byte order, as Spark compares strings). So a component's id is
deterministic and the engines can replace one another without changing a single cluster.

- :class:`GraphFramesEngine`: GraphFrames ``connectedComponents`` (needs the graphframes jar).
- :class:`DataFrameEngine`: the large-star / small-star algorithm (Kiveris et al. 2014) in
  plain DataFrame operations; needs no jar and scales out like any Spark job.
- :class:`LocalEngine`: collects the edges to the driver and runs
  ``scipy.sparse.csgraph.connected_components``; for graphs that fit in the driver's memory.

Example:
    >>> edges = spark.createDataFrame([("email:b", "phone:1"), ("email:a", "email:a")],
    ...                               "src string, dst string")   # doctest: +SKIP
    >>> connected_components(edges, engine="local").orderBy("node").show()   # doctest: +SKIP
    +-------+---------+
    |   node|component|
    +-------+---------+
    |email:a|  email:a|
    |email:b|  email:b|
    |phone:1|  email:b|
    +-------+---------+
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from cdp_spark.errors import EngineUnavailableError, SchemaError

log = logging.getLogger(__name__)

EngineName = Literal["auto", "graphframes", "dataframe", "local"]
ProgressFn = Callable[[str], None]

# The output contract of every engine.
COMPONENTS_SCHEMA = StructType(
    [StructField("node", StringType(), False), StructField("component", StringType(), False)]
)

# Up to this many edges "auto" collects the graph to the driver (see docs/decisions.md).
DEFAULT_LOCAL_MAX_EDGES = 2_000_000


class ComponentsEngine(ABC):
    """One way of computing connected components; see the module docstring for the contract.

    ``edges`` given to :meth:`components` are already clean: string ``src`` and ``dst``, no
    nulls (a self-loop stands for an isolated node).
    """

    name: ClassVar[str]

    @abstractmethod
    def components(self, edges: DataFrame) -> DataFrame:
        """``(node string, component string)``, component = smallest node id of the component."""


class LocalEngine(ComponentsEngine):
    """scipy on the driver: edges collected as Arrow, ids factorised, components labelled.

    Spark's per-stage overhead dominates small graphs; one pass of scipy over arrays does not.
    The graph must fit in the driver's memory: :func:`connected_components` uses this engine
    only up to ``local_max_edges`` edges, unless asked for it explicitly.

    Example:
        >>> LocalEngine().components(edges).count()   # doctest: +SKIP
        3
    """

    name = "local"

    def components(self, edges: DataFrame) -> DataFrame:
        table = edges.select("src", "dst").toArrow()
        nodes, component = components_of_arrays(table.column("src"), table.column("dst"))
        result = pa.table({"node": nodes, "component": component})
        return edges.sparkSession.createDataFrame(result, schema=COMPONENTS_SCHEMA)


def components_of_arrays(
    src: pa.Array | pa.ChunkedArray, dst: pa.Array | pa.ChunkedArray
) -> tuple[pa.Array, pa.Array]:
    """Connected components of the edges ``src[i] - dst[i]`` (Arrow string arrays).

    Returns ``(nodes, component)``: every distinct node once, in string order, and the
    smallest node of its component. The single-machine core of :class:`LocalEngine` (and the
    benchmark's reference). Arrow's C++ hashing and sorting do the string work: pandas'
    factorize over Python strings was 5x slower (docs/decisions.md).

    Example:
        >>> nodes, component = components_of_arrays(pa.array(["b", "c"]), pa.array(["a", "c"]))
        >>> nodes.to_pylist(), component.to_pylist()
        (['a', 'b', 'c'], ['a', 'a', 'c'])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    ends = pa.chunked_array([*_chunks(src), *_chunks(dst)]).combine_chunks()
    encoded = pc.dictionary_encode(ends)
    distinct = encoded.dictionary
    n_edges, n_nodes = len(src), len(distinct)
    if n_nodes == 0:
        empty = pa.array([], distinct.type)
        return empty, empty
    # Renumber nodes by their rank in string order, so "the smallest node" of a component is
    # its smallest number, found with integer arithmetic only.
    order = pc.sort_indices(distinct).to_numpy()
    rank = np.empty(n_nodes, dtype=np.int64)
    rank[order] = np.arange(n_nodes)
    codes = rank[encoded.indices.to_numpy()]
    nodes = distinct.take(pa.array(order))
    graph = coo_matrix(
        (np.ones(n_edges, dtype=np.int8), (codes[:n_edges], codes[n_edges:])),
        shape=(n_nodes, n_nodes),
    )
    _, labels = scipy_components(graph, directed=False)
    smallest = np.full(labels.max() + 1, n_nodes, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n_nodes))
    return nodes, nodes.take(pa.array(smallest[labels]))


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


class GraphFramesEngine(ComponentsEngine):
    """GraphFrames' ``connectedComponents``, relabelled with the smallest node id.

    GraphFrames numbers components with longs that depend on its internals; the relabelling
    makes its output identical to the other engines'. ``graph_factory`` is the GraphFrame class
    (replaceable so the translation around it can be tested without the jar).

    Example:
        >>> GraphFramesEngine().components(edges)   # doctest: +SKIP
    """

    name = "graphframes"

    def __init__(
        self,
        *,
        checkpoint_dir: str | None = None,
        graph_factory: Callable[[DataFrame, DataFrame], object] | None = None,
    ) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.graph_factory = graph_factory

    def components(self, edges: DataFrame) -> DataFrame:
        factory = self.graph_factory
        if factory is None:
            from graphframes import GraphFrame

            factory = GraphFrame
        vertices = nodes_of(edges).withColumnRenamed("node", "id")
        graph = factory(vertices, edges.select("src", "dst"))
        if self.checkpoint_dir:
            edges.sparkSession.sparkContext.setCheckpointDir(self.checkpoint_dir)
        labelled = graph.connectedComponents(  # type: ignore[union-attr]
            algorithm="graphframes",
            # -1: let adaptive query execution handle the skew of a giant component, which the
            # GraphFrames docs recommend over their manual broadcast.
            broadcastThreshold=-1,
            use_local_checkpoints=self.checkpoint_dir is None,
        )
        return relabel_by_smallest(labelled.select(F.col("id").alias("node"), "component"))


def nodes_of(edges: DataFrame) -> DataFrame:
    """Every distinct node of ``edges`` (one column ``node``).

    Example:
        >>> nodes_of(edges).count()   # doctest: +SKIP
        3
    """
    return (
        edges.select(F.col("src").alias("node"))
        .union(edges.select(F.col("dst").alias("node")))
        .distinct()
    )


def relabel_by_smallest(labelled: DataFrame) -> DataFrame:
    """Replace any component label by the smallest node id carrying that label.

    ``labelled`` has ``node`` (string) and ``component`` (any type); the result follows
    :data:`COMPONENTS_SCHEMA`.

    Example:
        >>> labelled = spark.createDataFrame(
        ...     [("b", 7), ("a", 7)], "node string, component long")   # doctest: +SKIP
        >>> relabel_by_smallest(labelled).collect()   # doctest: +SKIP
        [Row(node='b', component='a'), Row(node='a', component='a')]
    """
    smallest = labelled.groupBy("component").agg(F.min("node").alias("_smallest"))
    return labelled.join(smallest, "component").select(
        "node", F.col("_smallest").alias("component")
    )


_ENGINES = ("graphframes", "dataframe", "local")


def connected_components(
    edges: DataFrame,
    *,
    engine: EngineName = "auto",
    local_max_edges: int = DEFAULT_LOCAL_MAX_EDGES,
    checkpoint_dir: str | None = None,
    progress: ProgressFn | None = None,
) -> DataFrame:
    """Connected components of ``edges``: ``node``, ``component`` = smallest node id in it.

    ``edges`` needs string columns ``src`` and ``dst``; the graph is undirected. A self-loop
    (``src == dst``) brings in a node without linking it to anything; a null end does the same
    for the other end, and a row with both ends null is ignored.

    ``engine``: ``"auto"`` picks GraphFrames when its jar is loadable, else ``"local"`` when
    the graph has at most ``local_max_edges`` edges, else ``"dataframe"``. Naming an engine
    that cannot run raises :class:`~cdp_spark.errors.EngineUnavailableError`. The choice is
    logged and passed to ``progress`` (e.g. ``ctx.progress``). ``checkpoint_dir``: where the
    iterative engines checkpoint; ``None`` uses local checkpoints (executor disk).

    Example:
        >>> edges = spark.createDataFrame(
        ...     [("b", "c"), ("a", "a")], "src string, dst string")   # doctest: +SKIP
        >>> sorted(connected_components(edges).collect())   # doctest: +SKIP
        [Row(node='a', component='a'), Row(node='b', component='b'),
         Row(node='c', component='b')]
    """
    clean = _clean_edges(edges)
    say = progress or log.info
    chosen, why = _choose(clean, engine, local_max_edges)
    message = f"connected components: engine {chosen} ({why})"
    log.info(message)
    if progress is not None:
        say(message)
    return make_engine(chosen, checkpoint_dir=checkpoint_dir, progress=progress).components(clean)


def make_engine(
    name: str,
    *,
    checkpoint_dir: str | None = None,
    progress: ProgressFn | None = None,
) -> ComponentsEngine:
    """The engine object for a concrete engine name (no availability check).

    Example:
        >>> make_engine("local").name
        'local'
    """
    if name == "local":
        return LocalEngine()
    if name == "graphframes":
        return GraphFramesEngine(checkpoint_dir=checkpoint_dir)
    if name == "dataframe":
        from cdp_spark.graph.largestar import DataFrameEngine

        return DataFrameEngine(checkpoint_dir=checkpoint_dir, progress=progress)
    raise EngineUnavailableError(
        f"unknown connected-components engine {name!r}",
        hint=f"use auto or one of {', '.join(_ENGINES)} (engines.connected_components)",
    )


def graphframes_available(spark: SparkSession) -> bool:
    """True when the session's JVM can load GraphFrames (the test ``cdp doctor`` reports).

    Example:
        >>> graphframes_available(spark)   # doctest: +SKIP
        False
    """
    from cdp_spark.jvm import jvm_class_available
    from cdp_spark.session import GRAPHFRAMES_CLASS

    return jvm_class_available(spark, GRAPHFRAMES_CLASS)


def _choose(edges: DataFrame, engine: str, local_max_edges: int) -> tuple[str, str]:
    if engine not in (*_ENGINES, "auto"):
        make_engine(engine)  # raises the error naming the choices
    spark = edges.sparkSession
    if engine == "graphframes":
        if not graphframes_available(spark):
            raise EngineUnavailableError(
                "connected-components engine 'graphframes' asked for, but the JVM cannot load "
                "org.graphframes.GraphFrame (the graphframes jar is not on the classpath)",
                hint="add io.graphframes:graphframes-spark4_2.13 to spark.packages or its jar to "
                "spark.jars_dir, or set engines.connected_components to auto, dataframe or local",
            )
        return "graphframes", "asked for"
    if engine in ("dataframe", "local"):
        return engine, "asked for"
    if graphframes_available(spark):
        return "graphframes", "auto: GraphFrames jar present"
    # limit() lets the count stop early on a big graph.
    n = edges.limit(local_max_edges + 1).count()
    if n <= local_max_edges:
        return "local", f"auto: no GraphFrames jar, {n:,} edges <= local_max_edges"
    return "dataframe", f"auto: no GraphFrames jar, more than {local_max_edges:,} edges"


def _clean_edges(edges: DataFrame) -> DataFrame:
    missing = [c for c in ("src", "dst") if c not in edges.columns]
    if missing:
        raise SchemaError(
            f"edges lack column(s) {', '.join(missing)}; present: {', '.join(edges.columns)}",
            hint="pass a DataFrame with string columns src and dst",
        )
    types = dict(edges.dtypes)
    wrong = [f"{c} is {types[c]}" for c in ("src", "dst") if types[c] != "string"]
    if wrong:
        raise SchemaError(
            f"edges: src and dst must be strings ({', '.join(wrong)})",
            hint="cast the node ids to strings, e.g. 'email:' || value",
        )
    src, dst = F.col("src"), F.col("dst")
    return edges.select(F.coalesce(src, dst).alias("src"), F.coalesce(dst, src).alias("dst")).where(
        F.col("src").isNotNull()
    )
