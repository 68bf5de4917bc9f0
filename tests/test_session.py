"""The session factory: settings it applies, jars it adds, and the engines it reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from cdp_spark import session as session_mod
from cdp_spark.config import CdpConfig, load_config
from cdp_spark.errors import ConfigError
from cdp_spark.session import DELTA_EXTENSION, detect_engines, session_conf

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"


def _cfg(**overrides: object):  # type: ignore[no-untyped-def]
    return load_config("local", conf_dir=REPO_CONF, environ={}, overrides=overrides)


def test_required_settings_always_win_over_profile_conf() -> None:
    cfg = _cfg(**{"spark.conf": {"spark.sql.parquet.outputTimestampType": "INT96", "spark.x": "1"}})
    conf = session_conf(cfg)
    assert conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.x"] == "1"
    assert conf["spark.sql.shuffle.partitions"] == "4"


def test_local_default_adds_no_jars_and_no_delta_catalog() -> None:
    conf = session_conf(_cfg())
    assert "spark.jars" not in conf
    assert "spark.jars.packages" not in conf
    # Registering the Delta catalog without its jar would break every catalog call.
    assert "spark.sql.catalog.spark_catalog" not in conf


def test_bundled_log4j2_config_quiets_start_up_unless_the_profile_sets_its_own() -> None:
    options = session_conf(_cfg())["spark.driver.extraJavaOptions"]
    assert options == f"-Dlog4j2.configurationFile=file:{session_mod.LOG4J2_FILE}"
    assert "rootLogger.level = warn" in session_mod.LOG4J2_FILE.read_text()
    own = {"spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=file:/etc/mine"}
    assert session_conf(_cfg(**{"spark.conf": own}))["spark.driver.extraJavaOptions"] == (
        "-Dlog4j2.configurationFile=file:/etc/mine"
    )


def test_packages_from_config_go_to_spark_jars_packages_with_delta_catalog() -> None:
    cfg = _cfg(**{"spark.packages": ["io.delta:delta-spark_4.2_2.13:4.4.1", "a:b:1"]})
    conf = session_conf(cfg)
    assert conf["spark.jars.packages"] == "io.delta:delta-spark_4.2_2.13:4.4.1,a:b:1"
    assert conf["spark.sql.extensions"] == DELTA_EXTENSION


def test_local_jars_folder_for_offline_clusters(tmp_path: Path) -> None:
    (tmp_path / "delta-spark_4.2_2.13-4.4.1.jar").write_bytes(b"")
    (tmp_path / "graphframes-spark4_2.13-0.12.2.jar").write_bytes(b"")
    (tmp_path / "README.txt").write_text("not a jar")
    conf = session_conf(_cfg(**{"spark.jars_dir": str(tmp_path)}))
    assert conf["spark.jars"].split(",") == [
        str(tmp_path / "delta-spark_4.2_2.13-4.4.1.jar"),
        str(tmp_path / "graphframes-spark4_2.13-0.12.2.jar"),
    ]
    assert conf["spark.sql.extensions"] == DELTA_EXTENSION


def test_missing_jars_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"spark\.jars_dir"):
        session_conf(_cfg(**{"spark.jars_dir": str(tmp_path / "nope")}))


def test_detects_no_delta_or_graphframes_jvm_here(spark: SparkSession) -> None:
    report = detect_engines(spark, _cfg())
    assert (report.delta_jvm, report.graphframes_jvm) == (False, False)
    assert (report.storage, report.connected_components) == (
        "delta-rs",
        "local or dataframe, by graph size",
    )


def test_auto_picks_jvm_engines_when_their_classes_load(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_mod, "jvm_class_available", lambda _spark, _name: True)
    monkeypatch.setattr(session_mod, "delta_jvm_loaded", lambda _spark: True)
    monkeypatch.setattr(session_mod, "delta_spark_available", lambda _spark: True)
    report = detect_engines(spark, _cfg())
    assert (report.storage, report.connected_components) == ("delta-spark", "graphframes")


def test_explicit_choices_are_kept(spark: SparkSession) -> None:
    report = detect_engines(
        spark, _cfg(**{"storage.engine": "delta-rs", "engines.connected_components": "local"})
    )
    assert (report.storage, report.connected_components) == ("delta-rs", "local")


def test_session_has_the_platform_settings(spark: SparkSession) -> None:
    assert spark.conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_job_start_fails_clearly_when_delta_spark_is_asked_for_without_its_jar(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    from datetime import date

    from cdp_spark.errors import EngineUnavailableError
    from cdp_spark.pipeline import RunContext

    cfg = test_config.model_copy(
        update={"storage": test_config.storage.model_copy(update={"engine": "delta-spark"})}
    )
    with pytest.raises(EngineUnavailableError) as err:
        RunContext.create(cfg, run_date=date(2026, 3, 1), spark=spark)
    assert "io.delta:delta-spark_4.2_2.13:" in f"{err.value} {err.value.hint}"


def test_disk_caches_are_compressed_unless_the_profile_says_otherwise(spark: SparkSession) -> None:
    # Record caches are DISK_ONLY; uncompressed, one 1M-customer batch filled the disk.
    assert spark.sparkContext.getConf().get("spark.rdd.compress") == "true"
    own = {"spark.rdd.compress": "false"}
    assert session_conf(_cfg(**{"spark.conf": own}))["spark.rdd.compress"] == "false"
