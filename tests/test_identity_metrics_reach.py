"""Reachable recall: the identity evaluation measured against what the edges can link at all.

One tiny world, every figure worked out by hand. Two true persons:

- A: CRM account C1 (customer id C1, e-mail a@x, the household phone +1home); web event W1, a
  login (cookie k1, customer id C1); W2, an anonymous visit on k1 (reachable through the
  login); W3, an anonymous visit on cookie k9 that never logged in (unreachable); an e-mail
  newsletter address news@y that only e-mail events hold (no labelled record reaches it).
- B: CRM account C2 (customer id C2, the same household phone), a second CRM account C3 (only
  e-mail b2@x) that a fuzzy edge joins to C2; order O1 (customer id C2); one receipt TX1 of
  two lines without card or phone, joined by its ``group:`` node.
- A fuzzy edge C1 - C2 joins the two persons: the oracle must drop it, and must not join them
  through the shared phone either. E-mail events have no true person: they drop out.

Predicted clusters (what guards that cut the phone and ignore the fuzzy edges would give):
P1 = {C1, W1, W2, e-mail events of a@x}, P2 = {C2, O1}, P3 = {W3}, P4 = {C3}, P5 = {TX1},
P6 = {news@y and its e-mail events}.
"""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from cdp_spark.identity.metrics import (
    evaluate,
    labelled_items,
    oracle_components,
    oracle_edges,
    pairwise_scores,
    reach_scores,
    read_truth,
)
from cdp_spark.identity.tables import CLUSTERS_TABLE, EDGES_TABLE, IDENTIFIERS_TABLE

ITEMS_DDL = "dimension string, item string, predicted string, actual string"

EDGES = [
    ("rec:crm_contacts:C1", "customer_id:C1"),
    ("rec:crm_contacts:C1", "email:a@x"),
    ("rec:crm_contacts:C1", "phone:+1home"),
    ("rec:crm_contacts:C2", "customer_id:C2"),
    ("rec:crm_contacts:C2", "phone:+1home"),
    ("rec:crm_contacts:C3", "email:b2@x"),
    ("rec:crm_contacts:C1", "rec:crm_contacts:C2"),  # fuzzy, two different people
    ("rec:crm_contacts:C2", "rec:crm_contacts:C3"),  # fuzzy, one person
    ("rec:web_events:W1", "cookie_id:k1"),
    ("rec:web_events:W1", "customer_id:C1"),
    ("rec:web_events:W2", "cookie_id:k1"),
    ("rec:web_events:W3", "cookie_id:k9"),
    ("rec:orders:O1", "customer_id:C2"),
    ("rec:pos_sales:TX1|1", "group:pos_sales:TX1"),
    ("rec:pos_sales:TX1|2", "group:pos_sales:TX1"),
    ("rec:email_events:a@x|c1|open", "email:a@x"),
    ("rec:email_events:news@y|c1|open", "email:news@y"),
]

ITEMS = [
    ("crm_contacts", "C1", "P1", "A"),
    ("crm_contacts", "C2", "P2", "B"),
    ("crm_contacts", "C3", "P4", "B"),
    ("web_events", "W1", "P1", "A"),
    ("web_events", "W2", "P1", "A"),
    ("web_events", "W3", "P3", "A"),
    ("orders", "O1", "P2", "B"),
    ("pos_sales", "TX1|1", "P5", "B"),
    ("pos_sales", "TX1|2", "P5", "B"),
    ("identifiers", "customer_id:C1", "P1", "A"),
    ("identifiers", "email:a@x", "P1", "A"),
    ("identifiers", "cookie_id:k1", "P1", "A"),
    ("identifiers", "cookie_id:k9", "P3", "A"),
    ("identifiers", "email:news@y", "P6", "A"),
    ("identifiers", "customer_id:C2", "P2", "B"),
    ("identifiers", "email:b2@x", "P4", "B"),
]

# The oracle components, named by their smallest node (cdp_spark.graph's contract).
A_MAIN, A_ANON, A_NEWS = "cookie_id:k1#A", "cookie_id:k9#A", "email:news@y#A"
B_MAIN, B_RECEIPT = "customer_id:C2#B", "group:pos_sales:TX1#B"
COMPONENT_OF = {
    "C1": A_MAIN,
    "W1": A_MAIN,
    "W2": A_MAIN,
    "customer_id:C1": A_MAIN,
    "email:a@x": A_MAIN,
    "cookie_id:k1": A_MAIN,
    "W3": A_ANON,
    "cookie_id:k9": A_ANON,
    "email:news@y": A_NEWS,
    "C2": B_MAIN,
    "C3": B_MAIN,
    "O1": B_MAIN,
    "customer_id:C2": B_MAIN,
    "email:b2@x": B_MAIN,
    "TX1|1": B_RECEIPT,
    "TX1|2": B_RECEIPT,
}

