"""Probes of the Spark driver's JVM: which optional jars (Delta Lake, GraphFrames) are loadable.

The PyPI packages ``delta-spark`` and ``graphframes-py`` hold only Python wrappers; whether the
JVM half is present depends on the cluster (``spark.jars.packages``, ``spark.jars``, an image
with the jars). The engine choices ask here instead of trusting ``import delta``.

Example:
    >>> jvm_class_available(spark, "io.delta.sql.DeltaSparkSessionExtension")   # doctest: +SKIP
    False
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def jvm_class_available(spark: SparkSession, class_name: str) -> bool:
    """True when ``class_name`` can be loaded by the session's driver JVM.

    Jars added with ``spark.jars`` / ``spark.jars.packages`` live in Spark's own class loader,
    not the system one, so the thread's context class loader is tried first. A Spark Connect
    session has no local JVM to ask: it reports False (the caller then picks the engine that
    needs no jar).

    Example:
        >>> jvm_class_available(spark, "org.apache.spark.sql.SparkSession")   # doctest: +SKIP
        True
        >>> jvm_class_available(spark, "org.graphframes.GraphFrame")          # doctest: +SKIP
        False
    """
    jvm = _driver_jvm(spark)
    if jvm is None:
        return False
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        if loader is not None:
            jvm.java.lang.Class.forName(class_name, False, loader)
        else:
            jvm.java.lang.Class.forName(class_name)
        return True
    except Exception as exc:  # py4j raises Py4JJavaError(ClassNotFoundException)
        log.debug("JVM class %s not loadable: %s", class_name, exc)
        return False


def _driver_jvm(spark: SparkSession) -> Any | None:
    # Spark Connect sessions (pyspark.sql.connect) have no sparkContext at all.
    try:
        return spark.sparkContext._jvm
    except Exception:
        return None
