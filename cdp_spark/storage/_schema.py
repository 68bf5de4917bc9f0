"""Schema rules shared by both engines: what a table may be partitioned by, and how a
DataFrame is made to fit a table before it is written (column order, safe casts, NOT NULL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import reduce

import deltalake
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_spark.storage.base import ConstraintViolationError, DuplicateKeyError, TableSchemaError

# Marker put in the messages of raise_error() so a failed Spark job can be told apart from
# any other failure and reported as a ConstraintViolationError.
VIOLATION_MARKER = "[CDP_CONSTRAINT_VIOLATION]"

# Partition values are stored as strings in the Delta log and in Hive-style folder names.
# These types round-trip exactly through both; timestamps (time zone of the writer) and
# floating point (formatting) do not, so they are refused.
PARTITION_TYPES: tuple[type[T.DataType], ...] = (
    T.StringType,
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
    T.DateType,
    T.BooleanType,
)

# Casts that never lose information: a DataFrame column of the key type may be written to a
# table column of the value type.
_WIDENING: dict[type[T.DataType], tuple[type[T.DataType], ...]] = {
    T.ByteType: (T.ShortType, T.IntegerType, T.LongType),
    T.ShortType: (T.IntegerType, T.LongType),
    T.IntegerType: (T.LongType,),
    T.FloatType: (T.DoubleType,),
}


def to_delta_schema(schema: T.StructType, table: str) -> deltalake.Schema:
    """Spark schema -> delta-rs schema, through the Delta JSON schema format they share.

    The JSON route keeps nullability and maps Spark's TimestampType to Delta ``timestamp``
    (not ``timestamp_ntz``), with no detour through Arrow's time zone handling.
    """
    try:
        return deltalake.Schema.from_json(schema.json())
    except Exception as exc:
        raise TableSchemaError(
            f"{table}: the schema cannot be stored as a Delta schema: {exc}",
            hint="use plain Spark types (no collations, intervals or char/varchar)",
        ) from exc


def from_delta_schema(schema: deltalake.Schema) -> T.StructType:
    """delta-rs schema -> Spark schema (same JSON format)."""
    return T.StructType.fromJson(json.loads(schema.to_json()))


def check_partition_columns(table: str, schema: T.StructType, partition_by: Sequence[str]) -> None:
    """Partition columns must exist, be distinct, leave a data column, and have a type whose
    string form round-trips (see ``PARTITION_TYPES``)."""
    names = schema.fieldNames()
    missing = [c for c in partition_by if c not in names]
    if missing:
        raise TableSchemaError(
            f"{table}: partition columns {missing} are not in the schema; columns: {names}"
        )
    if len(set(partition_by)) != len(partition_by):
        raise TableSchemaError(f"{table}: partition columns repeat: {list(partition_by)}")
    if len(partition_by) == len(names):
        raise TableSchemaError(f"{table}: a table needs at least one non-partition column")
    for name in partition_by:
        dtype = schema[name].dataType
        if not isinstance(dtype, PARTITION_TYPES):
            raise TableSchemaError(
                f"{table}: cannot partition by {name} of type {dtype.simpleString()}",
                hint="partition by a string, integer, date or boolean column "
                "(e.g. a run_date date column)",
            )


def schema_differences(
    current: T.StructType,
    current_partitions: Sequence[str],
    wanted: T.StructType,
    wanted_partitions: Sequence[str],
) -> list[str]:
    """Human-readable differences between a table's schema and the one asked for."""
    diffs: list[str] = []
    cur = {f.name: f for f in current.fields}
    new = {f.name: f for f in wanted.fields}
    for name in new.keys() - cur.keys():
        diffs.append(f"column {name} is new")
    for name in cur.keys() - new.keys():
        diffs.append(f"column {name} is missing")
    for name in cur.keys() & new.keys():
        a, b = cur[name], new[name]
        if a.dataType != b.dataType:
            diffs.append(
                f"column {name}: {a.dataType.simpleString()} -> {b.dataType.simpleString()}"
            )
        elif a.nullable != b.nullable:
            diffs.append(f"column {name}: nullable {a.nullable} -> {b.nullable}")
    if not diffs and current.fieldNames() != wanted.fieldNames():
        diffs.append(f"column order {current.fieldNames()} -> {wanted.fieldNames()}")
    if list(current_partitions) != list(wanted_partitions):
        diffs.append(f"partition_by {list(current_partitions)} -> {list(wanted_partitions)}")
    return sorted(diffs)


def _without_nullability(dtype: T.DataType) -> T.DataType:
    # Spark derives nested nullability from how a column was computed, not from the data, so
    # two columns that hold the same kind of values can differ only there.
    if isinstance(dtype, T.StructType):
        return T.StructType(
            [T.StructField(f.name, _without_nullability(f.dataType), True) for f in dtype.fields]
        )
    if isinstance(dtype, T.ArrayType):
        return T.ArrayType(_without_nullability(dtype.elementType), True)
    if isinstance(dtype, T.MapType):
        return T.MapType(
            _without_nullability(dtype.keyType), _without_nullability(dtype.valueType), True
        )
    return dtype


