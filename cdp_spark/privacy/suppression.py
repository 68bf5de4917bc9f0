"""The suppression list: hashed identifiers of erased people, so late files do not re-create them.

``ops.suppression_list`` holds ``(id_type, id_hash)`` only, the hash being
:func:`cdp_spark.privacy.hashing.identifier_hash` of the normalised identifier (keyed when
``$CDP_PRIVACY_KEY`` is set). Standardize marks a record whose normalised e-mail, phone or id
is suppressed with the quarantine reason ``suppressed``: it is counted (the quarantine row keeps
source, batch, file and line but not the raw text), it never reaches silver, and its bronze row
is deleted. Identity can call :func:`suppressed_hashes` / :func:`is_suppressed` the same way.

Example:
    >>> add_to_suppression_list(lake, [("email", "ivan@mail.ru")], key=None, request_id="r1")
    ...                                                                     # doctest: +SKIP
    1
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from cdp_spark.config import CdpConfig
from cdp_spark.privacy.hashing import (
    hash_scheme,
    identifier_hash,
    identifier_hash_col,
    privacy_key,
)
from cdp_spark.storage import Lakehouse

SUPPRESSION_TABLE = "ops.suppression_list"
SUPPRESSED_REASON = "suppressed"

SUPPRESSION_SCHEMA = StructType(
    [
        StructField("id_type", StringType(), False),  # email | phone | id
        StructField("id_hash", StringType(), False),  # hex digest of the normalised identifier
        StructField("hash_scheme", StringType(), False),  # hmac-sha256 | sha256
        StructField("request_id", StringType(), False),  # the erasure that added it
        StructField("added_at", TimestampType(), False),
    ]
)


def add_to_suppression_list(
    lake: Lakehouse,
    identifiers: Iterable[tuple[str, str]],
    *,
    key: bytes | None,
    request_id: str,
) -> int:
    """MERGE ``(id_type, normalised value)`` pairs, hashed, into ``ops.suppression_list``.

    Idempotent: an identifier already suppressed keeps its first entry. Returns the number of
    distinct identifiers given.

    Example:
        >>> add_to_suppression_list(lake, [("phone", "+79123456789")], key=b"k",
        ...                         request_id="r1")                    # doctest: +SKIP
        1
    """
    now = datetime.now(tz=UTC).replace(microsecond=0)
    scheme = hash_scheme(key)
    rows = sorted(
        {
            (kind, identifier_hash(value, key), scheme, request_id, now)
            for kind, value in identifiers
        }
    )
    if not lake.exists(SUPPRESSION_TABLE):
        lake.create(SUPPRESSION_TABLE, SUPPRESSION_SCHEMA)
    if not rows:
        return 0
    df = lake.spark.createDataFrame(rows, SUPPRESSION_SCHEMA)
    known = lake.read(SUPPRESSION_TABLE).select("id_type", "id_hash")
    new = df.join(known, ["id_type", "id_hash"], "left_anti")
    lake.merge(SUPPRESSION_TABLE, new, keys=["id_type", "id_hash"])
    return len(rows)


def suppressed_hashes(lake: Lakehouse) -> list[str]:
    """Every hash on the suppression list (small: a few per erased person).

    Example:
        >>> suppressed_hashes(lake)[:1]                                    # doctest: +SKIP
        ['4de05406d02f...']
    """
    if not lake.exists(SUPPRESSION_TABLE):
        return []
    return sorted({r[0] for r in lake.read(SUPPRESSION_TABLE).select("id_hash").collect()})


def is_suppressed(columns: Sequence[Column], hashes: Sequence[str], key: bytes | None) -> Column:
    """True where any of ``columns`` (normalised identifiers) hashes to a suppressed hash.

    Example:
        >>> df.where(is_suppressed([F.col("email_norm")], hashes, key))     # doctest: +SKIP
    """
    if not hashes or not columns:
        return F.lit(False)
    out: Column = F.lit(False)
    for col in columns:
        out = out | F.coalesce(identifier_hash_col(col, key).isin(list(hashes)), F.lit(False))
    return out


def with_suppressed_reason(
    df: DataFrame,
    identifier_columns: Sequence[str],
    hashes: Sequence[str],
    key: bytes | None,
    *,
    reason_col: str = "_reason",
) -> DataFrame:
    """Set ``reason_col`` to ``suppressed`` where a normalised identifier is suppressed.

    It wins over any other reason: another reason would keep the raw text in quarantine.

    Example:
        >>> judged.transform(with_suppressed_reason, ["email_norm"], hashes, key)  # doctest: +SKIP
    """
    present = [c for c in identifier_columns if c in df.columns]
    if not hashes or not present:
        return df
    flag = is_suppressed([F.col(c) for c in present], hashes, key)
    return df.withColumn(
        reason_col, F.when(flag, F.lit(SUPPRESSED_REASON)).otherwise(F.col(reason_col))
    )


def bronze_row_key(df: DataFrame) -> Column:
    """A key of a bronze row without personal data in it: SHA-256 of file, line and raw text.

    Used to delete the bronze rows of suppressed records (the predicate lands in the Delta
    log, so it must not hold the identifiers themselves).

    Example:
        >>> bronze.select(bronze_row_key(bronze))                          # doctest: +SKIP
    """
    return F.sha2(
        F.concat_ws(
            "|",
            F.col("_source_file"),
            F.coalesce(F.col("_line").cast("string"), F.lit("")),
            F.coalesce(F.col("_raw"), F.lit("")),
        ),
        256,
    )


def suppressed_bronze_predicate(suppressed_rows: DataFrame) -> str | None:
    """A delete predicate naming the bronze rows of ``suppressed_rows`` (bronze's lineage
    columns) by batch and :func:`bronze_row_key`; None when there are none.

    Collected before the rows are written anywhere, applied after standardize's watermark.

    Example:
        >>> where = suppressed_bronze_predicate(judged.where("_reason = 'suppressed'"))
        ...                                                                 # doctest: +SKIP
        >>> lake.delete("bronze.crm", where)
        2
    """
    rows = (
        suppressed_rows.select(F.col("_batch_id"), bronze_row_key(suppressed_rows).alias("k"))
        .distinct()
        .collect()
    )
    if not rows:
        return None
    batches = ", ".join(str(int(b)) for b in sorted({r[0] for r in rows}))
    keys = ", ".join(f"'{r[1]}'" for r in sorted(rows, key=lambda r: r[1]))
    return (
        f"_batch_id IN ({batches}) AND sha2(concat_ws('|', _source_file, "
        f"coalesce(cast(_line AS STRING), ''), coalesce(_raw, '')), 256) IN ({keys})"
    )


def suppression_hook(
    df: DataFrame, identifier_columns: Sequence[str], lake: Lakehouse, cfg: CdpConfig
) -> DataFrame:
    """What standardize (and identity) call: ``df`` with ``_reason = 'suppressed'`` on the
    records of erased people; unchanged when suppression is off or the list is empty.

    Example:
        >>> judged = judged.transform(suppression_hook, ["email_norm"], lake, cfg)  # doctest: +SKIP
    """
    if not cfg.privacy.suppression:
        return df
    hashes = suppressed_hashes(lake)
    if not hashes:
        return df
    return with_suppressed_reason(df, identifier_columns, hashes, privacy_key(cfg))
