"""Choosing the Delta engine: delta-spark when its jar is loaded and configured, else delta-rs.

Example:
    >>> lake = open_lakehouse(spark, "lakehouse")                 # doctest: +SKIP
    >>> lake.engine_name                                          # no Delta jar here
    'delta-rs'
"""

from __future__ import annotations

import importlib.metadata
from typing import Literal

import pyspark
from pyspark.sql import SparkSession

from cdp_spark.errors import EngineUnavailableError
from cdp_spark.jvm import jvm_class_available
from cdp_spark.storage.base import Lakehouse

EngineName = Literal["auto", "delta-spark", "delta-rs"]
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def delta_maven_coordinate() -> str:
    """The delta-spark jar matching the installed pyspark and delta-spark wheels, spelled as
    ``delta.configure_spark_with_delta_pip`` spells it (artifact suffixed by Spark major.minor).

    Example:
        >>> delta_maven_coordinate()                              # doctest: +SKIP
        'io.delta:delta-spark_4.2_2.13:4.4.1'
    """
    try:
        delta_version = importlib.metadata.version("delta-spark")
    except importlib.metadata.PackageNotFoundError:
        delta_version = "<delta-spark version>"
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{delta_version}"


def delta_jvm_loaded(spark: SparkSession) -> bool:
    """True when the Delta Lake JVM classes are on the session's classpath.

    Example:
        >>> delta_jvm_loaded(spark)                               # doctest: +SKIP
        False
    """
    return jvm_class_available(spark, DELTA_EXTENSION)


def delta_extension_configured(spark: SparkSession) -> bool:
    """True when ``spark.sql.extensions`` registers Delta's session extension.

    Example:
        >>> delta_extension_configured(spark)                     # doctest: +SKIP
        False
    """
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    return DELTA_EXTENSION in [e.strip() for e in extensions.split(",")]


def delta_spark_available(spark: SparkSession) -> bool:
    """What ``engine="auto"`` asks: Delta's classes load AND the session is set up for them.

    Example:
        >>> delta_spark_available(spark)                          # doctest: +SKIP
        False
    """
    return delta_jvm_loaded(spark) and delta_extension_configured(spark)


def open_lakehouse(
    spark: SparkSession,
    root: str,
    *,
    engine: EngineName = "auto",
    storage_options: dict[str, str] | None = None,
) -> Lakehouse:
    """The lakehouse under ``root`` for ``spark``, written by the chosen Delta engine.

    ``engine="auto"`` picks ``delta-spark`` when the Delta JVM classes are loadable and the
    session has Delta's extension configured, ``delta-rs`` otherwise. Asking for
    ``delta-spark`` without them raises :class:`EngineUnavailableError` saying how to add them.
    ``storage_options`` are delta-rs's object-store settings (ignored by delta-spark, which
    uses the Hadoop configuration).

    Example:
        >>> lake = open_lakehouse(spark, "lakehouse", engine="delta-rs")   # doctest: +SKIP
        >>> lake.path("bronze.crm_contacts")
        '/home/me/cdp/lakehouse/bronze/crm_contacts'
    """
    if engine == "auto":
        engine = "delta-spark" if delta_spark_available(spark) else "delta-rs"
    elif engine == "delta-spark":
        _require_delta_spark(spark)
    if engine == "delta-spark":
        from cdp_spark.storage.deltaspark import DeltaSparkLakehouse

        return DeltaSparkLakehouse(spark, root)
    if engine == "delta-rs":
        from cdp_spark.storage.deltars import DeltaRsLakehouse

        return DeltaRsLakehouse(spark, root, storage_options=storage_options)
    raise ValueError(f"unknown storage engine {engine!r}: use auto, delta-spark or delta-rs")


def _require_delta_spark(spark: SparkSession) -> None:
    coordinate = delta_maven_coordinate()
    if not delta_jvm_loaded(spark):
        raise EngineUnavailableError(
            f"the delta-spark engine was requested but the Delta Lake JVM classes "
            f"({DELTA_EXTENSION}) are not on the Spark classpath; the delta-spark PyPI "
            f"package holds only the Python wrapper",
            hint=f"add the jar: spark.packages: ['{coordinate}'] in conf/*.yaml "
            f"(spark.jars.packages={coordinate}, needs Maven access), or put the jar and "
            "its dependency delta-storage in a folder named by spark.jars_dir; "
            "or use storage.engine: delta-rs (or auto)",
        )
    if not delta_extension_configured(spark):
        raise EngineUnavailableError(
            "the Delta Lake jar is loaded but the session does not register Delta's extension",
            hint=f"build the session with spark.sql.extensions={DELTA_EXTENSION} and "
            f"spark.sql.catalog.spark_catalog={DELTA_CATALOG} "
            "(cdp_spark.session.build_session does this when storage.engine is delta-spark)",
        )
