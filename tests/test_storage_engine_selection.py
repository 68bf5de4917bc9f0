"""Which Delta engine open_lakehouse picks, and what it says when the requested one is missing.

These machines have no Delta jar, so "auto" must pick delta-rs; the delta-spark branch is
reached by faking the detection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from delta.pip_utils import configure_spark_with_delta_pip
from pyspark.sql import SparkSession

from cdp_spark.jvm import jvm_class_available
from cdp_spark.storage import (
    EngineUnavailableError,
    delta_maven_coordinate,
    factory,
    open_lakehouse,
)
from cdp_spark.storage.deltars import DeltaRsLakehouse
from cdp_spark.storage.deltaspark import DeltaSparkLakehouse


def test_jvm_class_available_tells_loadable_classes_from_missing_ones(spark: SparkSession) -> None:
    assert jvm_class_available(spark, "org.apache.spark.sql.SparkSession")
    assert not jvm_class_available(spark, "io.delta.sql.DeltaSparkSessionExtension")
    assert not jvm_class_available(spark, "no.such.Class")


def test_auto_picks_delta_rs_without_the_delta_jar(spark: SparkSession, tmp_path: Path) -> None:
    lake = open_lakehouse(spark, str(tmp_path))
    assert isinstance(lake, DeltaRsLakehouse)
    assert lake.engine_name == "delta-rs"
    assert isinstance(open_lakehouse(spark, str(tmp_path), engine="delta-rs"), DeltaRsLakehouse)


def test_auto_picks_delta_spark_when_detected(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(factory, "delta_spark_available", lambda _: True)
    lake = open_lakehouse(spark, str(tmp_path))
    assert isinstance(lake, DeltaSparkLakehouse)
    assert lake.engine_name == "delta-spark"
    assert lake.path("gold.scores") == f"{tmp_path}/gold/scores"


def test_requesting_delta_spark_without_the_jar_says_how_to_add_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    with pytest.raises(EngineUnavailableError, match="Delta Lake JVM classes") as caught:
        open_lakehouse(spark, str(tmp_path), engine="delta-spark")
    hint = caught.value.hint or ""
    assert "spark.jars.packages=io.delta:delta-spark_4.2_2.13:4.4.1" in hint
    assert "spark.packages" in hint and "spark.jars_dir" in hint


def test_requesting_delta_spark_without_the_extension_says_how_to_configure_it(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(factory, "delta_jvm_loaded", lambda _: True)
    with pytest.raises(EngineUnavailableError, match="extension") as caught:
        open_lakehouse(spark, str(tmp_path), engine="delta-spark")
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in (
        caught.value.hint or ""
    )
    monkeypatch.setattr(factory, "delta_extension_configured", lambda _: True)
    assert isinstance(
        open_lakehouse(spark, str(tmp_path), engine="delta-spark"), DeltaSparkLakehouse
    )


def test_unknown_engine_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown storage engine 'delta'"):
        open_lakehouse(spark, str(tmp_path), engine="delta")  # type: ignore[arg-type]


def test_the_jar_coordinate_is_the_one_delta_pip_utils_would_use() -> None:
    builder = configure_spark_with_delta_pip(SparkSession.builder)
    assert builder._options["spark.jars.packages"] == delta_maven_coordinate()
    assert delta_maven_coordinate() == "io.delta:delta-spark_4.2_2.13:4.4.1"


def test_delta_extension_detection_reads_the_session_setting(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not factory.delta_extension_configured(spark)
    assert not factory.delta_spark_available(spark)
    monkeypatch.setattr(factory, "jvm_class_available", lambda *_: True)
    assert not factory.delta_spark_available(spark)  # classes alone are not enough
