"""The storage layer: named Delta tables by layer (bronze, silver, gold, quarantine, ops).

One interface, :class:`Lakehouse`, two engines behind it, chosen by :func:`open_lakehouse`:
``delta-spark`` (Delta Lake's own Spark connector, when its jar is on the classpath) and
``delta-rs`` (Spark writes the Parquet files, the ``deltalake`` package commits them). Both
write real Delta tables at ``<root>/<layer>/<table>``.

Example:
    >>> from cdp_spark.storage import Txn, open_lakehouse
    >>> lake = open_lakehouse(spark, "lakehouse")                          # doctest: +SKIP
    >>> lake.create("bronze.crm_contacts", schema, partition_by=["run_date"])
    >>> lake.append("bronze.crm_contacts", df, txn=Txn("ingest_crm", 20260101))
    >>> lake.read("bronze.crm_contacts").count()
"""

from cdp_spark.errors import EngineUnavailableError
from cdp_spark.storage.base import (
    LAYERS,
    ConcurrentWriteError,
    ConstraintViolationError,
    DuplicateKeyError,
    Lakehouse,
    StorageError,
    TableInfo,
    TableNotFoundError,
    TableSchemaError,
    Txn,
    WriteResult,
    split_table_name,
)
from cdp_spark.storage.factory import (
    delta_maven_coordinate,
    delta_spark_available,
    open_lakehouse,
)

__all__ = [
    "LAYERS",
    "ConcurrentWriteError",
    "ConstraintViolationError",
    "DuplicateKeyError",
    "EngineUnavailableError",
    "Lakehouse",
    "StorageError",
    "TableInfo",
    "TableNotFoundError",
    "TableSchemaError",
    "Txn",
    "WriteResult",
    "delta_maven_coordinate",
    "delta_spark_available",
    "open_lakehouse",
    "split_table_name",
]
