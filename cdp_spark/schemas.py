"""Explicit schemas at the bronze, quarantine, silver and ops boundaries.

Every table the ingest and standardise stages write has its schema spelled out here, so a
reader sees the contract of each layer in one place and a write that drifts from it fails
loudly (:func:`require_columns`) instead of silently adding or dropping columns.

Layers:

- ``bronze.<source>``: every declared column as *text* (leaves of nested types are strings, the
  shape is kept), plus the raw line and its lineage (``_raw``, ``_source_file``, ``_line``,
  ``_batch_id``, ``_run_date``, ``_ingested_at``). Typing is silver's job, so a bad date or a
  word in a number column still lands in bronze and is judged (and quarantined) by silver.
- ``quarantine.records``: one table for every source and layer, with the reason and the raw
  text (and the raw bytes when they could not be decoded).
- ``silver.<source>``: declared columns with their declared types, normalised identifiers
  (``email_norm``, ``phone_e164``, ``name_key``...), ``_row_hash`` and the lineage columns.

Example:
    >>> bronze_schema(SourceConfig(path="crm", format="csv",
    ...     columns=[SourceColumn(name="id", type="long")])).fieldNames()[:2]
    ['id', '_raw']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdp_spark.config import SourceColumn, SourceConfig
from cdp_spark.errors import SchemaError

# --- names -----------------------------------------------------------------------------------

QUARANTINE_TABLE = "quarantine.records"
MANIFEST_TABLE = "ops.ingest_manifest"
STANDARDIZE_LOG_TABLE = "ops.standardize_log"
DQ_REPORT_TABLE = "ops.dq_report"


def bronze_table(source: str) -> str:
    """The bronze table of ``source``.

    Example:
        >>> bronze_table("crm")
        'bronze.crm'
    """
    return f"bronze.{source}"


def silver_table(source: str) -> str:
    """The silver table of ``source``.

    Example:
        >>> silver_table("crm")
        'silver.crm'
    """
    return f"silver.{source}"


# --- Spark DDL types without a session -------------------------------------------------------

_SIMPLE: dict[str, DataType] = {
    "string": StringType(),
    "int": IntegerType(),
    "integer": IntegerType(),
    "long": LongType(),
    "bigint": LongType(),
    "double": DoubleType(),
    "boolean": BooleanType(),
    "date": DateType(),
    "timestamp": TimestampType(),
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")


def parse_type(ddl: str) -> DataType:
    """The Spark type of a DDL type string, parsed in Python (no JVM needed).

    Handles the types ``SourceColumn.type`` accepts: string, int, long, double, boolean,
    date, timestamp, decimal(p,s), array<...>, struct<name:type,...> (``name type`` too).

    Example:
        >>> parse_type("array<struct<sku:string,qty:int>>").simpleString()
        'array<struct<sku:string,qty:int>>'
    """
    text = ddl.strip()
    low = text.lower()
    if low in _SIMPLE:
        return _SIMPLE[low]
    dec = _DECIMAL.match(low)
    if dec:
        return DecimalType(int(dec.group(1)), int(dec.group(2)))
    if low.startswith("array<") and low.endswith(">"):
        return ArrayType(parse_type(text[6:-1]), containsNull=True)
    if low.startswith("struct<") and low.endswith(">"):
        fields = []
        for part in _split_top_level(text[7:-1]):
            match = re.match(r"^\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s*(?::|\s)\s*(.+)$", part)
            if not match:
                raise SchemaError(f"cannot parse struct field {part!r} in type {ddl!r}")
            fields.append(StructField(match.group(1), parse_type(match.group(2)), True))
        return StructType(fields)
    raise SchemaError(f"unsupported column type {ddl!r}")


def _split_top_level(body: str) -> list[str]:
    # Commas inside <...> or (...) belong to nested types, not to this level.
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in body:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


def as_text_type(dtype: DataType) -> DataType:
    """The same shape with every leaf a string: how bronze keeps a declared type.

    Example:
        >>> as_text_type(parse_type("array<struct<qty:int>>")).simpleString()
        'array<struct<qty:string>>'
    """
    if isinstance(dtype, ArrayType):
        return ArrayType(as_text_type(dtype.elementType), containsNull=True)
    if isinstance(dtype, StructType):
        return StructType([StructField(f.name, as_text_type(f.dataType), True) for f in dtype])
    return StringType()


def is_nested(dtype: DataType) -> bool:
    """True for arrays and structs (typed in silver with a cast of the whole value).

    Example:
        >>> is_nested(parse_type("array<string>")), is_nested(parse_type("int"))
        (True, False)
    """
    return isinstance(dtype, ArrayType | StructType)


# --- bronze ----------------------------------------------------------------------------------

BRONZE_META = StructType(
    [
        StructField("_raw", StringType(), True),  # the physical line, decoded (valid UTF-8)
        StructField("_source_file", StringType(), False),  # path relative to the landing dir
        StructField("_line", LongType(), True),  # 1-based physical line (null for Parquet)
        StructField("_batch_id", LongType(), False),  # per-source batch sequence number
        StructField("_run_date", DateType(), False),
        StructField("_ingested_at", TimestampType(), False),
    ]
)


def bronze_schema(source: SourceConfig) -> StructType:
    """Schema of ``bronze.<source>``: declared columns as text, then the lineage columns.

    Example:
        >>> src = SourceConfig(path="p", format="csv", columns=[SourceColumn(name="a")])
        >>> bronze_schema(src).simpleString()[:30]
        'struct<a:string,_raw:string,_s'
    """
    fields = [StructField(c.name, as_text_type(parse_type(c.type)), True) for c in source.columns]
    return StructType(fields + list(BRONZE_META.fields))


# --- quarantine ------------------------------------------------------------------------------

QUARANTINE_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("layer", StringType(), False),  # "bronze" (structural) | "silver" (semantic)
        StructField("reason", StringType(), False),  # e.g. wrong_column_count, bad_type:amount
        StructField("batch_id", LongType(), False),
        StructField("source_file", StringType(), True),
        StructField("line", LongType(), True),
        StructField("raw", StringType(), True),
        # Only for invalid_encoding: the undecodable bytes, so a person can recover the row.
        StructField("raw_bytes", BinaryType(), True),
        StructField("run_date", DateType(), False),
        StructField("quarantined_at", TimestampType(), False),
    ]
)

# --- ops -------------------------------------------------------------------------------------

MANIFEST_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("file_path", StringType(), False),  # relative to the landing dir
        StructField("file_size", LongType(), False),
        StructField("file_mtime", TimestampType(), False),
        StructField("content_sha256", StringType(), False),
        StructField("batch_id", LongType(), False),
        StructField("lines_total", LongType(), False),  # physical lines in the file
        StructField("header_lines", LongType(), False),
        StructField("rows_read", LongType(), False),  # lines_total - header_lines
        StructField("rows_bronze", LongType(), False),
        StructField("rows_quarantined", LongType(), False),
        StructField("run_date", DateType(), False),
        StructField("ingested_at", TimestampType(), False),
    ]
)

STANDARDIZE_LOG_SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("first_batch_id", LongType(), False),
        StructField("last_batch_id", LongType(), False),  # the watermark: batches <= are done
        StructField("rows_in", LongType(), False),
        StructField("rows_out", LongType(), False),
        StructField("rows_quarantined", LongType(), False),
        StructField("rows_duplicate", LongType(), False),
        StructField("run_date", DateType(), False),
        StructField("standardized_at", TimestampType(), False),
    ]
)

DQ_REPORT_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("source", StringType(), False),
        StructField("first_batch_id", LongType(), False),
        StructField("last_batch_id", LongType(), False),
        StructField("rows_read", LongType(), False),  # lines read by ingest for these batches
        StructField("rows_bronze", LongType(), False),
        StructField("rows_in", LongType(), False),  # bronze rows standardised
        StructField("rows_out", LongType(), False),  # distinct records written to silver
        StructField("rows_duplicate", LongType(), False),
        StructField("rows_quarantined", LongType(), False),  # bronze + silver rejects
        StructField("null_rates", MapType(StringType(), DoubleType()), False),
        StructField("quarantine_by_reason", MapType(StringType(), LongType()), False),
        StructField("invalid_identifiers", MapType(StringType(), LongType()), False),
        StructField("created_at", TimestampType(), False),
    ]
)

# --- silver ----------------------------------------------------------------------------------

SILVER_META = StructType(
    [
        StructField("_row_hash", StringType(), False),  # sha256 of the declared values
        StructField("_source_file", StringType(), True),
        StructField("_line", LongType(), True),
        StructField("_batch_id", LongType(), False),
        StructField("_ingested_at", TimestampType(), True),
        StructField("_standardized_at", TimestampType(), False),
    ]
)

# Extra columns derived from an identifier column: name suffix and type.
IDENTIFIER_SUFFIX = {
    "email": "_norm",
    "phone": "_e164",
    "customer_id": "_norm",
    "loyalty_card": "_norm",
    "cookie_id": "_norm",
    "device_id": "_norm",
}


def identifier_column(column: SourceColumn) -> str | None:
    """Name of the normalised column derived from an identifier column, if any.

    Example:
        >>> identifier_column(SourceColumn(name="phone", identifier="phone"))
        'phone_e164'
    """
    if column.identifier is None:
        return None
    return f"{column.name}{IDENTIFIER_SUFFIX[column.identifier]}"


def typed_fields(source: SourceConfig) -> list[StructField]:
    """The declared columns with their declared types.

    Example:
        >>> typed_fields(SourceConfig(path="p", format="csv",
        ...     columns=[SourceColumn(name="n", type="int")]))[0].dataType
        IntegerType()
    """
    return [StructField(c.name, parse_type(c.type), True) for c in source.columns]


# --- checks ----------------------------------------------------------------------------------


def require_columns(df: DataFrame | StructType, required: Iterable[str], where: str) -> None:
    """Raise :class:`SchemaError` naming the missing and the present columns.

    Example:
        >>> require_columns(StructType([StructField("a", StringType())]), ["a", "b"], "bronze.x")
        Traceback (most recent call last):
        cdp_spark.errors.SchemaError: bronze.x: missing column(s) b; present: a
    """
    present = list(df.fieldNames()) if isinstance(df, StructType) else list(df.columns)
    missing = [c for c in required if c not in present]
    if missing:
        raise SchemaError(
            f"{where}: missing column(s) {', '.join(missing)}; present: {', '.join(present)}",
            hint="the data or the source declaration in conf/sources.yaml changed; align them",
        )


def conform(df: DataFrame, schema: StructType, where: str) -> DataFrame:
    """``df`` with exactly the columns of ``schema``, in order and cast to its types.

    Fails (via :func:`require_columns`) rather than inventing a missing column.

    Example:
        >>> conform(df, QUARANTINE_SCHEMA, "quarantine.records")   # doctest: +SKIP
    """
    require_columns(df, schema.fieldNames(), where)
    return df.select(*[df[f.name].cast(f.dataType).alias(f.name) for f in schema.fields])


# --- derived (normalised) silver columns -----------------------------------------------------

# Columns recognised by name for name/address normalisation (the config marks identifiers
# explicitly, but not names and addresses). The first present group wins.
NAME_PART_COLUMNS = ("first_name", "middle_name", "last_name")
# Not plain "name": products and stores have one too.
FULL_NAME_COLUMNS = ("full_name", "customer_name", "contact_name")
ADDRESS_COLUMNS = ("address", "address_line", "address_line1", "street", "street_address")
POSTCODE_COLUMNS = ("postcode", "postal_code", "zip", "zip_code")
COUNTRY_COLUMNS = ("country", "country_code")


@dataclass(frozen=True)
class DerivedColumn:
    """A normalised column silver adds: its name, what it normalises and from which columns."""

    name: str
    kind: str  # email | phone | id | typed_identifier | name | address | postcode | country
    inputs: tuple[str, ...]  # every derived column is a string


def derived_columns(source: SourceConfig) -> list[DerivedColumn]:
    """The normalised columns silver adds for ``source``, in a stable order.

    Identifier columns (``identifier:`` in the config) give ``<col>_norm`` / ``<col>_e164``;
    name, address, postcode and country columns, recognised by name, give ``name_key``,
    ``address_norm``, ``postcode_norm`` and ``country_norm``.

    Example:
        >>> src = SourceConfig(path="p", format="csv", columns=[
        ...     SourceColumn(name="email", identifier="email"), SourceColumn(name="last_name")])
        >>> [d.name for d in derived_columns(src)]
        ['email_norm', 'name_key']
    """
    names = source.column_names()
    out: list[DerivedColumn] = []
    for column in source.columns:
        target = identifier_column(column)
        if target is None:
            continue
        kind: str = column.identifier if column.identifier in ("email", "phone") else "id"
        out.append(DerivedColumn(target, kind, (column.name,)))
    if "identifier" in names and "identifier_type" in names:
        # A value whose kind is given per row (consent records: email or phone).
        out.append(
            DerivedColumn("identifier_norm", "typed_identifier", ("identifier", "identifier_type"))
        )
    parts = tuple(c for c in NAME_PART_COLUMNS if c in names)
    full = next((c for c in FULL_NAME_COLUMNS if c in names), None)
    if parts or full:
        out.append(DerivedColumn("name_key", "name", parts or (str(full),)))
    for part_kind, candidates in (
        ("address", ADDRESS_COLUMNS),
        ("postcode", POSTCODE_COLUMNS),
        ("country", COUNTRY_COLUMNS),
    ):
        found = next((c for c in candidates if c in names), None)
        if found:
            out.append(DerivedColumn(f"{part_kind}_norm", part_kind, (found,)))
    return [d for d in out if d.name not in names]


def silver_schema(source: SourceConfig) -> StructType:
    """Schema of ``silver.<source>``: typed columns, normalised columns, lineage.

    Example:
        >>> silver_schema(SourceConfig(path="p", format="csv",
        ...     columns=[SourceColumn(name="n", type="int")])).fieldNames()[:2]
        ['n', '_row_hash']
    """
    derived = [StructField(d.name, StringType(), True) for d in derived_columns(source)]
    return StructType(typed_fields(source) + derived + list(SILVER_META.fields))
