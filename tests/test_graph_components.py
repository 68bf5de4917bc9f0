"""Connected components: every engine against networkx on seeded random graphs, engine choice."""

from __future__ import annotations

import itertools
import random
from typing import ClassVar

import networkx as nx
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from cdp_spark.errors import EngineUnavailableError, SchemaError
from cdp_spark.graph import COMPONENTS_SCHEMA, GraphFramesEngine, connected_components
from cdp_spark.graph.components import relabel_by_smallest

EDGE_SCHEMA = "src string, dst string"
KINDS = ("chains", "stars", "small", "giant", "mixed")
SEEDS = (1, 2)


def random_graph(kind: str, seed: int) -> list[tuple[str, str]]:
    """A few hundred edges shaped like ``kind``, with node names unrelated to the structure.

    Every graph also gets duplicate edges (same and reversed direction) and a few self-loops
    (isolated nodes), so each engine meets them all.
    """
    rng = random.Random(seed)
    prefixes = ["email", "phone", "cust", "loyalty", "Device", "é"]
    nodes = [f"{rng.choice(prefixes)}:{rng.randrange(10**6):06d}-{i}" for i in range(400)]
    rng.shuffle(nodes)
    it = iter(nodes)
    edges: list[tuple[str, str]] = []

    def link(a: str, b: str) -> None:
        edges.append((a, b) if rng.random() < 0.5 else (b, a))

    def tree(size: int) -> list[str]:
        members = [next(it) for _ in range(size)]
        for i in range(1, size):
            link(members[i], members[rng.randrange(i)])
        return members

    if kind == "chains":
        for _ in range(6):
            chain = [next(it) for _ in range(rng.randint(5, 50))]
            for a, b in itertools.pairwise(chain):
                link(a, b)
    elif kind == "stars":
        for _ in range(6):
            centre, leaves = next(it), [next(it) for _ in range(rng.randint(3, 40))]
            for leaf in leaves:
                link(centre, leaf)
    elif kind == "small":
        for _ in range(80):
            tree(rng.randint(1, 4))
    elif kind == "giant":
        giant = tree(200)
        for _ in range(60):  # extra edges make cycles
            link(rng.choice(giant), rng.choice(giant))
        for _ in range(15):
            tree(rng.randint(2, 3))
    else:  # mixed: a chain, a star, small trees and a tree, joined in places
        chain = [next(it) for _ in range(30)]
        for a, b in itertools.pairwise(chain):
            link(a, b)
        centre = next(it)
        for _ in range(25):
            link(centre, next(it))
        groups = [tree(rng.randint(1, 5)) for _ in range(30)]
        link(chain[-1], centre)
        link(groups[0][0], chain[3])
    for _ in range(8):
        node = next(it)
        edges.append((node, node))  # an isolated node
    for a, b in rng.sample(edges, k=min(20, len(edges))):
        edges.append((a, b) if rng.random() < 0.5 else (b, a))
    rng.shuffle(edges)
    return edges


