"""The identity stage end to end on tiny silver tables: persistent ids across runs, incremental
equals full, idempotent re-runs."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from cdp_spark.config import CdpConfig, StorageConfig
from cdp_spark.errors import CdpError
from cdp_spark.identity.explain import explain_person, why
from cdp_spark.identity.graph import EDGES_TABLE, LINKS_SCHEMA
from cdp_spark.identity.metrics import pairwise_scores
from cdp_spark.identity.repeats import repeat_records
from cdp_spark.identity.stage import run_identity
from cdp_spark.identity.tables import CLUSTERS_TABLE, HISTORY_TABLE, IDENTIFIERS_TABLE, LOG_TABLE
from cdp_spark.pipeline import RunContext
from cdp_spark.schemas import silver_schema
from cdp_spark.storage import open_lakehouse

SOURCES = ["crm_contacts", "orders", "web_events"]
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _config(test_config: CdpConfig, root: Path, sources: list[str] = SOURCES) -> CdpConfig:
    # Fuzzy matching is the fuzzy module's to test; here the deterministic part alone.
    fuzzy = test_config.identity.fuzzy.model_copy(update={"enabled": False})
    identity = test_config.identity.model_copy(
        update={
            "sources": sources,
            "plots_dir": str(root / "plots"),
            "log_to_mlflow": False,
            "fuzzy": fuzzy,
        }
    )
    return test_config.model_copy(
        update={"storage": StorageConfig(root=str(root)), "identity": identity}
    )


def _ctx(spark: SparkSession, cfg: CdpConfig, day: int = 1) -> RunContext:
    lake = open_lakehouse(spark, cfg.lakehouse_root, engine="delta-rs")
    return RunContext(spark, cfg, lake, date(2026, 3, day), lambda _m: None)


def _silver(
    spark: SparkSession, cfg: CdpConfig, source: str, batch: int, rows: Iterable[dict[str, Any]]
) -> DataFrame:
    schema = silver_schema(cfg.sources[source])
    full = []
    for row in rows:
        values = {f.name: None for f in schema.fields}
        values.update(row)
        values.update({"_row_hash": "h", "_batch_id": batch, "_standardized_at": NOW})
        full.append(tuple(values[f.name] for f in schema.fields))
    return spark.createDataFrame(full, schema)


def _add(ctx: RunContext, source: str, batch: int, rows: list[dict[str, Any]]) -> None:
    table = f"silver.{source}"
    schema = silver_schema(ctx.cfg.sources[source])
    if not ctx.lake.exists(table):
        ctx.lake.create(table, schema)
    keys = ctx.cfg.sources[source].keys
    ctx.lake.merge(table, _silver(ctx.spark, ctx.cfg, source, batch, rows), keys=keys)


def _crm(cid: str, email: str | None = None, phone: str | None = None) -> dict[str, Any]:
    return {"customer_id": cid, "customer_id_norm": cid, "email_norm": email, "phone_e164": phone}


def _web(
    eid: str, cookie: str, customer: str | None = None, email: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": eid,
        "cookie_id_norm": cookie,
        "customer_id_norm": customer,
        "email_norm": email,
    }


def _order(oid: str, customer: str | None = None, guest: str | None = None) -> dict[str, Any]:
    return {"order_id": oid, "customer_id_norm": customer, "guest_email_norm": guest}


def _batch1(ctx: RunContext) -> None:
    _add(ctx, "crm_contacts", 1, [_crm("C1", "ilya@x.ru"), _crm("C2", "anna@y.ru"), _crm("C3")])
    _add(ctx, "orders", 1, [_order("O1", "C1"), _order("O2", guest="anna@y.ru")])
    _add(ctx, "web_events", 1, [_web("E1", "K1", "C1"), _web("E2", "K1"), _web("E3", "K2")])


def _batch2(ctx: RunContext) -> None:
    # A new order joins Ilya; Anna logs in on cookie K2 (its anonymous event E3 joins her); and
    # C3 turns out to be Ilya's forgotten second account (same e-mail): a merge.
    _add(ctx, "orders", 2, [_order("O3", "C1")])
    _add(ctx, "web_events", 2, [_web("E4", "K2", "C2")])
    _add(ctx, "crm_contacts", 2, [_crm("C3", "ilya@x.ru")])


def _ids(ctx: RunContext) -> dict[str, str]:
    return {
        f"{r['source']}:{r['record_id']}": r["person_id"]
        for r in ctx.lake.read(CLUSTERS_TABLE).collect()
    }


def _persons(ids: dict[str, str]) -> set[frozenset[str]]:
    by: dict[str, set[str]] = {}
    for rec, pid in ids.items():
        by.setdefault(pid, set()).add(rec)
    return {frozenset(v) for v in by.values()}


@pytest.fixture(scope="module")
def two_runs(
    spark: SparkSession, test_config: CdpConfig, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Batch 1 resolved fully, then batch 2 incrementally; and a copy resolved fully at once."""
    root = tmp_path_factory.mktemp("identity_stage")
    cfg = _config(test_config, root / "lake")
    ctx = _ctx(spark, cfg)
    _batch1(ctx)
    first = run_identity(ctx)
    ids1 = _ids(ctx)
    ctx2 = _ctx(spark, cfg, day=2)
    _batch2(ctx2)
    second = run_identity(ctx2)
    ids2 = _ids(ctx2)
    # The same silver resolved by a full run, starting from the state after run 1.
    shutil.copytree(root / "lake", root / "lake_full")
    cfg_full = _config(test_config, root / "lake_full")
    ctx_full = _ctx(spark, cfg_full, day=2)
    run_identity(ctx_full, mode="full")
    return {
        "ctx": ctx2,
        "ctx_full": ctx_full,
        "first": first,
        "second": second,
        "ids1": ids1,
        "ids2": ids2,
        "ids_full": _ids(ctx_full),
    }