# (reachable_pairs, reachable_recall, recall_ceiling), by hand (see each comment).
EXPECTED: dict[str, tuple[float, ...]] = {
    # C2-C3 reachable (fuzzy, one person), not predicted together; C1 alone; true pairs 1.
    "crm_contacts": (1.0, 0.0, 1.0),
    # W1-W2 reachable and joined; W3 unreachable: 1 of 3 true pairs reachable.
    "web_events": (1.0, 1.0, 1 / 3),
    # one order: no pair at all.
    "orders": (0.0, 1.0, 1.0),
    "pos_sales": (1.0, 1.0, 1.0),
    # A: {C1, a@x, k1} 3 pairs, all joined; k9 and news@y alone. B: {C2, b2@x} 1 pair, split.
    # True pairs: A 5 items -> 10, B 2 -> 1.
    "identifiers": (4.0, 3 / 4, 4 / 11),
    # A_MAIN 6 items -> 15 (all in P1); A_ANON 2 -> 1 (P3); B_MAIN 5 -> 10, of which P2
    # {C2, O1, C2 id} 3 and P4 {C3, b2@x} 1; B_RECEIPT 1 (P5). Joined 21 of 27 reachable.
    # True pairs: A 9 items -> 36, B 7 -> 21.
    "all": (27.0, 21 / 27, 27 / 57),
}