def conform(
    df: DataFrame,
    schema: T.StructType,
    table: str,
    *,
    allow_extra: bool = False,
    not_null: bool = True,
    checks: Iterable[tuple[Column, str]] = (),
) -> DataFrame:
    """Make ``df`` fit ``schema``: select its columns in the table's order, apply lossless
    casts (int -> long, float -> double, NULL literals), and fail on everything else.

    NOT NULL columns and the extra ``checks`` (a condition every row must satisfy, and the
    message if one does not) are enforced inside the write job itself with ``raise_error``,
    so checking costs no extra pass over the data.
    """
    present = df.columns
    missing = [c for c in schema.fieldNames() if c not in present]
    extra = [c for c in present if c not in schema.fieldNames()]
    if missing or (extra and not allow_extra):
        raise TableSchemaError(
            f"{table}: the DataFrame does not fit the table: missing columns {missing}, "
            f"unexpected columns {extra}; table columns: {schema.fieldNames()}, "
            f"DataFrame columns: {present}"
        )
    source_types = {f.name: f.dataType for f in df.schema.fields}
    columns: list[Column] = []
    problems: list[str] = []
    for field in schema.fields:
        have = source_types[field.name]
        col = F.col(f"`{field.name}`")
        if _without_nullability(have) == _without_nullability(field.dataType):
            pass
        elif isinstance(have, T.NullType) or isinstance(
            field.dataType, _WIDENING.get(type(have), ())
        ):
            col = col.cast(field.dataType)
        else:
            problems.append(
                f"{field.name}: table has {field.dataType.simpleString()}, "
                f"DataFrame has {have.simpleString()}"
            )
            continue
        if not field.nullable and not_null:
            col = F.when(
                col.isNull(),
                F.raise_error(
                    F.lit(f"{VIOLATION_MARKER} {table}: NULL in NOT NULL column {field.name}")
                ),
            ).otherwise(col)
        columns.append(col.alias(field.name))
    if problems:
        raise TableSchemaError(
            f"{table}: column types do not fit the table: {'; '.join(problems)}",
            hint="cast the columns to the table's types before writing",
        )
    checks = list(checks)
    if checks:
        # Hang the row checks on the first column: it is written, so they run on every row.
        first = columns[0]
        guarded = None
        for ok, message in checks:
            failure = F.raise_error(F.lit(f"{VIOLATION_MARKER} {table}: {message}"))
            condition = ~F.coalesce(ok, F.lit(False))
            guarded = (
                F.when(condition, failure) if guarded is None else guarded.when(condition, failure)
            )
        assert guarded is not None
        columns[0] = guarded.otherwise(first).alias(schema.fields[0].name)
    return df.select(*columns)


def violation_from(exc: BaseException) -> ConstraintViolationError | None:
    """The ConstraintViolationError a failed Spark job stands for, if it was one of ours."""
    text = str(exc)
    start = text.find(VIOLATION_MARKER)
    if start < 0:
        return None
    message = text[start + len(VIOLATION_MARKER) :].strip()
    # Spark appends its own context (SQLSTATE, stack) after the message.
    message = message.split("\n", 1)[0].split(" SQLSTATE:", 1)[0].rstrip()
    return ConstraintViolationError(message)


def parse_predicate(sql: str, table: str) -> Column:
    try:
        return F.expr(sql)
    except Exception as exc:
        raise ValueError(f"{table}: cannot parse the predicate {sql!r}: {exc}") from exc


def check_keys(table: str, keys: list[str], schema: T.StructType, df: DataFrame) -> None:
    if not keys:
        raise ValueError(f"{table}: merge needs at least one key column")
    missing = [k for k in keys if k not in schema.fieldNames() or k not in df.columns]
    if missing:
        raise TableSchemaError(
            f"{table}: merge keys {missing} must be columns of both the table "
            f"{schema.fieldNames()} and the DataFrame {df.columns}"
        )


def check_unique_keys(table: str, source: DataFrame, keys: list[str]) -> None:
    """A target row may match one source row at most (Delta's MERGE rule)."""
    dupes = (
        source.where(reduce(lambda a, b: a & b, [F.col(k).isNotNull() for k in keys]))
        .groupBy(*keys)
        .count()
        .where(F.col("count") > 1)
        .limit(3)
        .collect()
    )
    if dupes:
        examples = ", ".join(
            "(" + ", ".join(f"{k}={row[k]!r}" for k in keys) + f") x{row['count']}" for row in dupes
        )
        raise DuplicateKeyError(
            f"{table}: the merge source has several rows for the same key: {examples}",
            hint="deduplicate the source on the merge keys first (e.g. keep the latest row)",
        )