def test_first_run_clusters(two_runs: dict[str, Any]) -> None:
    assert two_runs["first"].figures["mode"] == "full"
    assert _persons(two_runs["ids1"]) == {
        frozenset({"crm_contacts:C1", "orders:O1", "web_events:E1", "web_events:E2"}),
        frozenset({"crm_contacts:C2", "orders:O2"}),
        frozenset({"crm_contacts:C3"}),
        frozenset({"web_events:E3"}),
    }


def test_incremental_run_joins_and_merges_with_stable_ids(two_runs: dict[str, Any]) -> None:
    ids1, ids2 = two_runs["ids1"], two_runs["ids2"]
    assert two_runs["second"].figures["mode"] == "incremental"
    ilya, anna = ids1["crm_contacts:C1"], ids1["crm_contacts:C2"]
    assert _persons(ids2) == {
        frozenset(
            {
                "crm_contacts:C1",
                "crm_contacts:C3",
                "orders:O1",
                "orders:O3",
                "web_events:E1",
                "web_events:E2",
            }
        ),
        frozenset({"crm_contacts:C2", "orders:O2", "web_events:E3", "web_events:E4"}),
    }
    # Ilya held 4 records against C3's 1: his id survives; the new order gets it too.
    assert ids2["orders:O3"] == ids2["crm_contacts:C3"] == ilya
    # Anna (2 records) absorbs the anonymous cookie cluster E3 (1 record).
    assert ids2["web_events:E4"] == ids2["web_events:E3"] == anna
    ctx = two_runs["ctx"]
    history = {
        (r["event"], r["old_person_id"], r["new_person_id"], r["records"])
        for r in ctx.lake.read(HISTORY_TABLE).collect()
    }
    assert history == {
        ("merge", ids1["crm_contacts:C3"], ilya, 1),
        ("merge", ids1["web_events:E3"], anna, 1),
    }


def test_incremental_equals_full(two_runs: dict[str, Any], spark: SparkSession) -> None:
    assert two_runs["ids_full"] == two_runs["ids2"]
    cols = ["id_type", "id_value", "person_id"]
    assertDataFrameEqual(
        two_runs["ctx"].lake.read(IDENTIFIERS_TABLE).select(cols),
        two_runs["ctx_full"].lake.read(IDENTIFIERS_TABLE).select(cols),
    )


