"""Explainability: which records a person is made of, and why two things are (not) one person.

- :func:`explain_person` (``cdp explain PERSON_ID``): the person's records and identifiers,
  and a spanning tree of the edges (rule, score, record) that joined them. A retired id is
  followed to the id it was merged into (``gold.person_id_history``).
- :func:`why` (``cdp why A B``): A and B are record refs (``orders:O123``,
  ``pos_sales:T1|2``) or identifiers (``email:x@y.z``, ``phone:+79123456789``). The answer
  says whether they are the same person and gives the shortest path of edges between them;
  if not, whether a guard cut the path (a junk or shared value, an oversized cluster split) or
  nothing links them at all.

Example:
    >>> answer = why(lake, cfg, "orders:O3", "email:ilya@x.ru")     # doctest: +SKIP
    >>> answer.same_person, [e.rule for e in answer.path]
    (True, ['order_customer', 'crm_account', 'crm_account'])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.identity.config import ID_TYPES
from cdp_spark.identity.graph import EDGES_TABLE, is_junk_identifier
from cdp_spark.identity.tables import (
    CLUSTERS_TABLE,
    HISTORY_TABLE,
    IDENTIFIERS_TABLE,
    REVIEW_TABLE,
)
from cdp_spark.storage import Lakehouse


@dataclass(frozen=True)
class Edge:
    """One edge of the identity graph as stored in ``silver.identity_edges``."""

    src: str
    dst: str
    rule: str
    score: float
    source: str
    record_id: str


@dataclass
class PersonExplanation:
    """A person's records, identifiers and the edges (a spanning tree) that join them."""

    person_id: str
    asked_for: str
    records: list[tuple[str, str]]
    identifiers: list[str]
    tree: list[Edge]
    merged_ids: list[str] = field(default_factory=list)


@dataclass
class WhyAnswer:
    """Whether two refs are one person, the path of edges, and the reason in words."""

    a: str
    b: str
    person_a: str | None
    person_b: str | None
    same_person: bool
    path: list[Edge]
    reason: str


def _edges(rows: Iterable[object]) -> list[Edge]:
    out = []
    for r in rows:
        d = r.asDict()  # type: ignore[attr-defined]
        out.append(
            Edge(d["src"], d["dst"], d["rule"], float(d["score"]), d["source"], d["record_id"])
        )
    return out


def _current_id(lake: Lakehouse, person_id: str) -> tuple[str, list[str]]:
    """Follow merges from a retired id to the id in use; (id, ids passed through)."""
    seen = [person_id]
    history = lake.read(HISTORY_TABLE).where(F.col("event") == "merge")
    current = person_id
    for _ in range(20):
        row = (
            history.where(F.col("old_person_id") == current).orderBy(F.desc("recorded_at")).first()
        )
        if row is None:
            break
        current = row["new_person_id"]
        seen.append(current)
    return current, seen[:-1]


def _person_edges(lake: Lakehouse, person_ids: list[str]) -> tuple[list[Edge], DataFrame]:
    records = (
        lake.read(CLUSTERS_TABLE)
        .where(F.col("person_id").isin(person_ids))
        .select("source", "record_id", "person_id")
    )
    edges = lake.read(EDGES_TABLE).join(records, ["source", "record_id"], "left_semi")
    return _edges(edges.collect()), records


def _shared_nodes(lake: Lakehouse) -> dict[str, tuple[int, int]]:
    rows = (
        lake.read(REVIEW_TABLE)
        .where(F.col("review_type") == "shared_identifier")
        .select("node", "measure", "limit")
        .collect()
    )
    return {r["node"]: (int(r["measure"]), int(r["limit"])) for r in rows}


