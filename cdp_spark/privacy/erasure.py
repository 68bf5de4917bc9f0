"""Right to erasure: find a person in every table and every export file, delete, vacuum, log.

:func:`run_erase` (``cdp erase``, ``jobs/erase.py``):

1. **resolves** the person: the given e-mail / phone is normalised as silver normalises it;
   with the identity tables (``gold.identity_identifiers``, ``gold.identity_clusters``,
   ``gold.person_id_history``) the person's ids, every identifier of theirs and every
   ``(source, record_id)`` of theirs are collected; without them, the identifier itself;
2. **suppresses** their hashed identifiers (``ops.suppression_list``) first, so a standardize
   running meanwhile, or a late file, does not re-create them;
3. **deletes** their rows from every table of the lakehouse (``lake.list_tables()``, so tables
   added by later stages are covered), deciding per table from its columns how a row is theirs
   (:func:`person_match`): ``person_id`` (and ``*_person_id``), ``(source, record_id)``, the
   source keys of bronze/silver tables, identity graph node ids (``src``/``dst``), normalised
   identifier columns, raw identifier columns normalised on the fly, identifier arrays, hashed
   identifier columns, and free text (raw lines, quarantine) holding any written form of their
   e-mails and phones. The delete predicate holds row hashes only, never an identifier,
   because it is written to the Delta log;
4. **rewrites** every export file (CSV, JSON lines, Parquet, text, Delta tables) under
   ``paths.exports`` without their rows;
5. **vacuums** the touched tables with ``privacy.erasure_retention_hours`` and expires their
   Delta log entries older than that (the log's file statistics hold min/max values);
6. **logs** the request in ``ops.erasure_log``: hashed identifier, times, tables touched, rows
   removed per table; no personal data.

Example:
    >>> report = run_erase(ctx, ErasureRequest(email="Ivan.Petrov@gmail.com"))  # doctest: +SKIP
    >>> report.figures["rows_removed"]
    42
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import phonenumbers
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_spark import normalize as N
from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.privacy.hashing import (
    hash_scheme,
    hmac_sha256_hex,
    identifier_hash,
    privacy_key,
    sha256_hex,
)
from cdp_spark.privacy.suppression import SUPPRESSION_TABLE, add_to_suppression_list
from cdp_spark.storage import Lakehouse, _files

log = logging.getLogger(__name__)

ERASURE_LOG_TABLE = "ops.erasure_log"
# The erasure's own bookkeeping holds hashes only and must survive the erasure.
PROTECTED_TABLES = frozenset({ERASURE_LOG_TABLE, SUPPRESSION_TABLE})

ERASURE_LOG_SCHEMA = T.StructType(
    [
        T.StructField("request_id", T.StringType(), False),
        T.StructField("identifier_type", T.StringType(), False),  # email | phone | person_id
        T.StructField("identifier_hash", T.StringType(), False),
        T.StructField("hash_scheme", T.StringType(), False),  # hmac-sha256 | sha256
        T.StructField("requested_at", T.TimestampType(), False),
        T.StructField("completed_at", T.TimestampType(), False),
        T.StructField("persons", T.IntegerType(), False),  # person_ids resolved
        T.StructField("identifiers_suppressed", T.IntegerType(), False),
        T.StructField("tables_touched", T.ArrayType(T.StringType(), False), False),
        T.StructField("rows_removed", T.MapType(T.StringType(), T.LongType(), False), False),
        T.StructField("export_files_rewritten", T.IntegerType(), False),
        T.StructField("retention_hours", T.IntegerType(), False),
    ]
)

# Naming conventions for identifier columns of tables that conf does not describe.
NORMALISED_ID_COLUMNS = frozenset({"email_norm", "phone_e164", "identifier_norm", "id_value"})
ID_ARRAY_COLUMNS = frozenset(
    {"emails", "phones", "customer_ids", "loyalty_cards", "cookie_ids", "device_ids"}
)
_ROW_HASH_COLUMNS = frozenset({"_row_hash"})
# A delete's IN list holds at most this many row hashes (one commit per chunk).
_DELETE_CHUNK = 2000

# Text to search for e-mails and phones (Java regex, for Spark).
_EMAIL_IN_TEXT = r"[^\s,;:\"'<>()\[\]{}|]+@[^\s,;:\"'<>()\[\]{}|]+"
_PHONE_IN_TEXT = r"\+?\(?\d[\d\s().\-]{5,}\d"


@dataclass(frozen=True)
class ErasureRequest:
    """Who to erase: exactly one of an e-mail, a phone or a person_id.

    Example:
        >>> ErasureRequest(email="ivan@mail.ru").kind
        'email'
    """

    email: str | None = None
    phone: str | None = None
    person_id: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.email, self.phone, self.person_id) if v is not None]
        if len(given) != 1 or not str(given[0]).strip():
            raise CdpError(
                "an erasure needs exactly one of --email, --phone or --person-id",
                hint="e.g. cdp erase --email ivan@mail.ru --dry-run",
            )

    @property
    def kind(self) -> str:
        if self.email is not None:
            return "email"
        return "phone" if self.phone is not None else "person_id"

    @property
    def value(self) -> str:
        return str(self.email if self.email is not None else self.phone or self.person_id).strip()


@dataclass
class Person:
    """Everything that identifies one person (or the few ids identity merged into them)."""

    person_ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)  # normalised
    phones: set[str] = field(default_factory=set)  # E.164
    ids: set[str] = field(default_factory=set)  # customer ids, loyalty cards, cookies, devices
    raw_values: set[str] = field(default_factory=set)  # as given in the request
    records: set[tuple[str, str]] = field(default_factory=set)  # (source, record_id)

    def identifiers(self) -> list[tuple[str, str]]:
        """``(id_type, value)`` pairs for the suppression list."""
        out = [("email", e) for e in self.emails] + [("phone", p) for p in self.phones]
        return sorted(out + [("id", i) for i in self.ids])

    def values(self) -> set[str]:
        """Every identifier value, normalised, as identifier columns hold them."""
        return self.emails | self.phones | self.ids

    def national_numbers(self) -> set[str]:
        """The national significant numbers of the phones (``9123456789``), to find a phone
        written in any format in free text."""
        out = set()
        for phone in self.phones:
            try:
                out.add(str(phonenumbers.parse(phone).national_number))
            except phonenumbers.NumberParseException:
                out.add(re.sub(r"\D", "", phone))
        return {n for n in out if len(n) >= 6}

    def email_keys(self) -> set[str]:
        """:func:`email_key` of every e-mail of theirs (and of the request, if an e-mail)."""
        return {email_key(e) for e in self.emails | self.raw_values if "@" in e}

    def hashes(self, key: bytes | None) -> set[str]:
        """SHA-256 (and HMAC, with the key) digests of every identifier: what hashed columns
        (ads audiences, pseudonymised tables) hold."""
        out = {sha256_hex(v) for v in self.values() | self.person_ids}
        if key:
            out |= {hmac_sha256_hex(v, key) for v in self.values() | self.person_ids}
        return out

    def node_ids(self) -> set[str]:
        """Identity-graph node ids (``email:<v>``, ``rec:<source>:<record_id>``...)."""
        kinds = ("email", "phone", "customer_id", "loyalty_card", "cookie_id", "device_id")
        out = {f"{k}:{v}" for k in kinds for v in self.values()}
        return out | {f"rec:{s}:{r}" for s, r in self.records}

    def is_empty(self) -> bool:
        return not (self.person_ids or self.values() or self.records)


# --- resolving the person ----------------------------------------------------------------------


def normalise_identifier(ctx: RunContext, kind: str, value: str) -> str:
    """``value`` normalised as silver normalises it (e-mail, E.164 phone); else trimmed.

    Example:
        >>> normalise_identifier(ctx, "email", " Ivan.Petrov@GoogleMail.com ")  # doctest: +SKIP
        'ivanpetrov@gmail.com'
    """
    df = ctx.spark.createDataFrame([(value,)], "v string")
    if kind == "email":
        expr = N.normalize_email(F.col("v"))
    elif kind == "phone":
        expr = N.normalize_phone(F.col("v"), default_region=ctx.cfg.standardize.default_region)
    else:
        return value.strip()
    row = df.select(expr.alias("n")).first()
    normalised = row["n"] if row else None
    if normalised is None:
        # Not a valid address/number for the normaliser: search the value as written.
        return value.strip().lower() if kind == "email" else value.strip()
    return str(normalised)


def resolve_person(ctx: RunContext, request: ErasureRequest) -> Person:
    """The person behind ``request``: through the identity tables when they exist.

    Example:
        >>> resolve_person(ctx, ErasureRequest(phone="8 912 345-67-89")).phones  # doctest: +SKIP
        {'+79123456789'}
    """
    lake = ctx.lake
    person = Person(raw_values={request.value})
    if request.kind == "person_id":
        person.person_ids.add(request.value)
    else:
        value = normalise_identifier(ctx, request.kind, request.value)
        (person.emails if request.kind == "email" else person.phones).add(value)

    ids_table, clusters, history = (
        "gold.identity_identifiers",
        "gold.identity_clusters",
        "gold.person_id_history",
    )
    if lake.exists(ids_table):
        identifiers = lake.read(ids_table).select("id_type", "id_value", "person_id")
        found = identifiers.where(F.col("id_value").isin(sorted(person.values()))).collect()
        person.person_ids |= {r["person_id"] for r in found if r["person_id"]}
    if person.person_ids and lake.exists(history):
        # Merges and splits: ids this person had before (older rows may still carry them).
        links = lake.read(history).select("old_person_id", "new_person_id").collect()
        changed = True
        while changed:
            before = len(person.person_ids)
            for r in links:
                if r[0] in person.person_ids or r[1] in person.person_ids:
                    person.person_ids |= {v for v in (r[0], r[1]) if v}
            changed = len(person.person_ids) != before
    if person.person_ids and lake.exists(ids_table):
        pids = sorted(person.person_ids)
        for r in lake.read(ids_table).where(F.col("person_id").isin(pids)).collect():
            kind, value = r["id_type"], r["id_value"]
            if value is None:
                continue
            if kind == "email":
                person.emails.add(value)
            elif kind == "phone":
                person.phones.add(value)
            else:
                person.ids.add(value)
    if person.person_ids and lake.exists(clusters):
        pids = sorted(person.person_ids)
        rows = lake.read(clusters).where(F.col("person_id").isin(pids))
        person.records |= {(r[0], r[1]) for r in rows.select("source", "record_id").collect()}
    profiles = "gold.customer_profiles"
    if person.person_ids and lake.exists(profiles):
        df = lake.read(profiles)
        arrays = [c for c in df.columns if c in ID_ARRAY_COLUMNS]
        if arrays and "person_id" in df.columns:
            for r in df.where(F.col("person_id").isin(sorted(person.person_ids))).collect():
                for c in arrays:
                    for v in r[c] or []:
                        if c == "emails":
                            person.emails.add(v)
                        elif c == "phones":
                            person.phones.add(v)
                        else:
                            person.ids.add(v)
    return person


# --- finding a person's rows in any table ------------------------------------------------------


@dataclass(frozen=True)
class ColumnRules:
    """Which columns hold what, from ``conf/privacy.yaml`` and ``conf/sources.yaml``."""

    email: frozenset[str]
    phone: frozenset[str]
    ids: frozenset[str]
    raw_text: frozenset[str]
    hashed: frozenset[str]
    default_region: str

    @classmethod
    def from_config(cls, cfg: CdpConfig) -> ColumnRules:
        declared = cfg.privacy.identifier_columns
        email = set(declared.get("email", []))
        phone = set(declared.get("phone", []))
        ids = set(declared.get("id", []))
        for source in cfg.sources.values():
            for c in source.columns:
                if c.identifier == "email":
                    email.add(c.name)
                elif c.identifier == "phone":
                    phone.add(c.name)
                elif c.identifier is not None:
                    ids.add(c.name)
        return cls(
            email=frozenset(email),
            phone=frozenset(phone),
            ids=frozenset(ids),
            raw_text=frozenset(cfg.privacy.raw_text_columns),
            hashed=frozenset(cfg.privacy.hashed_identifier_columns),
            default_region=cfg.standardize.default_region,
        )


def _lit_array(values: Iterable[str]) -> Column:
    return F.array(*[F.lit(v) for v in sorted(values)])


def email_key_col(col: Column) -> Column:
    """:func:`email_key` as a Spark expression: lower case, no ``+tag``, provider aliases,
    gmail without dots. Cheaper than the full normaliser and looser (it matches more forms),
    which is what a search for one person's rows needs.

    Example:
        >>> df.where(email_key_col(F.col("email")).isin(keys))           # doctest: +SKIP
    """
    s = F.lower(F.trim(col))
    local = F.substring_index(F.substring_index(s, "@", 1), "+", 1)
    domain = F.substring_index(s, "@", -1)
    aliases = F.create_map(*[F.lit(x) for kv in N.EMAIL_DOMAIN_ALIASES.items() for x in kv])
    domain = F.coalesce(F.try_element_at(aliases, domain), domain)
    local = F.when(domain == "gmail.com", F.replace(local, F.lit("."), F.lit(""))).otherwise(local)
    return F.concat(local, F.lit("@"), domain)


def text_mentions(text: Column, person: Person) -> Column:
    """True where free text holds one of the person's e-mails (in any case, with dots or a
    +tag as silver would normalise them away) or phones (in any format), or an id.

    Example:
        >>> quarantine.where(text_mentions(F.col("raw"), person))          # doctest: +SKIP
    """
    conds: list[Column] = []
    low = F.lower(text)
    literal = {v.lower() for v in person.values() | person.raw_values if len(v) >= 4}
    for value in sorted(literal):
        conds.append(F.instr(low, value) > 0)
    keys = person.email_keys()
    if keys:
        candidates = F.regexp_extract_all(low, F.lit(_EMAIL_IN_TEXT), 0)
        conds.append(F.arrays_overlap(F.transform(candidates, email_key_col), _lit_array(keys)))
    numbers = person.national_numbers()
    if numbers:
        digits = F.transform(
            F.regexp_extract_all(text, F.lit(_PHONE_IN_TEXT), 0),
            lambda c: F.regexp_replace(c, r"\D", ""),
        )
        for nsn in sorted(numbers):
            conds.append(F.exists(digits, _ends_with_number(nsn)))
    if not conds:
        return F.lit(False)
    out = conds[0]
    for c in conds[1:]:
        out = out | c
    return F.coalesce(out, F.lit(False))


def _ends_with_number(nsn: str) -> Any:
    # A digit run is the number when it ends with it, with at most a country code and a
    # trunk or international prefix before it (8, 0, 00, 810, +7...).
    def check(d: Column) -> Column:
        return d.endswith(nsn) & (F.length(d) <= len(nsn) + 4)

    return check


def _record_id(keys: Sequence[str]) -> Column:
    return F.concat_ws("|", *[F.trim(F.col(k).cast("string")) for k in keys])


def person_match(
    table: str,
    schema: T.StructType,
    person: Person,
    rules: ColumnRules,
    cfg: CdpConfig,
    key: bytes | None,
) -> tuple[Column | None, list[str]]:
    """A condition true on the rows of ``table`` that belong to ``person``, and the columns
    it looked at; ``(None, [])`` when the table has no column that can tell.

    Example:
        >>> cond, cols = person_match("silver.orders", schema, person, rules, cfg, None)
        ...                                                               # doctest: +SKIP
    """
    conds: list[Column] = []
    used: list[str] = []
    fields = {f.name: f for f in schema.fields}
    values = person.values()
    hashes = person.hashes(key)

    def add(cond: Column, name: str) -> None:
        conds.append(F.coalesce(cond, F.lit(False)))
        used.append(name)

    for name, f in fields.items():
        col = F.col(f"`{name}`")
        low = name.lower()
        if isinstance(f.dataType, T.StringType):
            if low == "person_id" or low.endswith("_person_id"):
                if person.person_ids:
                    add(col.isin(sorted(person.person_ids)), name)
            elif low in ("src", "dst"):
                add(col.isin(sorted(person.node_ids())), name)
            elif low in _ROW_HASH_COLUMNS:
                continue
            elif name in rules.hashed or "hash" in low or "sha256" in low:
                add(F.lower(F.trim(col)).isin(sorted(hashes)), name)
            elif name in rules.email:
                if person.email_keys():
                    add(email_key_col(col).isin(sorted(person.email_keys())), name)
            elif name in rules.phone:
                # Any format (8 (912) ..., +7 912 ..., 0079...): the digits end with the
                # national number. No phone parser (a Python UDF) over whole tables.
                if person.phones:
                    add(text_mentions(col, person), name)
            elif low == "identifier":
                # A value whose kind is in another column (consent): any kind, as text.
                add(
                    F.trim(col).isin(sorted(values | person.raw_values))
                    | text_mentions(col, person),
                    name,
                )
            elif name in rules.ids:
                add(F.trim(col).isin(sorted(values | person.raw_values)), name)
            elif low in NORMALISED_ID_COLUMNS or low.endswith(("_norm", "_e164")):
                if low.endswith("_norm") and low not in NORMALISED_ID_COLUMNS:
                    base = name[: -len("_norm")]
                    if base not in rules.email | rules.ids:
                        continue  # name_key, address_norm, country_norm...: not identifiers
                add(col.isin(sorted(values)), name)
            elif name in rules.raw_text:
                add(text_mentions(col, person), name)
        elif isinstance(f.dataType, T.ArrayType) and isinstance(
            f.dataType.elementType, T.StringType
        ):
            if low in ID_ARRAY_COLUMNS or name in rules.email | rules.phone | rules.ids:
                add(F.arrays_overlap(col, _lit_array(values or {"\x00"})), name)
        elif isinstance(f.dataType, T.BinaryType) and (
            name in rules.raw_text or low == "raw_bytes"
        ):
            # Undecodable bytes (quarantine): identifiers are ASCII, Latin-1 keeps them.
            add(text_mentions(F.decode(col, "ISO-8859-1"), person), name)

    if "source" in fields and "record_id" in fields and person.records:
        pairs = sorted(f"{s}\x1f{r}" for s, r in person.records)
        add(F.concat_ws("\x1f", F.col("source"), F.col("record_id")).isin(pairs), "record_id")
    layer, _, name = table.partition(".")
    source = cfg.sources.get(name)
    if layer in ("bronze", "silver") and source is not None and source.keys and person.records:
        mine = sorted(r for s, r in person.records if s == name)
        if mine and all(k in fields for k in source.keys):
            add(_record_id(source.keys).isin(mine), "+".join(source.keys))
    if not conds:
        return None, []
    out = conds[0]
    for c in conds[1:]:
        out = out | c
    return out, used


# --- deleting ------------------------------------------------------------------------------


def row_hash_sql(schema: T.StructType) -> str:
    """A SQL expression hashing a whole row: the delete predicate names rows by this hash,
    so the Delta log (which records the predicate) never holds an identifier.

    Example:
        >>> row_hash_sql(T.StructType([T.StructField("a", T.StringType())]))
        'sha2(to_json(struct(`a`)), 256)'
    """
    cols = ", ".join(f"`{f.name}`" for f in schema.fields)
    return f"sha2(to_json(struct({cols})), 256)"


def _sql_literal(value: Any, dtype: T.DataType) -> str | None:
    if value is None:
        return None
    if isinstance(dtype, T.IntegerType | T.LongType | T.ShortType | T.ByteType):
        return str(int(value))
    if isinstance(dtype, T.DateType) and isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(dtype, T.StringType) and re.fullmatch(r"[\w\-.:]{1,64}", str(value)):
        return f"'{value}'"
    return None


@dataclass
class TableHit:
    """Rows of one table that belong to the person."""

    table: str
    rows: int
    columns: list[str]
    predicates: list[str] = field(default_factory=list)


def find_rows(
    lake: Lakehouse,
    table: str,
    match: Column,
    pii: set[str],
    partition_by: Sequence[str] = (),
) -> TableHit:
    """Count the matching rows of ``table`` and build delete predicates naming them by hash.

    Partition columns that are not PII narrow the predicate (file pruning); each predicate
    holds at most ``_DELETE_CHUNK`` row hashes.

    Example:
        >>> find_rows(lake, "silver.orders", cond, set()).rows              # doctest: +SKIP
        3
    """
    df = lake.read(table)
    schema = df.schema
    parts = [p for p in partition_by if p.lower() not in pii]
    hashed = df.where(match).select(
        F.expr(row_hash_sql(schema)).alias("__h"), *[F.col(f"`{p}`") for p in parts]
    )
    rows = hashed.collect()
    hit = TableHit(table, len(rows), [])
    if not rows:
        return hit
    by_hash = sorted({r["__h"] for r in rows})
    prefilter: list[str] = []
    for p in parts:
        literals = {_sql_literal(r[p], schema[p].dataType) for r in rows}
        if None in literals:
            continue
        prefilter.append(f"`{p}` IN ({', '.join(sorted(str(v) for v in literals))})")
    for i in range(0, len(by_hash), _DELETE_CHUNK):
        chunk = ", ".join(f"'{h}'" for h in by_hash[i : i + _DELETE_CHUNK])
        hit.predicates.append(" AND ".join([*prefilter, f"{row_hash_sql(schema)} IN ({chunk})"]))
    return hit


# --- export files ------------------------------------------------------------------------------


class TextMatcher:
    """The Python side of :func:`text_mentions`, for export files read without Spark."""

    def __init__(self, person: Person, key: bytes | None) -> None:
        self.tokens = {
            v.strip().lower()
            for v in person.values() | person.raw_values | person.person_ids | person.hashes(key)
        }
        self.email_keys = {email_key(e) for e in person.emails | person.raw_values if "@" in e}
        self.numbers = person.national_numbers()
        self.node_ids = {n.lower() for n in person.node_ids()}

    def matches(self, value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, list | tuple):
            return any(self.matches(v) for v in value)
        if isinstance(value, dict):
            return any(self.matches(v) for v in value.values())
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        text = str(value)
        low = text.strip().lower()
        if low in self.tokens or low.lstrip("'") in self.tokens or low in self.node_ids:
            return True
        if any(t in low for t in self.tokens if len(t) >= 6):
            return True
        if "@" in text and any(email_key(m) in self.email_keys for m in _EMAIL_PY.findall(low)):
            return True
        if self.numbers:
            for run in _PHONE_PY.findall(text):
                digits = re.sub(r"\D", "", run)
                if any(digits.endswith(n) and len(digits) <= len(n) + 4 for n in self.numbers):
                    return True
        return False


_EMAIL_PY = re.compile(r"[^\s,;:\"'<>()\[\]{}|]+@[^\s,;:\"'<>()\[\]{}|]+")
_PHONE_PY = re.compile(r"\+?\(?\d[\d\s().\-]{5,}\d")


def email_key(value: str) -> str:
    """A loose matching key of an e-mail (lower case, no +tag, gmail without dots).

    Example:
        >>> email_key(" Ivan.Petrov+shop@GoogleMail.com ")
        'ivanpetrov@gmail.com'
    """
    s = value.strip().lower()
    if "<" in s and ">" in s:
        s = s[s.rfind("<") + 1 : s.rfind(">")]
    s = s.removeprefix("mailto:").strip("<>\"'`()[] ")
    local, _, domain = s.rpartition("@")
    domain = N.EMAIL_DOMAIN_ALIASES.get(domain, domain)
    local = local.split("+", 1)[0]
    if domain == "gmail.com":
        local = local.replace(".", "")
    return f"{local}@{domain}"


@dataclass
class ExportResult:
    """One export file or table rewritten without the person's rows."""

    path: str
    rows_removed: int