def test_an_updated_record_loses_the_edges_of_values_it_dropped(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    # Anna changes her e-mail: the edge to the old one goes; the guest order placed with the
    # old one splits off her, as a full run of the same silver would have it.
    cfg = _config(test_config, tmp_path / "lake")
    ctx = _ctx(spark, cfg)
    _add(ctx, "crm_contacts", 1, [_crm("C1", "ilya@x.ru"), _crm("C2", "anna@y.ru")])
    _add(ctx, "orders", 1, [_order("O1", guest="anna@y.ru")])
    run_identity(ctx)
    ctx2 = _ctx(spark, cfg, day=2)
    _add(ctx2, "crm_contacts", 2, [_crm("C2", "anna@new.ru")])
    shutil.copytree(tmp_path / "lake", tmp_path / "lake_full")
    assert run_identity(ctx2).figures["mode"] == "incremental"
    ctx_full = _ctx(spark, _config(test_config, tmp_path / "lake_full"), day=2)
    run_identity(ctx_full, mode="full")
    edges = ctx2.lake.read(EDGES_TABLE).where(F.col("record_id") == "C2")
    assert {r["dst"] for r in edges.collect()} == {"customer_id:C2", "email:anna@new.ru"}
    cols = ["src", "dst", "rule", "source", "record_id"]
    assertDataFrameEqual(
        ctx2.lake.read(EDGES_TABLE).select(cols), ctx_full.lake.read(EDGES_TABLE).select(cols)
    )
    ids = _ids(ctx2)
    assert ids["orders:O1"] != ids["crm_contacts:C2"]
    assert _persons(ids) == _persons(_ids(ctx_full))


def test_rerun_same_day_changes_nothing(two_runs: dict[str, Any]) -> None:
    ctx = two_runs["ctx"]
    versions = {t: ctx.lake.version(t) for t in (CLUSTERS_TABLE, IDENTIFIERS_TABLE, LOG_TABLE)}
    report = run_identity(ctx)
    assert report.figures == {"mode": "incremental", "records_new": 0}
    assert {t: ctx.lake.version(t) for t in versions} == versions
    # A full re-run rewrites the same rows (run_date and updated_at kept when unchanged).
    before = ctx.lake.read(CLUSTERS_TABLE).collect()
    run_identity(ctx, mode="full")
    assertDataFrameEqual(ctx.lake.read(CLUSTERS_TABLE), before)
    assert ctx.lake.read(HISTORY_TABLE).count() == 2


def test_explain_and_why(two_runs: dict[str, Any]) -> None:
    ctx = two_runs["ctx"]
    ilya = two_runs["ids2"]["crm_contacts:C1"]
    person = explain_person(ctx.lake, ilya)
    assert person.person_id == ilya
    assert {f"{s}:{r}" for s, r in person.records} == {
        "crm_contacts:C1",
        "crm_contacts:C3",
        "orders:O1",
        "orders:O3",
        "web_events:E1",
        "web_events:E2",
    }
    answer = why(ctx.lake, ctx.cfg, "orders:O3", "crm_contacts:C3")
    assert answer.same_person
    assert [(e.src, e.dst, e.rule) for e in answer.path] == [
        ("rec:orders:O3", "customer_id:C1", "order_customer"),
        ("rec:crm_contacts:C1", "customer_id:C1", "crm_account"),
        ("rec:crm_contacts:C1", "email:ilya@x.ru", "crm_account"),
        ("rec:crm_contacts:C3", "email:ilya@x.ru", "crm_account"),
    ]
    other = why(ctx.lake, ctx.cfg, "email:anna@y.ru", "orders:O1")
    assert not other.same_person
    assert other.path == []


def test_pairwise_scores(spark: SparkSession) -> None:
    # Predicted {a,b,c} {d}; true {a,b} {c,d}: 1 of 3 predicted pairs right, 1 of 2 true pairs.
    items = spark.createDataFrame(
        [
            ("s", "a", "p1", "t1"),
            ("s", "b", "p1", "t1"),
            ("s", "c", "p1", "t2"),
            ("s", "d", "p2", "t2"),
        ],
        "dimension string, item string, predicted string, actual string",
    )
    got = {(m, d): round(v, 4) for m, d, v in pairwise_scores(items) if d == "s"}
    assert got[("precision", "s")] == round(1 / 3, 4)
    assert got[("recall", "s")] == 0.5
    assert got[("f1", "s")] == 0.4
    assert got[("over_merged_clusters", "s")] == 1
    assert got[("under_merged_persons", "s")] == 1


def test_log_records_watermarks(two_runs: dict[str, Any]) -> None:
    rows = (
        two_runs["ctx"]
        .lake.read(LOG_TABLE)
        .groupBy("source")
        .agg(F.max("last_batch_id").alias("b"))
        .collect()
    )
    assert {r["source"]: r["b"] for r in rows} == {"crm_contacts": 2, "orders": 2, "web_events": 2}


# --- new records that repeat the graph (cdp_spark/identity/repeats.py) -----------------------


def _links(spark: SparkSession, rows: list[tuple[str, str, str]]) -> DataFrame:
    """Links from (record, node, rule); the record is web_events:<record>."""
    return spark.createDataFrame(
        [
            ("web_events", r, f"rec:web_events:{r}", n, n.split(":")[0], rule, 1.0, None)
            for r, n, rule in rows
        ],
        LINKS_SCHEMA,
    )


def test_repeat_records_takes_only_what_the_graph_already_holds(spark: SparkSession) -> None:
    old = _links(
        spark,
        [
            ("A1", "cookie_id:K1", "web_login"),
            ("A1", "customer_id:C1", "web_login"),
            ("A2", "cookie_id:K7", "web_login+corroborated"),
            ("A2", "customer_id:C7", "web_login+corroborated"),
        ],
    )
    new = _links(
        spark,
        [
            ("N1", "cookie_id:K1", "web_visit"),  # one known value: a repeat
            ("N2", "cookie_id:K1", "web_login"),  # a pair held together before: a repeat
            ("N2", "customer_id:C1", "web_login"),
            ("N3", "cookie_id:K1", "web_login"),  # a pair never held together
            ("N3", "email:i@x.ru", "web_login"),
            ("N4", "cookie_id:K9", "web_visit"),  # an unknown value
            ("N5", "cookie_id:K2", "web_visit"),  # values of two persons
            ("N5", "customer_id:C1", "web_login"),
            ("N6", "cookie_id:K7", "web_visit"),  # kept by corroboration
            ("N7", "cookie_id:K3", "web_visit"),  # a person of a split cluster
            ("N8", "cookie_id:K1", "web_login"),  # three values
            ("N8", "customer_id:C1", "web_login"),
            ("N8", "email:i@x.ru", "web_login"),
            ("N9", "group:T1", "pos_receipt"),  # a receipt group
        ],
    )
    identifiers = spark.createDataFrame(
        [
            ("cookie_id:K1", "P1"),
            ("customer_id:C1", "P1"),
            ("email:i@x.ru", "P1"),
            ("cookie_id:K2", "P2"),
            ("cookie_id:K7", "P7"),
            ("customer_id:C7", "P7"),
            ("cookie_id:K3", "P3"),
            ("group:T1", "P1"),
        ],
        "node string, person_id string",
    )
    blocked = spark.createDataFrame([("P3",)], "person_id string")
    got = repeat_records(new, old, identifiers, blocked)
    expected = spark.createDataFrame(
        [
            ("web_events", "N1", "rec:web_events:N1", "P1"),
            ("web_events", "N2", "rec:web_events:N2", "P1"),
        ],
        "source string, record_id string, rec string, person_id string",
    )
    assertDataFrameEqual(got, expected)


def _pos(tx: str, line: int, card: str | None = None) -> dict[str, Any]:
    return {"transaction_id": tx, "line_no": line, "loyalty_card_norm": card}


REPEAT_SOURCES = [*SOURCES, "pos_sales"]


def _repeat_batch1(ctx: RunContext) -> None:
    _add(
        ctx,
        "crm_contacts",
        1,
        [
            _crm("C1", "ilya@x.ru"),
            _crm("C2", "anna@y.ru"),
            _crm("C3", "boris@z.ru"),
            _crm("C4", "dana@d.ru"),
        ],
    )
    _add(
        ctx,
        "web_events",
        1,
        [
            _web("E1", "K1", "C1"),
            _web("E2", "K2", "C2"),
            _web("E3", "K3", "C3"),
            _web("E4", "K4", "C4"),
            # K5 is logged into by Ilya and by Anna: shared, its links are cut.
            _web("E5", "K5", "C1"),
            _web("E6", "K5", "C2"),
        ],
    )
    _add(ctx, "orders", 1, [_order("O1", "C2")])
    _add(ctx, "pos_sales", 1, [_pos("T1", 1, card="L1"), _pos("T1", 2)])


def _repeat_batch2(ctx: RunContext) -> None:
    _add(
        ctx,
        "web_events",
        2,
        [
            _web("E7", "K3"),  # Boris's cookie again: a repeat
            _web("E8", "K3", "C3"),  # Boris logs in on it again: a repeat
            _web("E9", "K4", email="dana@d.ru"),  # a pair never seen: Dana is re-resolved
            _web("E10", "K4"),  # ... so her repeat record is re-resolved with her
            _web("E11", "K6"),  # a new cookie
            _web("E12", "K5"),  # the shared cookie: not a current identifier
        ],
    )
    _add(ctx, "orders", 2, [_order("O2", "C2")])  # Anna's order: a repeat
    _add(ctx, "pos_sales", 2, [_pos("T1", 3)])  # a late line of a known receipt


@pytest.fixture(scope="module")
def repeat_runs(
    spark: SparkSession, test_config: CdpConfig, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Batch 1 resolved fully, batch 2 (mostly repeats) incrementally; and the same silver
    resolved by a full run from the state after batch 1."""
    root = tmp_path_factory.mktemp("identity_repeats")
    cfg = _config(test_config, root / "lake", REPEAT_SOURCES)
    ctx = _ctx(spark, cfg)
    _repeat_batch1(ctx)
    run_identity(ctx)
    ids1 = _ids(ctx)
    ctx2 = _ctx(spark, cfg, day=2)
    _repeat_batch2(ctx2)
    shutil.copytree(root / "lake", root / "lake_full")
    second = run_identity(ctx2)
    ctx_full = _ctx(spark, _config(test_config, root / "lake_full", REPEAT_SOURCES), day=2)
    run_identity(ctx_full, mode="full")
    return {"ctx": ctx2, "ctx_full": ctx_full, "second": second, "ids1": ids1}


def test_repeat_records_join_their_person_directly(repeat_runs: dict[str, Any]) -> None:
    report, ids1 = repeat_runs["second"], repeat_runs["ids1"]
    assert report.figures["mode"] == "incremental"
    assert report.figures["repeat_records"] == 3  # E7, E8, O2
    # Re-resolved: Dana's old records (C4, E4) + E9, E10; E11, E12 on their own; the receipt's
    # lines T1|1, T1|2 (found through the receipt group, never an identifier) + T1|3.
    assert report.figures["scope_records"] == 9
    ids = _ids(repeat_runs["ctx"])
    boris, anna = ids1["crm_contacts:C3"], ids1["crm_contacts:C2"]
    assert ids["web_events:E7"] == ids["web_events:E8"] == boris
    assert ids["orders:O2"] == anna
    assert ids["web_events:E10"] == ids["web_events:E9"] == ids1["crm_contacts:C4"]
    assert ids["web_events:E12"] not in set(ids1.values())
    assert ids["pos_sales:T1|3"] == ids["pos_sales:T1|1"] == ids1["pos_sales:T1|1"]


def test_incremental_with_repeats_equals_full(repeat_runs: dict[str, Any]) -> None:
    inc, full = repeat_runs["ctx"].lake, repeat_runs["ctx_full"].lake
    cols = ["source", "record_id", "person_id", "run_date"]
    assertDataFrameEqual(
        inc.read(CLUSTERS_TABLE).select(cols), full.read(CLUSTERS_TABLE).select(cols)
    )
    cols = ["id_type", "id_value", "person_id"]
    assertDataFrameEqual(
        inc.read(IDENTIFIERS_TABLE).select(cols), full.read(IDENTIFIERS_TABLE).select(cols)
    )
    cols = ["src", "dst", "rule", "source", "record_id"]
    assertDataFrameEqual(inc.read(EDGES_TABLE).select(cols), full.read(EDGES_TABLE).select(cols))


def test_incremental_writes_only_rows_that_change(repeat_runs: dict[str, Any]) -> None:
    # A new record leaves the rows of its person's other records alone: only new records and
    # records that changed person carry the second run's date (a per-person figure on every
    # row once made every row of a repeat's person, i.e. nearly every file, rewritten).
    ids1 = repeat_runs["ids1"]
    rows = repeat_runs["ctx"].lake.read(CLUSTERS_TABLE).collect()
    changed = {
        f"{r['source']}:{r['record_id']}"
        for r in rows
        if ids1.get(f"{r['source']}:{r['record_id']}") != r["person_id"]
    }
    assert changed and len(changed) < len(rows)
    day2 = {f"{r['source']}:{r['record_id']}" for r in rows if r["run_date"] == date(2026, 3, 2)}
    assert day2 == changed


def test_old_clusters_layout_is_a_clear_error(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    cfg = _config(test_config, tmp_path / "lake")
    ctx = _ctx(spark, cfg)
    old = spark.createDataFrame(
        [("orders", "O1", "P1", 1, date(2026, 3, 1), datetime(2026, 3, 1))],
        "source string, record_id string, person_id string, cluster_size long, run_date date, "
        "updated_at timestamp",
    )
    ctx.lake.create(CLUSTERS_TABLE, old.schema)
    ctx.lake.append(CLUSTERS_TABLE, old)
    with pytest.raises(CdpError, match="cluster_size per record"):
        run_identity(ctx)