def shortest_path(edges: list[Edge], start: str, goal: str) -> list[Edge]:
    """The shortest path of edges from node ``start`` to node ``goal`` ([] if none).

    Neighbours are visited in sorted order, so the answer is deterministic.

    Example:
        >>> e = [Edge("rec:o:1", "email:a", "r", 1.0, "o", "1"),
        ...      Edge("rec:o:2", "email:a", "r", 1.0, "o", "2")]
        >>> [x.src for x in shortest_path(e, "rec:o:1", "rec:o:2")]
        ['rec:o:1', 'rec:o:2']
    """
    adj: dict[str, list[tuple[str, Edge]]] = {}
    for e in edges:
        adj.setdefault(e.src, []).append((e.dst, e))
        adj.setdefault(e.dst, []).append((e.src, e))
    for n in adj:
        adj[n].sort(key=lambda t: (t[0], t[1].rule))
    prev: dict[str, tuple[str, Edge] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt, e in adj.get(node, []):
            if nxt not in prev:
                prev[nxt] = (node, e)
                queue.append(nxt)
    if goal not in prev:
        return []
    path: list[Edge] = []
    node = goal
    while prev[node] is not None:
        parent, e = prev[node]  # type: ignore[misc]
        path.append(e)
        node = parent
    return list(reversed(path))


def spanning_tree(edges: list[Edge], nodes: list[str]) -> list[Edge]:
    """Edges of a BFS spanning forest over ``nodes`` (sorted, deterministic).

    Example:
        >>> spanning_tree([Edge("rec:o:1", "email:a", "r", 1.0, "o", "1")], ["rec:o:1"])[0].dst
        'email:a'
    """
    adj: dict[str, list[tuple[str, Edge]]] = {}
    for e in edges:
        adj.setdefault(e.src, []).append((e.dst, e))
        adj.setdefault(e.dst, []).append((e.src, e))
    seen: set[str] = set()
    tree: list[Edge] = []
    for root in sorted(nodes):
        if root in seen:
            continue
        seen.add(root)
        queue = deque([root])
        while queue:
            node = queue.popleft()
            for nxt, e in sorted(adj.get(node, []), key=lambda t: (t[0], t[1].rule)):
                if nxt not in seen:
                    seen.add(nxt)
                    tree.append(e)
                    queue.append(nxt)
    return tree


def explain_person(lake: Lakehouse, person_id: str) -> PersonExplanation:
    """The records of ``person_id`` and the edges that joined them.

    Raises :class:`CdpError` when the id is unknown.

    Example:
        >>> explain_person(lake, "P5f0c...").records[:1]           # doctest: +SKIP
        [('crm_contacts', 'C00000507')]
    """
    current, merged = _current_id(lake, person_id)
    shared = _shared_nodes(lake)
    edges, records_df = _person_edges(lake, [current])
    records = sorted((r["source"], r["record_id"]) for r in records_df.collect())
    if not records:
        raise CdpError(
            f"no person {person_id!r}",
            hint="person ids are in gold.identity_clusters (cdp show gold.identity_clusters)",
        )
    usable = [e for e in edges if e.dst not in shared]
    identifiers = sorted(
        r["node"]
        for r in lake.read(IDENTIFIERS_TABLE)
        .where(F.col("person_id") == current)
        .select(F.concat("id_type", F.lit(":"), "id_value").alias("node"))
        .collect()
    )
    tree = spanning_tree(usable, [f"rec:{s}:{r}" for s, r in records])
    return PersonExplanation(current, person_id, records, identifiers, tree, merged)


def parse_ref(ref: str, cfg: CdpConfig) -> tuple[str, str, str]:
    """``(kind, node, label)`` of a ref: kind ``record`` or ``identifier``.

    Example:
        >>> parse_ref("email:Ilya@X.ru ", cfg)                       # doctest: +SKIP
        ('identifier', 'email:ilya@x.ru', 'email')
    """
    prefix, sep, rest = ref.strip().partition(":")
    if not sep or not rest:
        raise CdpError(
            f"cannot read {ref!r}",
            hint="use <source>:<record_id> (orders:O123) or <type>:<value> (email:x@y.z)",
        )
    if prefix in ID_TYPES:
        value = rest.strip().lower() if prefix == "email" else rest.strip()
        return "identifier", f"{prefix}:{value}", prefix
    if prefix in cfg.sources:
        return "record", f"rec:{prefix}:{rest}", prefix
    raise CdpError(
        f"{prefix!r} is neither a source nor an identifier type",
        hint=f"sources: {', '.join(cfg.sources)}; identifier types: {', '.join(ID_TYPES)}",
    )


def _person_of(lake: Lakehouse, kind: str, node: str) -> str | None:
    if kind == "record":
        _rec, source, record_id = node.split(":", 2)
        row = (
            lake.read(CLUSTERS_TABLE)
            .where((F.col("source") == source) & (F.col("record_id") == record_id))
            .first()
        )
    else:
        id_type, value = node.split(":", 1)
        row = (
            lake.read(IDENTIFIERS_TABLE)
            .where((F.col("id_type") == id_type) & (F.col("id_value") == value))
            .first()
        )
    return None if row is None else str(row["person_id"])


def _unlinked_reason(lake: Lakehouse, cfg: CdpConfig, kind: str, node: str) -> str:
    if kind == "record":
        return f"{node} is not in gold.identity_clusters (not in silver, or not resolved yet)"
    id_type, value = node.split(":", 1)
    spark = lake.spark
    junk = (
        spark.range(1)
        .select(is_junk_identifier(F.lit(id_type), F.lit(value), cfg).alias("j"))
        .first()
    )
    if junk is not None and junk["j"]:
        return f"{node} is a junk value (blocklist): it never links anyone"
    shared = _shared_nodes(lake)
    if node in shared:
        n, k = shared[node]
        return f"{node} is shared ({n} anchors > limit {k}): its links were dropped"
    return f"{node} is not in any record"


def why(lake: Lakehouse, cfg: CdpConfig, a: str, b: str) -> WhyAnswer:
    """Are ``a`` and ``b`` the same person, and why (not)? See the module docstring.

    Example:
        >>> why(lake, cfg, "orders:O1", "email:ilya@x.ru").same_person   # doctest: +SKIP
        True
    """
    kind_a, node_a, _ = parse_ref(a, cfg)
    kind_b, node_b, _ = parse_ref(b, cfg)
    pa, pb = _person_of(lake, kind_a, node_a), _person_of(lake, kind_b, node_b)
    if pa is None or pb is None:
        missing = [
            (k, n) for (k, n, p) in ((kind_a, node_a, pa), (kind_b, node_b, pb)) if p is None
        ]
        reason = "; ".join(_unlinked_reason(lake, cfg, k, n) for k, n in missing)
        return WhyAnswer(a, b, pa, pb, False, [], reason)
    shared = _shared_nodes(lake)
    if pa == pb:
        edges, _ = _person_edges(lake, [pa])
        path = shortest_path([e for e in edges if e.dst not in shared], node_a, node_b)
        rules = ", ".join(dict.fromkeys(e.rule for e in path)) or "-"
        return WhyAnswer(a, b, pa, pb, True, path, f"same person {pa}, joined by: {rules}")
    edges, _ = _person_edges(lake, [pa, pb])
    path = shortest_path(edges, node_a, node_b)
    if not path:
        return WhyAnswer(
            a,
            b,
            pa,
            pb,
            False,
            [],
            f"different persons ({pa}, {pb}): no identifier or match in common",
        )
    cut = [e.dst for e in path if e.dst in shared]
    if cut:
        node = cut[0]
        n, k = shared[node]
        reason = f"different persons: only linked through {node}, shared ({n} anchors > limit {k})"
    else:
        reason = (
            "different persons: the link was cut when an oversized cluster was split "
            "(see gold.identity_review)"
        )
    return WhyAnswer(a, b, pa, pb, False, path, reason)
