"""Corroborated shared values: one person's two CRM accounts sharing only a phone are joined
when their names (and birth dates) agree; a household's landline is still cut."""

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

from cdp_spark import normalize as N
from cdp_spark.config import CdpConfig, StorageConfig
from cdp_spark.identity.clusters import cluster_records
from cdp_spark.identity.config import CorroborateConfig, IdentifierPolicy, IdentityConfig
from cdp_spark.identity.explain import why
from cdp_spark.identity.graph import EDGES_TABLE, build_links, records_of_source
from cdp_spark.identity.guards import (
    drop_junk,
    drop_shared,
    guard_values,
    mark_corroborated,
    person_attributes,
)
from cdp_spark.identity.stage import run_identity
from cdp_spark.identity.tables import CLUSTERS_TABLE
from cdp_spark.pipeline import RunContext
from cdp_spark.schemas import silver_schema
from cdp_spark.storage import open_lakehouse

CRM = (
    "customer_id string, email_norm string, phone_e164 string, first_name string, "
    "last_name string, date_of_birth date, updated_at timestamp"
)
PHONE = "+79120000001"
D1, D2 = date(1990, 5, 1), date(1985, 2, 3)


def _crm(cid: str, first: str, last: str, dob: date | None, phone: str = PHONE) -> tuple:
    return (cid, f"{cid.lower()}@x.ru", phone, first, last, dob, None)


def _resolve(
    spark: SparkSession, cfg: CdpConfig, identity: IdentityConfig, rows: Iterable[tuple]
) -> tuple[set[frozenset[str]], set[str], set[tuple[str, int, int]]]:
    """(clusters as sets of customer ids, shared nodes, corroborated (node, anchors, persons))."""
    df = spark.createDataFrame(list(rows), CRM).withColumn("customer_id_norm", F.col("customer_id"))
    # What standardize writes: the name key of first + last name.
    df = df.withColumn("name_key", N.name_match_key(F.concat_ws(" ", "first_name", "last_name")))
    recs = records_of_source(df, "crm_contacts", cfg.sources["crm_contacts"])
    links, _junk = drop_junk(build_links(recs, "crm_contacts", identity), cfg)
    links = links.localCheckpoint()
    pairs = spark.createDataFrame([], "rec_l string, rec_r string, score double, rule string")
    attrs = person_attributes(recs, identity.corroborate_shared)
    guarded = guard_values(links, pairs, identity, engine="local", attributes=attrs)
    clusters = cluster_records(
        recs.select("rec"), drop_shared(links, guarded.shared), pairs, engine="local"
    )
    by: dict[str, set[str]] = {}
    for r in clusters.collect():
        by.setdefault(r["component"], set()).add(r["rec"].rsplit(":", 1)[1])
    shared = {r["node"] for r in guarded.shared.collect()}
    kept = {(r["node"], r["anchors"], r["persons"]) for r in guarded.corroborated.collect()}
    return {frozenset(v) for v in by.values()}, shared, kept


def _identity(cfg: CdpConfig, **corroborate: Any) -> IdentityConfig:
    base = cfg.identity.corroborate_shared.model_dump()
    base.update(corroborate)
    return cfg.identity.model_copy(update={"corroborate_shared": CorroborateConfig(**base)})


