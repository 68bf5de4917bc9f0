"""Connected components: every engine against networkx on seeded random graphs, engine choice."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import ClassVar

import networkx as nx
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from cdp_spark.errors import EngineUnavailableError, SchemaError
from cdp_spark.graph import (
    COMPONENTS_SCHEMA,
    DataFrameEngine,
    GraphFramesEngine,
    connected_components,
)
from cdp_spark.graph.components import relabel_by_smallest
from cdp_spark.graph.largestar import large_star, small_star, star_forest_check

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


# The dataframe engine runs several Spark jobs per round: one seed per shape keeps it fast.
# ("mixed" for the dataframe engine is in the hash-collision test below.)
CASES = [("local", k, s) for k in KINDS for s in SEEDS] + [
    ("dataframe", k, 1) for k in KINDS if k != "mixed"
]


@pytest.mark.parametrize(("engine", "kind", "seed"), CASES, ids=lambda v: str(v))
def test_engine_matches_networkx(spark: SparkSession, engine: str, kind: str, seed: int) -> None:
    edges = random_graph(kind, seed)
    got = connected_components(edges_df(spark, edges), engine=engine)  # type: ignore[arg-type]
    assertDataFrameEqual(got, expected_df(spark, oracle(edges)))


def test_dataframe_engine_numbers_nodes_by_sort_when_hashes_collide(
    spark: SparkSession, tmp_path: Path
) -> None:
    # length() as the "hash": most ids collide, so the sort-based numbering must take over;
    # checkpoint_dir exercises reliable checkpoints instead of local ones.
    edges = random_graph("mixed", 4)
    said: list[str] = []
    engine = DataFrameEngine(checkpoint_dir=str(tmp_path), progress=said.append, hash_fn=F.length)
    got = engine.components(edges_df(spark, edges))
    assertDataFrameEqual(got, expected_df(spark, oracle(edges)))
    assert "numbering them by a sort instead" in said[0]
    assert said[-1].endswith("converged")


def test_large_star_and_small_star_steps(spark: SparkSession) -> None:
    links = spark.createDataFrame([(3, 2), (2, 1), (4, 2)], "hi long, lo long")
    # Node 2's neighbourhood {1, 2, 3, 4}: its larger neighbours 3 and 4 move to 1; node 1
    # keeps its larger neighbour 2 (its own neighbourhood's smallest is 1).
    assertDataFrameEqual(
        large_star(links), spark.createDataFrame([(2, 1), (3, 1), (4, 1)], "hi long, lo long")
    )
    # Node 4's smaller neighbours {2, 3}: 4 and 3 move to 2; node 2 keeps its link to 1.
    star = spark.createDataFrame([(4, 3), (4, 2), (2, 1)], "hi long, lo long")
    assertDataFrameEqual(
        small_star(star), spark.createDataFrame([(4, 2), (3, 2), (2, 1)], "hi long, lo long")
    )
    assert star_forest_check(star) == (3, 2)  # 4 has two smaller neighbours; 2 is hi and lo
    assert star_forest_check(spark.createDataFrame([(4, 1), (2, 1)], "hi long, lo long")) == (2, 0)


def test_components_are_smallest_node_in_byte_order(spark: SparkSession) -> None:
    # Upper case sorts before lower case, "é" (UTF-8 0xC3..) after every ASCII letter.
    edges = [("b", "A"), ("é", "z"), ("z", "y"), ("solo", "solo")]
    expected = [("A", "A"), ("b", "A"), ("y", "y"), ("z", "y"), ("é", "y"), ("solo", "solo")]
    for engine in ("local", "dataframe"):
        got = connected_components(edges_df(spark, edges), engine=engine)  # type: ignore[arg-type]
        assertDataFrameEqual(got, expected_df(spark, expected))


def test_null_end_introduces_the_other_node(spark: SparkSession) -> None:
    # Nulls are cleaned before any engine runs, so one engine is enough here.
    edges = edges_df(spark, [("b", None), (None, None), ("c", "d")])
    got = connected_components(edges, engine="local")
    assertDataFrameEqual(got, expected_df(spark, [("b", "b"), ("c", "c"), ("d", "c")]))


@pytest.mark.parametrize("engine", ["local", "dataframe"])
def test_empty_graph_gives_empty_result(spark: SparkSession, engine: str) -> None:
    got = connected_components(edges_df(spark, []), engine=engine)  # type: ignore[arg-type]
    assertDataFrameEqual(got, expected_df(spark, []))


def test_auto_picks_local_for_small_graphs_and_says_so(spark: SparkSession) -> None:
    said: list[str] = []
    connected_components(edges_df(spark, [("a", "b")]), engine="auto", progress=said.append)
    assert said == [
        "connected components: engine local (auto: no GraphFrames jar, 1 edges <= local_max_edges)"
    ]


def test_auto_picks_dataframe_above_the_local_limit_and_reports_rounds(
    spark: SparkSession,
) -> None:
    # A path d-c-b-a: converges to the star centred on the smallest node.
    said: list[str] = []
    edges = edges_df(spark, [("d", "c"), ("c", "b"), ("b", "a")])
    got = connected_components(edges, local_max_edges=2, progress=said.append)
    assertDataFrameEqual(got, expected_df(spark, [(n, "a") for n in "abcd"]))
    assert said[0] == (
        "connected components: engine dataframe (auto: no GraphFrames jar, more than 2 edges)"
    )
    assert said[-1].startswith("connected components (dataframe): round ")
    assert said[-1].endswith(", 3 edges, converged")


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
