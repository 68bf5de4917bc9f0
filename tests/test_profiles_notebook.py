"""notebooks/profiles_tour.ipynb runs headless against the hand-made profiles lakehouse."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from pyspark.sql import SparkSession
from test_profiles_support import profiles_lakehouse

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "profiles_tour.ipynb"


def test_profiles_tour_notebook_plots_and_looks_up(
    spark: SparkSession,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = profiles_lakehouse(spark, tmp_path_factory)
    monkeypatch.setenv("CDP__STORAGE__ROOT", cfg.lakehouse_root)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()

    texts, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts.append(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", "")))
            images += "image/png" in out.get("data", {})
    text = "\n".join(texts)
    assert "3 profiles as of 2026-03-01" in text
    # lifecycle counts of the three people, then the look-up of the highest CLV (P1: 5400)
    assert "prospect    1\nnew         1\nactive      1\nat_risk     0" in text
    assert "looked up: P1 | lifecycle: active | recent orders: ['O4', 'O3', 'O2', 'O1']" in text
    assert "customer_equity" in text
    assert images == 2  # the lifecycle bar chart and the CLV histogram
