"""The one Spark session factory of the platform.

Every job, the CLI, the notebooks and the tests build their session here, so the settings the
storage layer relies on (UTC session time zone, microsecond Parquet timestamps that delta-rs can
read, the Python worker interpreter) are set in one place.

Example:
    >>> from cdp_spark.config import load_config
    >>> spark = build_session(load_config("local"))   # doctest: +SKIP
    >>> detect_engines(spark, load_config("local")).storage
    'delta-rs'
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from cdp_spark.config import CdpConfig
from cdp_spark.errors import ConfigError
from cdp_spark.jvm import jvm_class_available
from cdp_spark.storage import Lakehouse, open_lakehouse
from cdp_spark.storage.factory import (
    DELTA_CATALOG,
    DELTA_EXTENSION,
    delta_jvm_loaded,
    delta_spark_available,
)

log = logging.getLogger(__name__)

GRAPHFRAMES_CLASS = "org.graphframes.GraphFrame"

# Settings the platform depends on, whatever the profile says.
REQUIRED_CONF = {
    # delta-rs cannot read INT96 timestamps (they need the timestampNanos reader feature).
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Every time the platform stores is UTC; local times are converted when parsed.
    "spark.sql.session.timeZone": "UTC",
    # The delta-rs engine commits exactly the files it listed; no _SUCCESS markers wanted.
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
}

# Defaults of the session we build; a profile's spark.conf may change them. They are fixed when
# the JVM starts, so a reused session keeps its own.
DEFAULT_CONF = {
    # Record caches are DISK_ONLY (cdp_spark/caching.py). Uncompressed, the caches of one
    # 1M-customer web-events batch filled 27 GB of disk; lz4 blocks are a fraction of that.
    "spark.rdd.compress": "true",
}


@dataclass(frozen=True)
class EngineReport:
    """Which JVM parts are loadable and which engines the platform will use."""

    delta_jvm: bool
    graphframes_jvm: bool
    storage: str
    connected_components: str

    def lines(self) -> list[str]:
        return [
            f"Delta Lake JVM classes:  {'present' if self.delta_jvm else 'absent'}",
            f"GraphFrames JVM classes: {'present' if self.graphframes_jvm else 'absent'}",
            f"storage engine:          {self.storage}",
            f"connected components:    {self.connected_components}",
        ]


def spark_jars(cfg: CdpConfig) -> list[str]:
    """The jar files from ``spark.jars_dir`` (offline clusters), sorted.

    Example:
        >>> spark_jars(load_config("local"))   # doctest: +SKIP
        []
    """
    if not cfg.spark.jars_dir:
        return []
    folder = Path(cfg.resolve(cfg.spark.jars_dir))
    if not folder.is_dir():
        raise ConfigError(
            f"spark.jars_dir {folder} is not a folder",
            hint="point spark.jars_dir at a folder holding the Delta and GraphFrames jars",
        )
    return sorted(str(p) for p in folder.glob("*.jar"))


# Quiets Spark's start-up chatter in local runs (see the file for what and why).
LOG4J2_FILE = Path(__file__).resolve().parent / "resources" / "log4j2.properties"


def session_conf(cfg: CdpConfig) -> dict[str, str]:
    """Every Spark setting the factory applies for ``cfg`` (pure: no session is built).

    Example:
        >>> session_conf(load_config("local"))["spark.sql.session.timeZone"]   # doctest: +SKIP
        'UTC'
    """
    conf: dict[str, str] = {
        "spark.app.name": cfg.spark.app_name,
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.driver.memory": cfg.spark.driver_memory,
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": cfg.resolve(f"{cfg.storage.root}/_warehouse"),
        **DEFAULT_CONF,
    }
    jars = spark_jars(cfg)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    if cfg.spark.packages:
        conf["spark.jars.packages"] = ",".join(cfg.spark.packages)
    if _wants_delta_jvm(cfg, jars):
        conf["spark.sql.extensions"] = DELTA_EXTENSION
        conf["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
    conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{LOG4J2_FILE}"
    conf.update(cfg.spark.conf)  # a profile's own extraJavaOptions replaces ours
    conf.update(REQUIRED_CONF)
    return conf


def open_configured_lakehouse(spark: SparkSession, cfg: CdpConfig) -> Lakehouse:
    """The lakehouse at ``cfg``'s root, written by the engine :func:`detect_engines` reports.

    Example:
        >>> lake = open_configured_lakehouse(spark, load_config("local"))   # doctest: +SKIP
        >>> lake.engine_name
        'delta-rs'
    """
    engine = detect_engines(spark, cfg).storage
    return open_lakehouse(spark, cfg.lakehouse_root, engine=engine)  # type: ignore[arg-type]


def _wants_delta_jvm(cfg: CdpConfig, jars: list[str]) -> bool:
    # Registering the Delta catalog without its jar breaks every catalog call, so only do it
    # when the jar is coming (packages, jars folder) or was asked for explicitly.
    sources = [*cfg.spark.packages, *(Path(j).name for j in jars)]
    return cfg.storage.engine == "delta-spark" or any("delta-spark" in s for s in sources)


def build_session(cfg: CdpConfig) -> SparkSession:
    """Build (or reuse) the Spark session described by ``cfg``.

    On a platform that already runs a session (Databricks, a notebook kernel), that session is
    reused and only the runtime settings the platform needs are applied to it.

    Example:
        >>> spark = build_session(load_config("local"))   # doctest: +SKIP
    """
    # Python workers must run this interpreter (the one with pandas, phonenumbers...).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if cfg.spark.master.startswith("local"):
        # A local run needs no network interface; this also silences the loopback warning.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    # Under spark-submit the JVM already runs with the --master the user chose: that wins.
    if cfg.spark.master and "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(cfg.spark.master)
    for key, value in session_conf(cfg).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in REQUIRED_CONF.items():
        if not key.startswith("spark.hadoop."):
            spark.conf.set(key, value)
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    return spark


def detect_engines(spark: SparkSession, cfg: CdpConfig) -> EngineReport:
    """Probe the JVM for Delta Lake and GraphFrames and say which engines are in use.

    Example:
        >>> detect_engines(spark, cfg).lines()[0]   # doctest: +SKIP
        'Delta Lake JVM classes:  absent'
    """
    # The same test open_lakehouse(engine="auto") makes, so the report and the choice agree.
    delta = delta_jvm_loaded(spark)
    graphframes = jvm_class_available(spark, GRAPHFRAMES_CLASS)
    storage = cfg.storage.engine
    if storage == "auto":
        storage = "delta-spark" if delta_spark_available(spark) else "delta-rs"
    cc: str = cfg.engines.connected_components
    if cc == "auto":
        # Without the jar, cdp_spark.graph picks per graph: local up to its edge limit.
        cc = "graphframes" if graphframes else "local or dataframe, by graph size"
    return EngineReport(delta, graphframes, storage, cc)
