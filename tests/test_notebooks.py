"""Notebooks run headless against a small lakehouse, so they never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from pyspark.sql import SparkSession

from cdp_spark.config import CdpConfig
from cdp_spark.storage import open_lakehouse

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_explore_lakehouse_notebook_runs_and_lists_tables(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    lake = open_lakehouse(spark, str(root), engine="delta-rs")
    df = spark.createDataFrame([(1, "anna@example.org")], "id long, email_norm string")
    lake.create("silver.contacts", df.schema)
    lake.append("silver.contacts", df)

    monkeypatch.setenv("CDP__STORAGE__ROOT", str(root))
    monkeypatch.setenv("CDP__SPARK__MASTER", "local[1]")
    monkeypatch.setenv("CDP__SPARK__CONF", "{spark.ui.enabled: 'false'}")
    nb = nbformat.read(NOTEBOOKS / "explore_lakehouse.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()

    outputs = "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "storage engine:          delta-rs" in outputs
    assert "silver.contacts" in outputs
    assert "anna@example.org" in outputs