def test_one_person_two_accounts_in_two_scripts_are_joined(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    # A second registration with another e-mail; the name typed in Cyrillic, word order swapped.
    rows = [_crm("C1", "Ilya", "Ivanov", D1), _crm("C2", "Иванов", "Илья", D1)]
    groups, shared, kept = _resolve(spark, test_config, _identity(test_config), rows)
    assert groups == {frozenset({"C1", "C2"})}
    assert shared == set()
    assert kept == {(f"phone:{PHONE}", 2, 1)}


def test_spouses_sharing_a_landline_stay_apart(spark: SparkSession, test_config: CdpConfig) -> None:
    rows = [_crm("C1", "Ivan", "Petrov", D1), _crm("C2", "Maria", "Petrova", D1)]
    groups, shared, kept = _resolve(spark, test_config, _identity(test_config), rows)
    assert groups == {frozenset({"C1"}), frozenset({"C2"})}
    assert shared == {f"phone:{PHONE}"}
    assert kept == set()


def test_same_name_different_birth_dates_stay_apart(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    # Father and son, both Ivan Petrov, one landline.
    rows = [_crm("C1", "Ivan", "Petrov", D1), _crm("C2", "Ivan", "Petrov", D2)]
    groups, shared, _kept = _resolve(spark, test_config, _identity(test_config), rows)
    assert groups == {frozenset({"C1"}), frozenset({"C2"})}
    assert shared == {f"phone:{PHONE}"}
    # Without date_of_birth among the attributes the name alone decides.
    groups, shared, _kept = _resolve(
        spark, test_config, _identity(test_config, attributes=["name"]), rows
    )
    assert groups == {frozenset({"C1", "C2"})}
    assert shared == set()


def test_missing_or_placeholder_birth_date_still_joins(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    rows = [
        _crm("C1", "Ilya", "Ivanov", D1),
        _crm("C2", "Ilia", "Ivanov", None),
        _crm("C3", "Anna", "Smirnova", D2, phone="+79120000002"),
        _crm("C4", "Anna", "Smirnova", date(1900, 1, 1), phone="+79120000002"),
    ]
    groups, shared, kept = _resolve(spark, test_config, _identity(test_config), rows)
    assert groups == {frozenset({"C1", "C2"}), frozenset({"C3", "C4"})}
    assert shared == set()
    assert kept == {(f"phone:{PHONE}", 2, 1), ("phone:+79120000002", 2, 1)}


def test_three_groups_two_corroborated_still_cut_above_the_limit(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    # Ilya's two accounts and his wife Anna's: two persons on one landline.
    rows = [
        _crm("C1", "Ilya", "Ivanov", D1),
        _crm("C2", "Илья", "Иванов", None),
        _crm("C3", "Anna", "Ivanova", D2),
    ]
    groups, shared, kept = _resolve(spark, test_config, _identity(test_config), rows)
    assert groups == {frozenset({"C1"}), frozenset({"C2"}), frozenset({"C3"})}
    assert shared == {f"phone:{PHONE}"}
    assert kept == set()
    # With max_links 2 the two persons fit (3 raw groups would not): the value is kept.
    policies = dict(test_config.identity.identifiers)
    policies["phone"] = IdentifierPolicy(max_links=2, strength=4)
    two = _identity(test_config).model_copy(update={"identifiers": policies})
    groups, shared, kept = _resolve(spark, test_config, two, rows)
    assert groups == {frozenset({"C1", "C2", "C3"})}
    assert kept == {(f"phone:{PHONE}", 3, 2)}
    # ... and without corroboration three groups exceed 2.
    off = two.model_copy(update={"corroborate_shared": CorroborateConfig(enabled=False)})
    _groups, shared, kept = _resolve(spark, test_config, off, rows)
    assert shared == {f"phone:{PHONE}"}
    assert kept == set()


def test_switched_off_or_type_not_listed_cuts_as_before(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    rows = [_crm("C1", "Ilya", "Ivanov", D1), _crm("C2", "Ilya", "Ivanov", D1)]
    for identity in (
        _identity(test_config, enabled=False),
        _identity(test_config, id_types=["cookie_id", "device_id", "loyalty_card"]),
    ):
        groups, shared, kept = _resolve(spark, test_config, identity, rows)
        assert groups == {frozenset({"C1"}), frozenset({"C2"})}
        assert shared == {f"phone:{PHONE}"}
        assert kept == set()


def test_a_group_whose_accounts_disagree_is_not_corroborated(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    # C1 and C2 share an e-mail (one anchor group) but hold two names: that group stands alone,
    # so the phone it shares with C3 (Ivan again) links two groups and is cut.
    rows = [
        ("C1", "fam@x.ru", None, "Ivan", "Petrov", D1, None),
        ("C2", "fam@x.ru", None, "Maria", "Petrova", D2, None),
        ("C3", "c3@x.ru", PHONE, "Ivan", "Petrov", D1, None),
        ("C4", "fam@x.ru", PHONE, None, None, None, None),
    ]
    groups, shared, kept = _resolve(spark, test_config, _identity(test_config), rows)
    assert groups == {frozenset({"C1", "C2", "C4"}), frozenset({"C3"})}
    assert shared == {f"phone:{PHONE}"}
    assert kept == set()


def test_config_needs_a_name() -> None:
    with pytest.raises(ValueError, match="must include name"):
        CorroborateConfig(attributes=["date_of_birth"])


def test_mark_corroborated_adds_and_removes_the_suffix(spark: SparkSession) -> None:
    links = spark.createDataFrame(
        [
            ("rec:crm_contacts:C1", "phone:1", "crm_account"),
            ("rec:crm_contacts:C2", "phone:2", "crm_account+corroborated"),
            ("rec:crm_contacts:C3", "phone:3", "crm_account+corroborated"),
        ],
        "rec string, node string, rule string",
    )
    kept = spark.createDataFrame([("phone:1",), ("phone:3",)], "node string")
    expected = spark.createDataFrame(
        [
            ("rec:crm_contacts:C1", "phone:1", "crm_account+corroborated"),
            ("rec:crm_contacts:C2", "phone:2", "crm_account"),
            ("rec:crm_contacts:C3", "phone:3", "crm_account+corroborated"),
        ],
        "rec string, node string, rule string",
    )
    assertDataFrameEqual(mark_corroborated(links, kept), expected)


# --- the stage end to end: edges carry the rule, incremental equals full -------------------

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _stage_config(test_config: CdpConfig, root: Path) -> CdpConfig:
    identity = test_config.identity.model_copy(
        update={
            "sources": ["crm_contacts"],
            "plots_dir": str(root / "plots"),
            "log_to_mlflow": False,
            "fuzzy": test_config.identity.fuzzy.model_copy(update={"enabled": False}),
        }
    )
    return test_config.model_copy(
        update={"storage": StorageConfig(root=str(root)), "identity": identity}
    )


def _ctx(spark: SparkSession, cfg: CdpConfig, day: int) -> RunContext:
    lake = open_lakehouse(spark, cfg.lakehouse_root, engine="delta-rs")
    return RunContext(spark, cfg, lake, date(2026, 3, day), lambda _m: None)


def _add_crm(ctx: RunContext, batch: int, rows: list[dict[str, Any]]) -> None:
    schema = silver_schema(ctx.cfg.sources["crm_contacts"])
    full = []
    for row in rows:
        values: dict[str, Any] = {f.name: None for f in schema.fields}
        values.update(row)
        values.update({"_row_hash": "h", "_batch_id": batch, "_standardized_at": NOW})
        full.append(tuple(values[f.name] for f in schema.fields))
    if not ctx.lake.exists("silver.crm_contacts"):
        ctx.lake.create("silver.crm_contacts", schema)
    df = ctx.spark.createDataFrame(full, schema)
    ctx.lake.merge("silver.crm_contacts", df, keys=["customer_id"])


def _silver_crm(cid: str, name_key: str, dob: date | None, phone: str) -> dict[str, Any]:
    return {
        "customer_id": cid,
        "customer_id_norm": cid,
        "email_norm": f"{cid.lower()}@x.ru",
        "phone_e164": phone,
        "name_key": name_key,
        "date_of_birth": dob,
    }


def _persons(ctx: RunContext) -> set[frozenset[str]]:
    by: dict[str, set[str]] = {}
    for r in ctx.lake.read(CLUSTERS_TABLE).collect():
        by.setdefault(r["person_id"], set()).add(r["record_id"])
    return {frozenset(v) for v in by.values()}


def _edges(ctx: RunContext) -> DataFrame:
    return ctx.lake.read(EDGES_TABLE).select("src", "dst", "rule")


@pytest.fixture(scope="module")
def runs(
    spark: SparkSession, test_config: CdpConfig, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, RunContext]:
    """Day 1: Ilya's account C1 and the Petrovs' landline. Day 2 (incremental): his second
    account C2 with the same phone. And the same silver resolved by one full run."""
    root = tmp_path_factory.mktemp("corroborate")
    cfg = _stage_config(test_config, root / "lake")
    ctx1 = _ctx(spark, cfg, 1)
    _add_crm(
        ctx1,
        1,
        [
            _silver_crm("C1", "iliia ivanov", D1, PHONE),
            _silver_crm("C3", "ivan petrov", D1, "+79120000009"),
            _silver_crm("C4", "maria petrova", D2, "+79120000009"),
        ],
    )
    run_identity(ctx1)
    ctx2 = _ctx(spark, cfg, 2)
    _add_crm(ctx2, 2, [_silver_crm("C2", "iliia ivanov", None, PHONE)])
    run_identity(ctx2)
    shutil.copytree(root / "lake", root / "lake_full")
    ctx_full = _ctx(spark, _stage_config(test_config, root / "lake_full"), 2)
    run_identity(ctx_full, mode="full")
    return {"incremental": ctx2, "full": ctx_full}


def test_stage_joins_corroborated_accounts_and_says_why(runs: dict[str, RunContext]) -> None:
    ctx = runs["incremental"]
    assert _persons(ctx) == {frozenset({"C1", "C2"}), frozenset({"C3"}), frozenset({"C4"})}
    answer = why(ctx.lake, ctx.cfg, "crm_contacts:C1", "crm_contacts:C2")
    assert answer.same_person
    assert [(e.src, e.dst, e.rule) for e in answer.path] == [
        ("rec:crm_contacts:C1", f"phone:{PHONE}", "crm_account+corroborated"),
        ("rec:crm_contacts:C2", f"phone:{PHONE}", "crm_account+corroborated"),
    ]
    landline = why(ctx.lake, ctx.cfg, "crm_contacts:C3", "crm_contacts:C4")
    assert not landline.same_person
    assert "phone:+79120000009, shared (2 anchors > limit 1)" in landline.reason


def test_stage_incremental_equals_full(runs: dict[str, RunContext]) -> None:
    assert _persons(runs["incremental"]) == _persons(runs["full"])
    # C1's edge, stored on day 1 as plain crm_account, was re-marked on day 2.
    assertDataFrameEqual(_edges(runs["incremental"]), _edges(runs["full"]))
