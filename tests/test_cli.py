"""The cdp command line: tables, show, history, doctor, and one-line errors with hints."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from cdp_spark.cli import app
from cdp_spark.config import CdpConfig
from cdp_spark.storage import open_lakehouse

runner = CliRunner()


@pytest.fixture()
def cli_env(
    test_config: CdpConfig,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> str:
    root = str(tmp_path / "lake")
    monkeypatch.setenv("CDP__STORAGE__ROOT", root)
    monkeypatch.setenv("CDP__SPARK__MASTER", test_config.spark.master)
    monkeypatch.setenv("CDP__PATHS__LANDING", str(tmp_path / "landing"))
    return root


def _lake_with_table(spark: SparkSession, root: str) -> None:
    lake = open_lakehouse(spark, root, engine="delta-rs")
    df = spark.createDataFrame([(1, "anna"), (2, "ilya")], "id long, name string")
    lake.create("silver.people", df.schema)
    lake.append("silver.people", df)
    lake.append("silver.people", spark.createDataFrame([(3, "maria")], df.schema))


def test_tables_lists_real_delta_tables(spark: SparkSession, cli_env: str) -> None:
    _lake_with_table(spark, cli_env)
    result = runner.invoke(app, ["tables"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "silver.people" in line)
    cells = [c.strip() for c in line.split("│") if c.strip()]
    assert cells[:4] == ["silver.people", "delta-rs", "2", "3"]


def test_show_reads_latest_and_time_travels(spark: SparkSession, cli_env: str) -> None:
    _lake_with_table(spark, cli_env)
    latest = runner.invoke(app, ["show", "silver.people", "--limit", "10"])
    assert latest.exit_code == 0, latest.output
    assert "maria" in latest.output and "3 row(s) shown" in latest.output
    old = runner.invoke(app, ["show", "silver.people", "--version", "1"])
    assert old.exit_code == 0, old.output
    assert "maria" not in old.output and "2 row(s) shown of silver.people @ v1" in old.output


def test_history_shows_each_commit(spark: SparkSession, cli_env: str) -> None:
    _lake_with_table(spark, cli_env)
    result = runner.invoke(app, ["history", "silver.people"])
    assert result.exit_code == 0, result.output
    versions = [
        cells[0]
        for line in result.output.splitlines()
        if (cells := [c.strip() for c in line.split("│") if c.strip()]) and cells[0].isdigit()
    ]
    assert sorted(versions) == ["0", "1", "2"]


def test_missing_table_is_one_line_with_hint(spark: SparkSession, cli_env: str) -> None:
    result = runner.invoke(app, ["show", "gold.nothing_here"])
    assert result.exit_code == 2
    assert "error:" in result.output and "gold.nothing_here" in result.output
    assert "Traceback" not in result.output


def test_unknown_stage_names_the_stages(cli_env: str) -> None:
    result = runner.invoke(app, ["run", "nonsense"])
    assert result.exit_code == 2
    assert "unknown stage 'nonsense'" in result.output
    assert "ingest" in result.output and "standardize" in result.output


def test_bad_config_value_is_reported_with_allowed_values(
    cli_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP__STORAGE__ENGINE", "delta")
    result = runner.invoke(app, ["tables"])
    assert result.exit_code == 2
    assert "storage.engine: got 'delta'" in result.output
    assert "Traceback" not in result.output


def test_debug_flag_shows_the_trace(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP__STORAGE__ENGINE", "delta")
    result = runner.invoke(app, ["--debug", "tables"])
    assert result.exit_code != 0
    assert result.exception is not None  # re-raised for the trace instead of one line


def test_bad_run_date(cli_env: str) -> None:
    result = runner.invoke(app, ["run", "ingest", "--run-date", "yesterday"])
    assert result.exit_code == 2
    assert "--run-date 'yesterday' is not a date" in result.output


def test_doctor_reports_java_spark_and_engines(spark: SparkSession, cli_env: str) -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "Java:" in result.output
    assert "storage engine:          delta-rs" in result.output
    assert "connected components:    local or dataframe, by graph size" in result.output
    assert f"lakehouse: {cli_env}" in result.output