@pytest.fixture(scope="module")
def edges(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(EDGES, "src string, dst string")


@pytest.fixture(scope="module")
def items(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(ITEMS, ITEMS_DDL)


def _figures(
    rows: list[tuple[str, str, float]], metrics: tuple[str, ...]
) -> dict[str, tuple[float, ...]]:
    got: dict[str, dict[str, float]] = {}
    for m, d, v in rows:
        if m in metrics:
            got.setdefault(d, {})[m] = v
    return {d: tuple(round(got[d][m], 6) for m in metrics) for d in got}


REACH = ("reachable_pairs", "reachable_recall", "recall_ceiling")


def _rounded(expected: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
    return {d: tuple(round(v, 6) for v in t) for d, t in expected.items()}


def test_oracle_edges_split_shared_values_and_drop_cross_person_links(
    spark: SparkSession, edges: DataFrame, items: DataFrame
) -> None:
    expected = spark.createDataFrame(
        [
            ("rec:crm_contacts:C1", "customer_id:C1#A"),
            ("rec:crm_contacts:C1", "email:a@x#A"),
            ("rec:crm_contacts:C1", "phone:+1home#A"),
            ("rec:crm_contacts:C2", "customer_id:C2#B"),
            ("rec:crm_contacts:C2", "phone:+1home#B"),
            ("rec:crm_contacts:C3", "email:b2@x#B"),
            ("rec:crm_contacts:C2", "rec:crm_contacts:C3"),
            ("rec:web_events:W1", "cookie_id:k1#A"),
            ("rec:web_events:W1", "customer_id:C1#A"),
            ("rec:web_events:W2", "cookie_id:k1#A"),
            ("rec:web_events:W3", "cookie_id:k9#A"),
            ("rec:orders:O1", "customer_id:C2#B"),
            ("rec:pos_sales:TX1|1", "group:pos_sales:TX1#B"),
            ("rec:pos_sales:TX1|2", "group:pos_sales:TX1#B"),
        ],
        "src string, dst string",
    )
    assertDataFrameEqual(oracle_edges(edges, items), expected)


def test_oracle_components_one_person_each(
    spark: SparkSession, edges: DataFrame, items: DataFrame
) -> None:
    expected = spark.createDataFrame(
        [(*row, COMPONENT_OF[row[1]]) for row in ITEMS], f"{ITEMS_DDL}, component string"
    )
    assertDataFrameEqual(oracle_components(edges, items), expected)


def test_reach_scores_by_hand(edges: DataFrame, items: DataFrame) -> None:
    got = _figures(reach_scores(oracle_components(edges, items)), REACH)
    assert got == _rounded(EXPECTED)


def test_evaluate_adds_reach_and_keeps_absolute_figures(
    spark: SparkSession, edges: DataFrame, tmp_path: Path
) -> None:
    # The same world as the gold tables and truth file that evaluate() reads.
    truth = tmp_path / "records.csv"
    truth.write_text(
        "source,key_type,key,person_id\n"
        "crm_contacts,customer_id,C1,A\n"
        "crm_contacts,customer_id,C2,B\n"
        "crm_contacts,customer_id,C3,B\n"
        "web_events,event_id,W1,A\n"
        "web_events,event_id,W2,A\n"
        "web_events,event_id,W3,A\n"
        "orders,order_id,O1,B\n"
        "pos_sales,transaction_id,TX1,B\n"
        "identity,customer_id,C1,A\n"
        "identity,email,a@x,A\n"
        "identity,phone,+1home,A\n"
        "identity,phone,+1home,B\n"
        "identity,cookie_id,k1,A\n"
        "identity,cookie_id,k9,A\n"
        "identity,email,news@y,A\n"
        "identity,customer_id,C2,B\n"
        "identity,email,b2@x,B\n"
    )
    records = [(d, i, p) for d, i, p, _ in ITEMS if d != "identifiers"]
    records += [("email_events", "a@x|c1|open", "P1"), ("email_events", "news@y|c1|open", "P6")]
    clusters = spark.createDataFrame(records, "source string, record_id string, person_id string")
    idents = [(*i.split(":", 1), p) for d, i, p, _ in ITEMS if d == "identifiers"]
    # The shared phone is in no one's identifiers (docs/identity.md): a guard cut it.
    identifiers = spark.createDataFrame(idents, "id_type string, id_value string, person_id string")
    tables = {CLUSTERS_TABLE: clusters, IDENTIFIERS_TABLE: identifiers, EDGES_TABLE: edges}

    class Lake:
        def read(self, name: str) -> DataFrame:
            return tables[name]

    scores = evaluate(spark, Lake(), str(truth))
    assert _figures(scores, REACH) == _rounded(EXPECTED)
    # The headline figures are exactly what pairwise_scores alone gives, and the recall is the
    # ceiling times the reachable recall here (no pair is joined through someone else).
    items = labelled_items(clusters, identifiers, read_truth(spark, str(truth)))
    absolute = pairwise_scores(items)
    assert [r for r in scores if r[0] not in REACH] == absolute
    recall = {d: v for m, d, v in absolute if m == "recall"}
    assert round(recall["all"], 6) == round(21 / 57, 6)
    assert round(recall["web_events"], 6) == round(1 / 3, 6)


def _random_world(seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Random edges and items: values shared across persons, fuzzy links within and across."""
    rng = random.Random(seed)
    persons = [f"P{i}" for i in range(5)]
    values = [f"{t}:v{i}" for i, t in enumerate(["email", "phone", "cookie_id"] * 4)]
    sources = ["crm_contacts", "web_events", "orders"]
    records = [(rng.choice(sources), f"R{i}", rng.choice(persons)) for i in range(30)]
    edges = [
        (f"rec:{s}:{r}", v)
        for s, r, _ in records
        for v in rng.sample(values, rng.choice([0, 1, 1, 2, 3]))
    ]
    edges += [(f"rec:email_events:E{i}", rng.choice(values)) for i in range(3)]
    recs = [f"rec:{s}:{r}" for s, r, _ in records]
    for _ in range(6):  # fuzzy links, some within one person, most across
        a, b = rng.sample(recs, 2)
        edges.append((a, b))
    clusters = [f"Q{i}" for i in range(6)]
    items = [(s, r, rng.choice(clusters), p) for s, r, p in records]
    items += [("identifiers", v, rng.choice(clusters), rng.choice(persons)) for v in values[:8]]
    return edges, items


def _expected_partition(
    edges: list[tuple[str, str]], items: list[tuple[str, str, str, str]]
) -> dict[tuple[str, str], int]:
    """item -> component number, straight from the definition with networkx (no leaf trick)."""
    actual = {f"rec:{d}:{i}": p for d, i, _, p in items if d != "identifiers"}
    graph = nx.Graph()
    for src, dst in edges:
        if src not in actual:
            continue
        if not dst.startswith("rec:"):
            graph.add_edge(src, f"{dst}#{actual[src]}")
        elif actual.get(dst) == actual[src]:
            graph.add_edge(src, dst)
    number = {n: k for k, comp in enumerate(nx.connected_components(graph)) for n in comp}
    out: dict[tuple[str, str], int] = {}
    for d, i, _, p in items:
        node = f"{i}#{p}" if d == "identifiers" else f"rec:{d}:{i}"
        out[(d, i)] = number.get(node, -1 - len(out))  # an item no edge touches: alone
    return out


@pytest.mark.parametrize("seed", [1, 2], ids=lambda s: f"seed={s}")
def test_oracle_components_match_networkx(spark: SparkSession, seed: int) -> None:
    edges, items = _random_world(seed)
    got = oracle_components(
        spark.createDataFrame(edges, "src string, dst string"),
        spark.createDataFrame(items, ITEMS_DDL),
    ).collect()
    expected = _expected_partition(edges, items)
    assert len(got) == len(items)
    # The same partition of the items: labels differ, so compare who sits with whom.
    by_component: dict[str, set[tuple[str, str]]] = {}
    for r in got:
        by_component.setdefault(r["component"], set()).add((r["dimension"], r["item"]))
    want: dict[int, set[tuple[str, str]]] = {}
    for item, k in expected.items():
        want.setdefault(k, set()).add(item)
    assert sorted(map(sorted, by_component.values())) == sorted(map(sorted, want.values()))
