"""The look-up's serving layout, gold.person_activity and `cdp optimize` (issue 5)."""

from __future__ import annotations

import itertools
import random
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual
from test_profiles_support import RUN_DATE, profiles_config, profiles_lakehouse
from typer.testing import CliRunner

from cdp_spark.cli import app
from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.pipeline import RunContext
from cdp_spark.profiles.lookup import (
    ACTIVITY,
    CLUSTERS_TABLE,
    LOOKUP_KEYS,
    _isin,
    _plain,
    lookup_profile,
    pruned_dataset,
    read_rows,
    recent_activity,
    table_uri,
)
from cdp_spark.profiles.stage import build_person_activity, read_inputs
from cdp_spark.storage import open_lakehouse
from cdp_spark.storage.layout import SERVING_TABLES, serving_layout

PERSONS = ("P1", "P2", "P3")


def _files(uri: str) -> list[dict[str, Any]]:
    """Add actions of the table's current version: path, rows, min/max of each column."""
    import pyarrow as pa

    actions = pa.table(DeltaTable(uri).get_add_actions(flatten=True)).to_pylist()
    return sorted(actions, key=lambda a: (str(a.get("partition.run_date")), a["min.person_id"]))


def _assert_laid_out(uri: str, key: str = "person_id") -> None:
    """Every file sorted by ``key``; within a partition the files' key ranges are disjoint."""
    files = _files(uri)
    assert files
    for a in files:
        values = pq.read_table(f"{uri}/{a['path']}", columns=[key]).column(key).to_pylist()
        assert values == sorted(values), a["path"]
    for before, after in itertools.pairwise(files):
        if before.get("partition.run_date") == after.get("partition.run_date"):
            assert before[f"max.{key}"] < after[f"min.{key}"], (before, after)


def test_serving_layout_writes_sorted_files_with_disjoint_key_ranges(
    spark: SparkSession, tmp_path: Path
) -> None:
    lake = open_lakehouse(spark, str(tmp_path), engine="delta-rs")
    ids = [f"P{i:03d}" for i in range(60)]
    random.Random(3).shuffle(ids)
    clusters = spark.createDataFrame(
        [("crm", f"r{i}", pid) for i, pid in enumerate(ids)],
        "source string, record_id string, person_id string",
    )
    lake.create("gold.identity_clusters", clusters.schema)
    lake.overwrite(
        "gold.identity_clusters",
        serving_layout(clusters, "gold.identity_clusters", rows=60, rows_per_file=20),
    )
    uri = lake.path("gold.identity_clusters")
    files = _files(uri)
    assert [a["num_records"] for a in files] == [20, 20, 20]
    assert [(a["min.person_id"], a["max.person_id"]) for a in files] == [
        ("P000", "P019"),
        ("P020", "P039"),
        ("P040", "P059"),
    ]
    _assert_laid_out(uri)
    # What the look-up gains: the log's statistics leave one file to open for one person.
    dataset = DeltaTable(uri).to_pyarrow_dataset()
    assert len(list(dataset.get_fragments(filter=pc.field("person_id") == "P033"))) == 1


def test_serving_layout_sorts_within_each_date_partition(
    spark: SparkSession, tmp_path: Path
) -> None:
    lake = open_lakehouse(spark, str(tmp_path), engine="delta-rs")
    rows = [
        (day, seg, f"P{i:02d}")
        for day in (date(2026, 3, 1), date(2026, 3, 2))
        for i in range(40)
        for seg in ("vip",)
    ]
    random.Random(5).shuffle(rows)
    members = spark.createDataFrame(rows, "run_date date, segment string, person_id string")
    lake.create("gold.segment_membership", members.schema, partition_by=["run_date"])
    lake.overwrite(
        "gold.segment_membership",
        serving_layout(members, "gold.segment_membership", rows=80, rows_per_file=20),
    )
    uri = lake.path("gold.segment_membership")
    files = _files(uri)
    assert sorted(a["num_records"] for a in files) == [20] * 4
    assert {a["partition.run_date"] for a in files} == {date(2026, 3, 1), date(2026, 3, 2)}
    _assert_laid_out(uri)


