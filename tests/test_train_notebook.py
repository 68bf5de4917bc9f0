"""notebooks/train_and_compare.ipynb runs headless on a tiny order-only lakehouse."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from pyspark.sql import SparkSession

from cdp_spark.storage import open_lakehouse

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def tiny_order_lakehouse(spark: SparkSession, root: Path, people: int = 400) -> None:
    """60 days of orders of ``people`` people; half of them slow down after day 20."""
    rng = np.random.default_rng(5)
    orders, clusters = [], []
    start = datetime(2026, 1, 1)
    for i in range(people):
        rate = rng.uniform(0.03, 0.12)
        fades = i % 2 == 0
        for day in range(60):
            r = rate * (0.2 if fades and day >= 20 else 1.0)
            if rng.random() < r:
                oid = f"O{i}-{day}"
                orders.append((oid, f"C{i}", start + timedelta(days=day, hours=12), 100.0))
                clusters.append(("orders", oid, f"P{i}"))
    lake = open_lakehouse(spark, str(root), engine="delta-rs")
    o = spark.createDataFrame(
        orders, "order_id string, customer_id string, ordered_at timestamp, total_amount double"
    )
    lake.create("silver.orders", o.schema)
    lake.append("silver.orders", o)
    c = spark.createDataFrame(clusters, "source string, record_id string, person_id string")
    lake.create("gold.identity_clusters", c.schema)
    lake.append("gold.identity_clusters", c)


def test_train_and_compare_notebook_runs(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    tiny_order_lakehouse(spark, root)
    monkeypatch.setenv("CDP__STORAGE__ROOT", str(root))
    monkeypatch.setenv("CDP__STORAGE__ENGINE", "delta-rs")
    monkeypatch.setenv("CDP__MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("CDP__SPARK__MASTER", "local[1]")
    monkeypatch.setenv("CDP__SPARK__CONF", "{spark.ui.enabled: 'false'}")
    monkeypatch.setenv("CDP__MODELS__CHURN__ESTIMATOR__MAX_ITER", "30")
    monkeypatch.setenv("CDP__MODELS__TRAINING__PERMUTATION_REPEATS", "1")
    monkeypatch.setenv("CDP_NB_RUN_DATE", "2026-03-01")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOKS / "train_and_compare.ipynb", as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3").execute()

    outputs = [
        out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    ]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    for variant in ("configured", "hgb_fast_uncalibrated", "logistic_regression"):
        assert f"notebook-{variant}" in text
    assert "metrics.holdout_roc_auc" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4