def export_files(root: Path) -> tuple[list[Path], list[Path]]:
    """Plain files and Delta tables (folders with ``_delta_log``) under ``root``.

    Example:
        >>> export_files(Path("data/exports"))                            # doctest: +SKIP
    """
    files: list[Path] = []
    tables: list[Path] = []
    if not root.is_dir():
        return files, tables
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        if "_delta_log" in dirs:
            tables.append(here)
            dirs[:] = []
            continue
        files.extend(here / n for n in names if not n.startswith("."))
    return sorted(files), sorted(tables)


def _replace_atomically(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".erase-", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Hadoop's local file system keeps a checksum beside each file it wrote; a stale one
    # would make Spark refuse to read the rewritten file.
    (path.parent / f".{path.name}.crc").unlink(missing_ok=True)


def erase_from_file(path: Path, matcher: TextMatcher, *, dry_run: bool) -> int:
    """Remove the person's rows from one export file; returns how many.

    CSV (header kept, every value rewritten verbatim), JSON lines, Parquet; any other file is
    taken line by line. The file is replaced atomically (write aside, then rename).

    Example:
        >>> erase_from_file(Path("exports/esp/vip/run_date=2026-03-01/part.csv"), m,
        ...                 dry_run=True)                                 # doctest: +SKIP
        1
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        mask = [not any(matcher.matches(v) for v in row.values()) for row in table.to_pylist()]
        removed = mask.count(False)
        if removed and not dry_run:
            kept = table.filter(pc.equal(mask, True)) if mask else table
            _replace_atomically(path, lambda tmp: pq.write_table(kept, tmp))
        return removed
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    if suffix == ".csv":
        rows = list(csv.reader(text.splitlines(keepends=True)))
        if not rows:
            return 0
        header, body = rows[0], rows[1:]
        kept_rows = [r for r in body if not any(matcher.matches(v) for v in r)]
        removed = len(body) - len(kept_rows)
        if removed and not dry_run:

            def _write(tmp: Path) -> None:
                with tmp.open("w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
                    writer = csv.writer(fh, lineterminator="\n")
                    writer.writerow(header)
                    writer.writerows(kept_rows)

            _replace_atomically(path, _write)
        return removed
    lines = text.splitlines(keepends=True)
    kept_lines = []
    for line in lines:
        value: Any = line
        if suffix in (".jsonl", ".json", ".ndjson"):
            try:
                value = json.loads(line)
            except ValueError:
                value = line
        if isinstance(value, dict):
            hit = any(matcher.matches(v) for v in value.values()) or matcher.matches(line)
        else:
            hit = matcher.matches(line.strip()) or matcher.matches(line)
        if not hit:
            kept_lines.append(line)
    removed = len(lines) - len(kept_lines)
    if removed and not dry_run:
        _replace_atomically(
            path,
            lambda tmp: tmp.write_text(
                "".join(kept_lines), encoding="utf-8", errors="surrogateescape"
            ),
        )
    return removed


def erase_from_delta_export(path: Path, matcher: TextMatcher, *, dry_run: bool) -> int:
    """Rewrite a Delta table under the exports folder without the person's rows, and vacuum
    it at once (exports are rebuilt each run: no time travel is kept for them).

    Example:
        >>> erase_from_delta_export(Path("data/exports/ads_table"), m, dry_run=False)
        ...                                                               # doctest: +SKIP
        2
    """
    import pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake

    dt = DeltaTable(str(path))
    table = dt.to_pyarrow_table()
    mask = [not any(matcher.matches(v) for v in row.values()) for row in table.to_pylist()]
    removed = mask.count(False)
    if removed and not dry_run:
        kept = table.filter(pc.equal(mask, True))
        write_deltalake(
            str(path), kept, mode="overwrite", partition_by=dt.metadata().partition_columns or None
        )
        dt = DeltaTable(str(path))
        dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True)
        expire_log(str(path), retention_hours=0)
    return removed


# --- vacuum and log expiry -----------------------------------------------------------------------


def expire_log(table_uri: str, *, retention_hours: int) -> int:
    """Checkpoint the table, then delete the Delta log files that only versions older than
    ``retention_hours`` need; returns how many were deleted.

    Why: each commit's ``add`` actions carry min/max statistics of the file's columns, so the
    log of a version that held a person's row can hold their e-mail. The files before a
    checkpoint ``C`` are deleted only when every version before ``C`` is older than the
    retention, so time travel within the retention keeps working (from that checkpoint).

    Example:
        >>> expire_log("/data/lake/silver/crm_contacts", retention_hours=0)  # doctest: +SKIP
        12
    """
    from deltalake import DeltaTable

    DeltaTable(_files.native_uri(table_uri)).create_checkpoint()
    storage = _files.Storage.for_root(table_uri)
    files = storage.list_files(f"{table_uri}/_delta_log")
    cutoff_ns = (time.time() - retention_hours * 3600) * 1e9
    versions: dict[int, list[Any]] = {}
    commit_ns: dict[int, float] = {}
    checkpoints: set[int] = set()
    for info in files:
        m = re.match(r"^(\d{20})\.(.+)$", info.base_name)
        if not m:
            continue
        version = int(m.group(1))
        versions.setdefault(version, []).append(info)
        if m.group(2) == "json":
            commit_ns[version] = float(info.mtime_ns or 0)
        elif m.group(2).startswith("checkpoint"):
            checkpoints.add(version)
    # The newest checkpoint all of whose earlier versions are past the retention.
    keep_from = next(
        (
            c
            for c in sorted(checkpoints, reverse=True)
            if all(ns <= cutoff_ns for v, ns in commit_ns.items() if v < c)
        ),
        0,
    )
    doomed = [i.path for v, infos in versions.items() if v < keep_from for i in infos]
    storage.delete_files(doomed)
    return len(doomed)


def vacuum_after_erasure(lake: Lakehouse, table: str, retention_hours: int) -> int:
    """Vacuum ``table`` with ``retention_hours`` and expire its old log; returns files removed.

    ``enforce_retention`` is lifted below Delta's 7-day default: an erasure must be able to
    remove the data sooner (the trade-off is explained in docs/security.md).

    Example:
        >>> vacuum_after_erasure(lake, "silver.orders", 0)                   # doctest: +SKIP
        3
    """
    removed = lake.vacuum(
        table, retention_hours=retention_hours, enforce_retention=retention_hours >= 168
    )
    expired = 0
    if lake.engine_name == "delta-rs":
        expired = expire_log(lake.path(table), retention_hours=retention_hours)
    return len(removed) + expired


# --- the stage -----------------------------------------------------------------------------------


def _pii_names(cfg: CdpConfig) -> set[str]:
    rules = ColumnRules.from_config(cfg)
    return {c.lower() for c in cfg.privacy.pii_columns} | {
        c.lower() for c in rules.email | rules.phone | rules.ids
    }


def run_erase(
    ctx: RunContext,
    request: ErasureRequest,
    *,
    dry_run: bool = False,
    retention_hours: int | None = None,
) -> StageReport:
    """Erase one person from every table and export file (see the module docstring).

    ``dry_run`` reports what would be deleted and changes nothing. ``retention_hours``
    overrides ``privacy.erasure_retention_hours``.

    Example:
        >>> run_erase(ctx, ErasureRequest(phone="+79123456789"), dry_run=True).rows[0]
        ...                                                               # doctest: +SKIP
        {'table': 'bronze.pos_sales', 'rows': 12, 'columns': 'phone, _raw'}
    """
    cfg, lake = ctx.cfg, ctx.lake
    requested_at = datetime.now(tz=UTC).replace(microsecond=0)
    retention = cfg.privacy.erasure_retention_hours if retention_hours is None else retention_hours
    key = privacy_key(cfg)
    request_id = uuid.uuid4().hex
    ctx.progress(f"erase: resolving the person ({request.kind})")
    person = resolve_person(ctx, request)
    if not dry_run and cfg.privacy.suppression:
        add_to_suppression_list(lake, person.identifiers(), key=key, request_id=request_id)

    rules = ColumnRules.from_config(cfg)
    pii = _pii_names(cfg)
    hits: list[TableHit] = []
    for info in lake.list_tables():
        if info.name in PROTECTED_TABLES:
            continue
        schema = lake.read(info.name).schema
        match, used = person_match(info.name, schema, person, rules, cfg, key)
        if match is None:
            continue
        ctx.progress(f"erase: searching {info.name}")
        hit = find_rows(lake, info.name, match, pii, info.partition_by)
        hit.columns = used
        if hit.rows:
            hits.append(hit)

    removed: dict[str, int] = {}
    for hit in hits:
        if dry_run:
            removed[hit.table] = hit.rows
            continue
        ctx.progress(f"erase: deleting {hit.rows} row(s) from {hit.table}")
        removed[hit.table] = sum(lake.delete(hit.table, p) for p in hit.predicates)

    matcher = TextMatcher(person, key)
    exports: list[ExportResult] = []
    files, delta_exports = export_files(Path(cfg.resolve(cfg.paths.exports)))
    for path in files:
        n = erase_from_file(path, matcher, dry_run=dry_run)
        if n:
            exports.append(ExportResult(str(path), n))
    for path in delta_exports:
        n = erase_from_delta_export(path, matcher, dry_run=dry_run)
        if n:
            exports.append(ExportResult(str(path), n))

    if not dry_run:
        for table in removed:
            ctx.progress(f"erase: vacuuming {table} (retention {retention} h)")
            vacuum_after_erasure(lake, table, retention)
        write_erasure_log(
            lake,
            request,
            request_id=request_id,
            key=key,
            requested_at=requested_at,
            persons=len(person.person_ids),
            suppressed=len(person.identifiers()) if cfg.privacy.suppression else 0,
            removed=removed,
            export_files=len(exports),
            retention_hours=retention,
        )
    rows = [
        {"table": h.table, "rows": removed.get(h.table, h.rows), "columns": ", ".join(h.columns)}
        for h in hits
    ] + [{"table": f"export:{e.path}", "rows": e.rows_removed, "columns": ""} for e in exports]
    figures = {
        "request_id": request_id if not dry_run else "(dry run)",
        "dry_run": dry_run,
        "persons": len(person.person_ids),
        "identifiers": len(person.identifiers()),
        "tables_touched": len(removed),
        "rows_removed": sum(removed.values()),
        "export_files": len(exports),
        "export_rows_removed": sum(e.rows_removed for e in exports),
        "retention_hours": retention,
    }
    return StageReport(stage="erase", figures=figures, rows=rows)


def write_erasure_log(
    lake: Lakehouse,
    request: ErasureRequest,
    *,
    request_id: str,
    key: bytes | None,
    requested_at: datetime,
    persons: int,
    suppressed: int,
    removed: dict[str, int],
    export_files: int,
    retention_hours: int,
) -> None:
    """Append one ``ops.erasure_log`` row: hashes, times and counts, no personal data.

    Example:
        >>> write_erasure_log(lake, req, request_id="r1", key=None, ...)  # doctest: +SKIP
    """
    if not lake.exists(ERASURE_LOG_TABLE):
        lake.create(ERASURE_LOG_TABLE, ERASURE_LOG_SCHEMA)
    value = request.value
    if request.kind == "email":
        value = value.lower()
    row = (
        request_id,
        request.kind,
        identifier_hash(value, key),
        hash_scheme(key),
        requested_at,
        datetime.now(tz=UTC).replace(microsecond=0),
        persons,
        suppressed,
        sorted(removed),
        {t: int(n) for t, n in sorted(removed.items())},
        export_files,
        retention_hours,
    )
    lake.append(ERASURE_LOG_TABLE, lake.spark.createDataFrame([row], ERASURE_LOG_SCHEMA))


def vacuum_all(ctx: RunContext, *, retention_hours: int | None = None) -> StageReport:
    """Vacuum every table with the erasure retention and expire old log entries: run it on a
    schedule so data deleted by erasures (and suppressed late rows) stops being reachable by
    time travel once the retention has passed.

    Example:
        >>> vacuum_all(ctx).figures["tables"]                            # doctest: +SKIP
        24
    """
    cfg, lake = ctx.cfg, ctx.lake
    retention = cfg.privacy.erasure_retention_hours if retention_hours is None else retention_hours
    rows = []
    for info in lake.list_tables():
        ctx.progress(f"vacuum {info.name} (retention {retention} h)")
        files = vacuum_after_erasure(lake, info.name, retention)
        rows.append({"table": info.name, "files_removed": files})
    return StageReport(
        stage="erase-vacuum",
        figures={"tables": len(rows), "retention_hours": retention},
        rows=rows,
    )