def test_serving_layout_rejects_a_table_without_one(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1,)], "x int")
    with pytest.raises(CdpError, match=r"gold\.kpis has no serving layout"):
        serving_layout(df, "gold.kpis", rows=1)


@pytest.fixture(scope="module")
def built(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> CdpConfig:
    return profiles_lakehouse(spark, tmp_path_factory)


def test_person_activity_keeps_the_latest_n_per_kind_newest_first(
    spark: SparkSession, built: CdpConfig
) -> None:
    lake = open_lakehouse(spark, built.lakehouse_root, engine="delta-rs")
    inputs = read_inputs(lake, RunContext(spark, built, lake, RUN_DATE))
    got = build_person_activity(inputs, built, limit=2).where("person_id = 'P1'")
    expected = spark.createDataFrame(
        [
            ("P1", "email", 1, "anna@x.ru|cmp3|open"),
            ("P1", "email", 2, "anna@x.ru|cmp2|open"),
            ("P1", "orders", 1, "O4"),
            ("P1", "orders", 2, "O3"),
            ("P1", "pos", 1, "T1|1"),
            ("P1", "pos", 2, "T1|2"),
            ("P1", "support", 1, "K3"),
            ("P1", "support", 2, "K2"),
            ("P1", "web", 1, "w5"),
            ("P1", "web", 2, "w2"),
        ],
        "person_id string, activity string, rank int, record_id string",
    )
    assertDataFrameEqual(got.select(*expected.columns), expected)
    # Each kind shows its own columns, with silver's types.
    first = got.where("activity = 'orders' and rank = 1").first()
    assert first is not None
    assert (first["order_id"], float(first["total_amount"]), first["channel"]) == (
        "O4",
        3000.0,
        "web",
    )


def _silver_scan_activity(cfg: CdpConfig, person_id: str, limit: int) -> dict[str, Any]:
    """The look-up's recent activity as it was read before gold.person_activity (the oracle):
    the person's records from gold.identity_clusters, each silver table read by their keys."""
    records = (
        read_rows(
            cfg,
            CLUSTERS_TABLE,
            filter=pc.field("person_id") == person_id,
            columns=["source", "record_id"],
        )
        or []
    )
    by_source: dict[str, set[str]] = {}
    for r in records:
        by_source.setdefault(r["source"], set()).add(r["record_id"])
    roles = cfg.profiles.sources.model_dump()
    out: dict[str, list[dict[str, Any]]] = {}
    for role, (time_col, columns) in ACTIVITY.items():
        source = roles.get(role) or ""
        ids, keys = by_source.get(source, set()), cfg.sources[source].keys
        rows = (
            read_rows(
                cfg,
                f"silver.{source}",
                filter=_isin(keys[0], sorted({i.split("|")[0] for i in ids})),
                columns=[*keys, *columns],
            )
            or []
        )
        mine = [r for r in rows if "|".join(str(r[k]) for k in keys) in ids]
        mine.sort(key=lambda r: "|".join(str(r[k]) for k in keys))  # ties: record_id
        mine.sort(key=lambda r: (r[time_col] is not None, r[time_col] or 0), reverse=True)
        out[role] = [{c: _plain(r.get(c)) for c in columns} for r in mine[:limit]]
    return out


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_recent_activity_answers_what_the_silver_scan_answered(
    built: CdpConfig, limit: int
) -> None:
    for person in PERSONS:
        assert recent_activity(built, person, limit) == _silver_scan_activity(built, person, limit)


def test_lookup_without_person_activity_says_what_to_run(built: CdpConfig, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    shutil.copytree(built.lakehouse_root, root)
    shutil.rmtree(root / "gold" / "person_activity")
    with pytest.raises(CdpError, match=r"gold\.person_activity does not exist") as info:
        lookup_profile(profiles_config(root), person_id="P1")
    assert "cdp run profiles" in str(info.value.hint)


def _rows(cfg: CdpConfig, table: str) -> list[tuple[Any, ...]]:
    rows = read_rows(cfg, table) or []
    return sorted(tuple(str(v) for v in r.values()) for r in rows)


def test_cdp_optimize_keeps_the_rows_and_is_idempotent(
    built: CdpConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    shutil.copytree(built.lakehouse_root, root)
    cfg = profiles_config(root)
    monkeypatch.setenv("CDP__STORAGE__ROOT", str(root))
    monkeypatch.setenv("CDP__SPARK__MASTER", "local[2]")
    present = [t for t in sorted(SERVING_TABLES) if (root / t.replace(".", "/")).exists()]
    assert "gold.identity_clusters" in present and "gold.person_activity" in present
    before = {t: _rows(cfg, t) for t in present}
    views = {p: lookup_profile(cfg, person_id=p) for p in PERSONS}
    runner = CliRunner()
    for attempt in (1, 2):
        result = runner.invoke(app, ["optimize"])
        assert result.exit_code == 0, result.output
        for t in present:
            assert _rows(cfg, t) == before[t], (attempt, t)
            assert str(DeltaTable(table_uri(cfg, t)).history(1)[0]["operation"]).upper() in (
                "WRITE",
                "OVERWRITE",
            )
        _assert_laid_out(table_uri(cfg, "gold.identity_clusters"))
        assert {p: lookup_profile(cfg, person_id=p) for p in PERSONS} == views
    wrong = runner.invoke(app, ["optimize", "gold.kpis"])
    assert wrong.exit_code != 0
    assert "no serving layout for gold.kpis" in wrong.output


def test_a_value_longer_than_the_logs_string_bounds_is_found(
    spark: SparkSession, tmp_path: Path
) -> None:
    # The log keeps no maximum for strings over 32 characters; delta-rs's own dataset turned
    # that into `id_value <= null` and the look-up found nobody.
    long_email = "a.very.long.address.of.a.customer@example-shop.ru"
    lake = open_lakehouse(spark, str(tmp_path), engine="delta-rs")
    idents = spark.createDataFrame(
        [("email", "anna@x.ru", "P1"), ("email", long_email, "P2")],
        "id_type string, id_value string, person_id string",
    )
    lake.create("gold.identity_identifiers", idents.schema)
    lake.overwrite("gold.identity_identifiers", idents.coalesce(1))
    cfg = profiles_config(tmp_path)
    found = read_rows(
        cfg,
        "gold.identity_identifiers",
        filter=(pc.field("id_type") == "email") & (pc.field("id_value") == long_email),
        columns=["person_id"],
    )
    assert found == [{"person_id": "P2"}]
    # The same through the log's file pruning (`equal`), which must not read a missing
    # maximum as "no value fits".
    pruned = read_rows(
        cfg,
        "gold.identity_identifiers",
        filter=(pc.field("id_type") == "email") & (pc.field("id_value") == long_email),
        columns=["person_id"],
        equal={"id_type": "email", "id_value": long_email},
    )
    assert pruned == [{"person_id": "P2"}]
    none = read_rows(
        cfg,
        "gold.identity_identifiers",
        filter=pc.field("id_value") == "zzz",
        columns=["person_id"],
    )
    assert none == []


def test_equal_lists_only_the_files_whose_statistics_admit_the_value(tmp_path: Path) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = str(tmp_path / "scores")
    ranges = [["P10", "P11", "P12"], ["P20", "P21"], ["P30", "P31", "P32"]]
    for ids in ranges:  # one file per append, disjoint person_id ranges
        rows = pa.table({"person_id": ids, "score": [float(len(i)) for i in ids]})
        write_deltalake(uri, rows, mode="append")
    dt = DeltaTable(uri)
    assert len(dt.file_uris()) == 3
    hit = pruned_dataset(dt, ["person_id"], equal={"person_id": "P21"})
    assert len(hit.files) == 1
    assert hit.to_table(filter=pc.field("person_id") == "P21").column("person_id").to_pylist() == [
        "P21"
    ]
    assert pruned_dataset(dt, ["person_id"], equal={"person_id": "P25"}).files == []
    assert pruned_dataset(dt, ["person_id"], equal={"person_id": "P99"}).to_table().num_rows == 0
    assert len(pruned_dataset(dt, ["person_id"]).files) == 3


def test_the_lookup_prunes_on_the_keys_the_layout_sorts_by() -> None:
    # lookup.py repeats the keys (it must not import pyspark through the layout module).
    assert {t: SERVING_TABLES[t].keys for t in LOOKUP_KEYS} == LOOKUP_KEYS
    assert set(LOOKUP_KEYS) == set(SERVING_TABLES)
