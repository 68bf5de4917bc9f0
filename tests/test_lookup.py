"""The call-centre look-up (delta-rs only) and `cdp profile` on the hand-made lakehouse."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from test_profiles_support import profiles_config, profiles_lakehouse
from typer.testing import CliRunner

from cdp_spark.cli import app
from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.normalize import normalize_email
from cdp_spark.profiles.lookup import lookup_profile, normalize_email_value, table_uri


@pytest.fixture(scope="module")
def cfg(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> CdpConfig:
    return profiles_lakehouse(spark, tmp_path_factory)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("email", "  Anna@X.RU "),
        ("email", "Anna <anna.p@y.ru>"),
        ("phone", "8 (999) 000-00-01"),  # the till's number, national format
        ("phone", "+7 916 123 45 67"),
        ("person_id", "P1"),
    ],
)
def test_lookup_finds_the_person_by_any_key(cfg: CdpConfig, key: str, value: str) -> None:
    view = lookup_profile(cfg, **{key: value})
    assert view is not None
    assert view["person_id"] == "P1"
    p = view["profile"]
    assert (p["first_name"], p["email"], p["phone"], p["lifecycle_stage"], p["clv"]) == (
        "Anya",
        "anna.p@y.ru",
        "+79990000001",
        "active",
        5400.0,
    )
    assert p["golden_sources"]["phone"] == "pos_sales"
    assert p["emails"] == ["anna.p@y.ru", "anna@x.ru"]


def test_lookup_reports_the_normalised_key(cfg: CdpConfig) -> None:
    view = lookup_profile(cfg, phone="8 (999) 000-00-01")
    assert view is not None and view["resolved_by"] == {"phone": "+79990000001"}


def test_recent_activity_across_channels_newest_first(cfg: CdpConfig) -> None:
    view = lookup_profile(cfg, person_id="P1", recent=4)
    assert view is not None
    act = view["activity"]
    # Activity is what silver holds now: O4 (after the profile's run date) is shown too.
    assert [o["order_id"] for o in act["orders"]] == ["O4", "O3", "O2", "O1"]
    assert act["orders"][0] == {
        "order_id": "O4",
        "ordered_at": "2026-03-05T09:00:00+00:00",
        "status": "paid",
        "currency": "RUB",
        "total_amount": 3000.0,
        "channel": "web",
    }
    assert sorted((r["transaction_id"], r["line_no"]) for r in act["pos"]) == [("T1", 1), ("T1", 2)]
    assert [w["event_id"] for w in act["web"]] == ["w5", "w2", "w1", "w3"]
    assert [(e["campaign_id"], e["event"]) for e in act["email"][:2]] == [
        ("cmp3", "open"),
        ("cmp2", "open"),
    ]
    assert [t["ticket_id"] for t in act["support"]] == ["K3", "K2", "K1"]
    # No segment or score tables yet.
    assert view["segments"] is None and view["scores"] is None


def test_not_found_and_bad_keys(cfg: CdpConfig) -> None:
    assert lookup_profile(cfg, email="nobody@x.ru") is None
    assert lookup_profile(cfg, person_id="P404") is None
    with pytest.raises(CdpError, match="not an e-mail address"):
        lookup_profile(cfg, email="not-an-email")
    with pytest.raises(CdpError, match="not a valid phone number"):
        lookup_profile(cfg, phone="12")
    with pytest.raises(CdpError, match="exactly one of"):
        lookup_profile(cfg, email="anna@x.ru", phone="+79161234567")
    with pytest.raises(CdpError, match="exactly one of"):
        lookup_profile(cfg)


def test_segments_of_the_latest_run_and_latest_scores(cfg: CdpConfig, tmp_path: Path) -> None:
    # A copy of the lakehouse, so the shared one keeps no segments or scores.
    root = tmp_path / "lake"
    shutil.copytree(cfg.lakehouse_root, root)
    copy = profiles_config(root)
    write_deltalake(
        table_uri(copy, "gold.segment_membership"),
        pa.table(
            {
                "run_date": pa.array([date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 1)]),
                "segment": ["old_segment", "vip", "vip"],
                "person_id": ["P1", "P1", "P2"],
            }
        ),
    )
    write_deltalake(
        table_uri(copy, "gold.scored_profiles"),
        pa.table(
            {
                "person_id": ["P1", "P1"],
                "churn_score": [0.7, 0.2],
                "churn_decile": pa.array([9, 3], pa.int32()),
                "score_date": pa.array([date(2026, 2, 1), date(2026, 3, 1)]),
            }
        ),
    )
    view = lookup_profile(copy, person_id="P1")
    assert view is not None
    assert view["segments"] == {"run_date": "2026-03-01", "segments": ["vip"]}
    assert view["scores"] == {"churn_score": 0.2, "churn_decile": 3, "score_date": "2026-03-01"}
    other = lookup_profile(copy, person_id="P3")
    assert other is not None and other["segments"] == {"run_date": "2026-03-01", "segments": []}


def test_python_email_normaliser_agrees_with_silvers(spark: SparkSession) -> None:
    samples = [
        " <Ivan.Petrov+shop@GoogleMail.com> ",
        "Ivan <ivan@Mail.RU>",
        "mailto:Olga@Yandex.com",
        "«anna@x.ru»",
        "a.b+c@outlook.com",
        "a.b+c@mail.ru",
        "почта@пример.рф",
        "ivan@mail",
        "no at sign",
        "x@y..ru",
        "",
    ]
    df = spark.createDataFrame([(s,) for s in samples], "raw string")
    spark_side = [r[0] for r in df.select(normalize_email(F.col("raw"))).collect()]
    assert [normalize_email_value(s) for s in samples] == spark_side


def test_cli_profile_prints_the_view_and_a_clear_not_found(cfg: CdpConfig) -> None:
    runner = CliRunner()
    env = {"CDP__STORAGE__ROOT": cfg.lakehouse_root}
    found = runner.invoke(app, ["profile", "--email", "anna@x.ru"], env=env)
    assert found.exit_code == 0, found.output
    for text in ("Anya Petrova", "P1", "anna.p@y.ru", "active", "recent orders", "O4"):
        assert text in found.output
    missing = runner.invoke(app, ["profile", "--person-id", "P404"], env=env)
    assert missing.exit_code == 3
    assert "no profile found for 'P404'" in missing.output
