"""Shared test fixtures: one Spark session for the whole run, built by the platform's factory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from cdp_spark.config import CdpConfig, load_config
from cdp_spark.session import build_session

# Python workers must be this interpreter, or pandas UDFs fail with "No module named pandas".
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def test_config(tmp_path_factory: pytest.TempPathFactory) -> CdpConfig:
    """The local profile shrunk for tests: local[2], 2 shuffle partitions, UI off, temp dirs."""
    base: Path = tmp_path_factory.mktemp("cdp")
    return load_config(
        "local",
        conf_dir=REPO_ROOT / "conf",
        environ={},
        overrides={
            "spark.master": "local[2]",
            "spark.app_name": "cdp-tests",
            "spark.shuffle_partitions": 2,
            "spark.driver_memory": "2g",
            "spark.conf": {
                "spark.ui.enabled": "false",
                "spark.default.parallelism": "2",
                "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
                "spark.driver.extraJavaOptions": f"-Dderby.system.home={base}",
            },
            "storage.root": str(base / "lakehouse"),
            "paths.landing": str(base / "landing"),
            "paths.exports": str(base / "exports"),
            "mlflow.tracking_uri": f"sqlite:///{base}/mlflow.db",
        },
    )


@pytest.fixture(scope="session")
def spark(
    test_config: CdpConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SparkSession]:
    session = build_session(test_config)
    session.sparkContext.setCheckpointDir(str(tmp_path_factory.mktemp("checkpoints")))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