def oracle(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    graph = nx.Graph()
    graph.add_edges_from(edges)
    return [(node, min(members)) for members in nx.connected_components(graph) for node in members]


def edges_df(spark: SparkSession, edges: list[tuple[str, str | None]]) -> DataFrame:
    return spark.createDataFrame(edges, EDGE_SCHEMA)


def expected_df(spark: SparkSession, rows: list[tuple[str, str]]) -> DataFrame:
    return spark.createDataFrame(rows, COMPONENTS_SCHEMA)


@pytest.mark.parametrize(
    ("kind", "seed"), [(k, s) for k in KINDS for s in SEEDS], ids=lambda v: str(v)
)
def test_local_engine_matches_networkx(spark: SparkSession, kind: str, seed: int) -> None:
    edges = random_graph(kind, seed)
    got = connected_components(edges_df(spark, edges), engine="local")
    assertDataFrameEqual(got, expected_df(spark, oracle(edges)))


def test_components_are_smallest_node_in_byte_order(spark: SparkSession) -> None:
    # Upper case sorts before lower case, "é" (UTF-8 0xC3..) after every ASCII letter.
    edges = [("b", "A"), ("é", "z"), ("z", "y"), ("solo", "solo")]
    expected = [("A", "A"), ("b", "A"), ("y", "y"), ("z", "y"), ("é", "y"), ("solo", "solo")]
    for engine in ("local",):
        got = connected_components(edges_df(spark, edges), engine=engine)  # type: ignore[arg-type]
        assertDataFrameEqual(got, expected_df(spark, expected))


def test_null_end_introduces_the_other_node(spark: SparkSession) -> None:
    edges = edges_df(spark, [("b", None), (None, None), ("c", "d")])
    got = connected_components(edges, engine="local")
    assertDataFrameEqual(got, expected_df(spark, [("b", "b"), ("c", "c"), ("d", "c")]))


def test_empty_graph_gives_empty_result(spark: SparkSession) -> None:
    got = connected_components(edges_df(spark, []), engine="local")
    assertDataFrameEqual(got, expected_df(spark, []))


def test_auto_picks_local_for_small_graphs_and_says_so(spark: SparkSession) -> None:
    said: list[str] = []
    connected_components(edges_df(spark, [("a", "b")]), engine="auto", progress=said.append)
    assert said == [
        "connected components: engine local (auto: no GraphFrames jar, 1 edges <= local_max_edges)"
    ]


def test_graphframes_without_its_jar_is_a_clear_error(spark: SparkSession) -> None:
    with pytest.raises(EngineUnavailableError, match=r"org\.graphframes\.GraphFrame") as err:
        connected_components(edges_df(spark, [("a", "b")]), engine="graphframes")
    assert err.value.hint is not None and "graphframes-spark4" in err.value.hint


def test_unknown_engine_is_a_clear_error(spark: SparkSession) -> None:
    with pytest.raises(EngineUnavailableError, match="unknown connected-components engine"):
        connected_components(edges_df(spark, [("a", "b")]), engine="networkx")  # type: ignore[arg-type]


def test_edges_without_src_dst_strings_are_rejected(spark: SparkSession) -> None:
    with pytest.raises(SchemaError, match="lack column"):
        connected_components(spark.createDataFrame([("a", "b")], "a string, b string"))
    with pytest.raises(SchemaError, match="must be strings"):
        connected_components(spark.createDataFrame([(1, 2)], "src long, dst long"))


class FakeGraphFrame:
    """Stands in for graphframes.GraphFrame: records its input, labels components with longs.

    The labels are deliberately not the smallest node (GraphFrames' are not either), so the
    test checks the engine's relabelling, and the vertices/edges it hands to GraphFrames.
    """

    seen: ClassVar[list[tuple[DataFrame, DataFrame]]] = []

    def __init__(self, v: DataFrame, e: DataFrame) -> None:
        FakeGraphFrame.seen.append((v, e))
        self.v, self.e = v, e

    def connectedComponents(self, **options: object) -> DataFrame:
        graph = nx.Graph()
        graph.add_nodes_from(r.id for r in self.v.collect())
        graph.add_edges_from((r.src, r.dst) for r in self.e.collect())
        labels = [
            (node, 1000 + 7 * i)
            for i, members in enumerate(nx.connected_components(graph))
            for node in members
        ]
        return self.v.sparkSession.createDataFrame(labels, "id string, component long")


def test_graphframes_engine_translation_without_the_jar(spark: SparkSession) -> None:
    edges = random_graph("mixed", 3)
    FakeGraphFrame.seen.clear()
    got = GraphFramesEngine(graph_factory=FakeGraphFrame).components(edges_df(spark, edges))
    assertDataFrameEqual(got, expected_df(spark, oracle(edges)))
    ((vertices, gf_edges),) = FakeGraphFrame.seen
    assert vertices.columns == ["id"] and gf_edges.columns == ["src", "dst"]
    assert vertices.count() == len({n for e in edges for n in e})  # distinct vertex ids


def test_relabel_by_smallest(spark: SparkSession) -> None:
    labelled = spark.createDataFrame([("b", 7), ("a", 7), ("c", 3)], "node string, component long")
    got = relabel_by_smallest(labelled)
    assertDataFrameEqual(got, expected_df(spark, [("b", "a"), ("a", "a"), ("c", "c")]))
