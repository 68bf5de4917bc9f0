"""Fuzzy (probabilistic) record matching over names, dates of birth and addresses.

Records that share no identifier can still be one person: "Илья Иванов, 02.01.1980, ул.
Ленина 5" and "Ilya Ivanov, 1980-01-02, 5 Lenina St". The pairs are scored by Splink, the
reference implementation of the Fellegi-Sunter model: every compared attribute (the whole
name, birth date, address, city, postcode, e-mail, phone, national id) falls into a level
(exact, Jaro-Winkler above a threshold, dates a month apart, ..., different, missing), each
level carries a match weight ``log2(m/u)``, and the sum plus the prior gives the match
probability. The parameters are estimated without labels, as Splink recommends: the prior from
pairs that agree on near-certain rules, ``u`` (how often non-matches agree by chance) from
random pairs with a fixed seed, and ``m`` (how often matches agree) by expectation-maximisation
over blocking rules. The same input and seed give the same pairs and scores.

Only candidate pairs are scored: those agreeing exactly on every attribute of at least one
blocking rule (``identity.fuzzy.blocking``), after normalisation with
:mod:`cdp_spark.normalize`, so transliterations (Илья / Ilya / Ilia), word order and address
spellings meet in one block. A block key shared by more than ``max_block_size`` records makes
no pairs, so the number of comparisons grows about linearly with the input.

Splink runs on DuckDB (in the driver) for small inputs, where Spark's per-stage overhead
dominates (5,000 records: 3 s against 68 s), and on Spark for large ones; ``backend`` and
``identity.fuzzy.spark_min_records`` choose. The graph, clustering and person ids are not
Splink's: only the scored pairs leave this module.

Example:
    >>> from cdp_spark.identity.fuzzy_config import FuzzyConfig
    >>> records = spark.createDataFrame(
    ...     [("1", "Илья", "Иванов", "02.01.1980"), ("2", "Ilya", "Ivanov", "1980-01-02")],
    ...     "record_id string, first_name string, last_name string, date_of_birth string",
    ... )   # doctest: +SKIP
    >>> fuzzy_pairs(spark, records, FuzzyConfig()).collect()   # doctest: +SKIP
    [Row(record_id_l='1', record_id_r='2', score=0.99..., rule='fuzzy:splink')]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from cdp_spark.errors import CdpError, EngineUnavailableError
from cdp_spark.identity.fuzzy_config import (
    CANONICAL_ATTRIBUTES,
    RULE_ATTRIBUTES,
    FuzzyConfig,
)
from cdp_spark.jvm import jvm_class_available
from cdp_spark.normalize import (
    address_match_key,
    is_junk_email,
    is_junk_phone,
    name_match_key,
    normalize_country,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_postcode,
    parse_date,
)

if TYPE_CHECKING:
    from splink import Linker

log = logging.getLogger(__name__)

Backend = Literal["auto", "duckdb", "spark"]
ProgressFn = Callable[[str], None]

FUZZY_RULE = "fuzzy:splink"
FUZZY_PAIRS_SCHEMA = StructType(
    [
        StructField("record_id_l", StringType(), False),
        StructField("record_id_r", StringType(), False),
        StructField("score", DoubleType(), False),
        StructField("rule", StringType(), False),
    ]
)
# A class of Splink's similarity-function jar: its presence means jaro_winkler can be registered.
SPLINK_JAR_CLASS = "uk.gov.moj.dash.linkage.JaroWinklerSimilarity"
# Unit markers that address_match_key glues to their value (apt12, bldg2).
_UNIT_MARKERS = r"(?<![\p{L}\p{N}])(?:apt|bldg|office|stroenie)(?=[\p{L}\p{N}])"
# -strasse (folded to -strase by the name-variant folds) and -str glued to a street name.
_GLUED_STREET = r"(?<=\p{L}{3})(?:strase|str)(?![\p{L}\p{N}])"
# Columns match_columns derives for the comparisons only (no rule may name them).
_DERIVED = ("address_loose",)
# Separates the values of a multi-attribute block key; cannot occur in normalised text.
_KEY_SEP = "\x1f"


# ---------------------------------------------------------------------------------------------
# Normalisation of person records for matching
# ---------------------------------------------------------------------------------------------


def _sorted_words(col: Column) -> Column:
    return F.nullif(F.array_join(F.array_sort(F.split(F.trim(col), " +")), " "), F.lit(""))


def match_columns(
    records: DataFrame,
    *,
    default_region: str = "RU",
    blocklist: Mapping[str, Iterable[str]] | None = None,
) -> DataFrame:
    """``record_id`` and the normalised attributes the matcher compares.

    ``records`` holds ``record_id`` and any subset of the canonical attributes
    (:data:`~cdp_spark.identity.fuzzy_config.CANONICAL_ATTRIBUTES`, raw text). Out come, for the
    attributes present: ``first_name``, ``last_name`` and ``name`` as name keys
    (:func:`~cdp_spark.normalize.name_match_key`: Latin script, transliteration variants
    folded, ``name`` from first and last name or ``full_name``, word order ignored);
    ``date_of_birth`` as a date (ISO, ``d.M.yyyy`` and other unambiguous formats); ``address``
    (:func:`~cdp_spark.normalize.address_match_key` of street number, street and unit);
    ``city`` the same key; ``postcode``, ``country`` (ISO alpha-2), ``state``; ``email`` and
    ``phone`` (E.164, ``default_region`` or the record's country for national numbers) with
    junk values null; ``national_id`` upper-case letters and digits; ``customer_id`` and
    ``loyalty_id`` trimmed. ``blocklist`` maps an attribute to normalised values treated as
    missing (a placeholder birth date). A value that does not normalise is null: missing.

    Example:
        >>> match_columns(spark.createDataFrame(
        ...     [("1", "Юлия Щукина", "05.01.1990")],
        ...     "record_id string, full_name string, date_of_birth string")).first()
        ... # doctest: +SKIP
        Row(record_id='1', name='iulia shukina', date_of_birth=datetime.date(1990, 1, 5))
    """
    present = set(records.columns)
    if "record_id" not in present:
        raise CdpError(
            "person records need a record_id column",
            hint=f"columns present: {', '.join(records.columns)}",
        )

    def text(name: str) -> Column:
        return F.col(name).cast("string")

    # Three selects, each using the previous one's results by name: an expression used twice
    # (the country for postcodes and phones, a key and its junk test) is then computed once;
    # inlined, Spark would evaluate these large expressions at every use.
    first: dict[str, Column] = {"record_id": text("record_id")}
    for part in ("first_name", "last_name", "full_name"):
        if part in present:
            first[part] = name_match_key(text(part))
    if "date_of_birth" in present:
        first["date_of_birth"] = parse_date(text("date_of_birth"))
    street = [text(c) for c in ("street_number", "street", "address_line2") if c in present]
    if street:
        # German street names end in -straße / -str. glued to the name (Hauptstraße,
        # Hauptstr.), which address_match_key leaves (it drops whole street-type words).
        key = address_match_key(F.concat_ws(" ", *street))
        first["address"] = _sorted_words(F.regexp_replace(key, _GLUED_STREET, ""))
    if "city" in present:
        first["city"] = address_match_key(text("city"))
    if "state" in present:
        first["state"] = normalize_name(text("state"))
    if "country" in present:
        first["country"] = normalize_country(text("country"))
    if "email" in present:
        first["email"] = normalize_email(text("email"))
    for raw in ("postcode", "phone"):
        if raw in present:
            first[raw] = text(raw)
    if "national_id" in present:
        first["national_id"] = F.nullif(
            F.upper(F.regexp_replace(text("national_id"), r"[^\p{L}\p{N}]+", "")), F.lit("")
        )
    for ident in ("customer_id", "loyalty_id"):
        if ident in present:
            first[ident] = F.nullif(F.trim(text(ident)), F.lit(""))

    second: dict[str, Column] = {name: F.col(name) for name in first}
    second.pop("full_name", None)
    parts = [F.col(c) for c in ("first_name", "last_name") if c in first]
    if parts or "full_name" in first:
        # The whole name: first and last name when the record has either, else the full
        # name. name_match_key works word by word, so sorting the words of the two keys
        # gives the key of "first last".
        joined = _sorted_words(F.concat_ws(" ", *parts)) if parts else F.lit(None)
        second["name"] = F.coalesce(joined, F.col("full_name")) if "full_name" in first else joined
    country = F.col("country") if "country" in first else None
    if "postcode" in first:
        second["postcode"] = normalize_postcode(F.col("postcode"), country)
    if "phone" in first:
        region: str | Column = (
            F.coalesce(country, F.lit(default_region)) if country is not None else default_region
        )
        second["phone"] = normalize_phone(F.col("phone"), region)
    if "address" in first:
        # The address without unit markers: "91 apt78 pobedi" (кв. 78) and "78 91 pobedi" (no
        # marker) agree here; a lower level than the exact key, which tells them apart.
        second["address_loose"] = _sorted_words(
            F.regexp_replace(F.col("address"), _UNIT_MARKERS, "")
        )

    third: dict[str, Column] = {name: F.col(name) for name in second}
    if "email" in third:
        third["email"] = F.when(~is_junk_email(F.col("email")), F.col("email"))
    if "phone" in third:
        third["phone"] = F.when(~is_junk_phone(F.col("phone")), F.col("phone"))
    for attr, values in (blocklist or {}).items():
        junk = sorted({str(v) for v in values})
        if attr in third and junk:
            third[attr] = F.when(~F.col(attr).cast("string").isin(junk), third[attr])
    return (
        records.select(*[col.alias(name) for name, col in first.items()])
        .select(*[col.alias(name) for name, col in second.items()])
        .select(*[col.alias(name) for name, col in third.items()])
    )


# ---------------------------------------------------------------------------------------------
# The Splink model built from the attributes present
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Comparison:
    """One Splink comparison and the attributes it reads (EM cannot train it on those)."""

    name: str
    attributes: frozenset[str]
    creator: Any


def _comparisons(present: Sequence[str], cfg: FuzzyConfig) -> list[_Comparison]:
    import splink.comparison_library as cl

    have = set(present)
    found: list[_Comparison] = []

    def add(name: str, attributes: Iterable[str], creator: Any) -> None:
        found.append(_Comparison(name, frozenset(attributes), creator))

    name = _name_comparison(have, cfg)
    if name is not None:
        add("name", have & {"first_name", "last_name", "name"}, name)
    if "date_of_birth" in have:
        # Exact, one typo, a month, a year (day and month swapped), ten years, else.
        add(
            "date_of_birth",
            ("date_of_birth",),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=False),
        )
    location = _location_comparison(have, cfg)
    if location is not None:
        add("location", have & _LOCATION, location)
    if "email" in have:
        add("email", ("email",), _email_comparison())
    for attr in ("phone", "national_id"):
        if attr in have:
            add(attr, (attr,), cl.ExactMatch(attr))
    return found


def _email_comparison() -> Any:
    """Same address, same user name at another provider, different.

    No similarity levels (Splink's EmailComparison has Jaro-Winkler ones): user names are
    mostly made of the person's name, so similar user names would count the name twice and
    link namesakes (mdanilova9102@ and mdanilova7758@ are two Maria Danilovas).
    """
    import splink.comparison_level_library as cll
    from splink.comparison_library import CustomComparison

    user = "regexp_extract(email, '^[^@]+', 0)"
    return CustomComparison(
        [
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email"),
            cll.CustomLevel(
                f"{user.replace('email', 'email_l')} = {user.replace('email', 'email_r')}"
            ).configure(label_for_charts="same user name"),
            cll.ElseLevel(),
        ],
        output_column_name="email",
    )


def _name_comparison(have: set[str], cfg: FuzzyConfig) -> Any | None:
    """The whole name: exact key, first and last name similar, whole name similar, surname.

    The whole-name key ignores word order, so first and last name swapped is an exact match,
    and it exists for records with only a full name too (a file with first and last names
    and another with full names: the first/last levels do not apply, the whole-name ones do).
    """
    import splink.comparison_level_library as cll
    from splink.comparison_library import CustomComparison

    if "name" not in have:
        return None
    exact: Any = cll.ExactMatchLevel("name")
    if cfg.name_frequency_adjustment:
        exact = exact.configure(tf_adjustment_column="name")
    levels: list[Any] = [cll.NullLevel("name"), exact]
    both = {"first_name", "last_name"} <= have
    for threshold in cfg.name_similarity:
        if both:
            levels.append(
                cll.And(
                    cll.JaroWinklerLevel("first_name", threshold),
                    cll.JaroWinklerLevel("last_name", threshold),
                )
            )
        levels.append(cll.JaroWinklerLevel("name", threshold))
    for part in ("last_name", "first_name"):
        if part in have:
            levels.append(cll.ExactMatchLevel(part))
    levels.append(cll.ElseLevel())
    return CustomComparison(levels, output_column_name="name")


_LOCATION = frozenset({"address", "address_loose", "postcode", "city", "state"})


def _location_comparison(have: set[str], cfg: FuzzyConfig) -> Any | None:
    """Address, postcode, city and state as one comparison.

    They are far from independent (a postcode and a city follow from a street address), and
    members of one household share all of them: compared separately, their weights would add
    up as if each were new evidence, and a family would outweigh different first names. One
    comparison scores the whole place once, from the most specific agreement down.
    """
    import splink.comparison_level_library as cll
    from splink.comparison_library import CustomComparison

    cols = [c for c in ("address", "postcode", "city", "state") if c in have]
    if not cols:
        return None
    area = [c for c in ("postcode", "city") if c in have]

    def same_area() -> Any:
        exact = [cll.ExactMatchLevel(c) for c in area]
        return exact[0] if len(exact) == 1 else cll.Or(*exact)

    nulls = [cll.NullLevel(c) for c in cols]
    levels: list[Any] = [nulls[0] if len(nulls) == 1 else cll.And(*nulls)]
    if "address" in have:
        if area:
            levels.append(
                cll.And(cll.ExactMatchLevel("address"), same_area()).configure(
                    label_for_charts="same address, same postcode or city"
                )
            )
        levels.append(cll.ExactMatchLevel("address"))
        if "address_loose" in have:
            loose = cll.ExactMatchLevel("address_loose")
            levels.append(cll.And(loose, same_area()) if area else loose)
        for threshold in cfg.address_similarity:
            similar = cll.JaroWinklerLevel("address", threshold)
            levels.append(cll.And(similar, same_area()) if area else similar)
    for col in ("postcode", "city", "state"):
        if col in have:
            levels.append(cll.ExactMatchLevel(col))
    levels.append(cll.ElseLevel())
    return CustomComparison(levels, output_column_name="location")


def _rules(rules: Sequence[Sequence[str]], present: Sequence[str]) -> list[list[str]]:
    """The rules whose attributes are all present, in order."""
    have = set(present)
    return [list(rule) for rule in rules if set(rule) <= have]


def _block_key_columns(rules: Sequence[Sequence[str]]) -> list[str]:
    return [f"_block_{i}" for i in range(len(rules))]


def with_block_keys(
    prepared: DataFrame, rules: Sequence[Sequence[str]], max_block_size: int
) -> DataFrame:
    """Add ``_block_<i>``: rule ``i``'s key, null when an attribute is missing or the key is
    shared by more than ``max_block_size`` records (it would make too many pairs to score).

    Example:
        >>> with_block_keys(prepared, [["name"], ["last_name", "date_of_birth"]], 500)
        ... # doctest: +SKIP
    """
    out = prepared
    for name, rule in zip(_block_key_columns(rules), rules, strict=True):
        parts = [F.col(a).cast("string") for a in rule]
        complete = F.lit(True)
        for part in parts:
            complete = complete & part.isNotNull()
        key = F.when(complete, F.concat_ws(_KEY_SEP, *parts))
        size = F.count(F.lit(1)).over(Window.partitionBy(key))
        out = out.withColumn(name, F.when(key.isNotNull() & (size <= max_block_size), key))
    return out


def _settings(comparisons: Sequence[_Comparison], n_block_rules: int, prior: float) -> Any:
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=[c.creator for c in comparisons],
        blocking_rules_to_generate_predictions=[
            block_on(key)
            for key in _block_key_columns(range(n_block_rules))  # type: ignore[arg-type]
        ],
        probability_two_random_records_match=prior,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def _train(
    linker: Linker,
    comparisons: Sequence[_Comparison],
    present: Sequence[str],
    n_records: int,
    cfg: FuzzyConfig,
    say: ProgressFn,
) -> None:
    """Unsupervised estimation: prior from near-certain rules, u by sampling, m by EM."""
    from splink import block_on

    total_pairs = n_records * (n_records - 1) / 2
    prior_rules = _rules(cfg.prior_rules, present)
    if prior_rules:
        say(f"fuzzy: prior from {len(prior_rules)} near-certain rules")
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*rule) for rule in prior_rules], recall=cfg.prior_recall
        )
    prior = linker.misc.save_model_to_json()["probability_two_random_records_match"]
    if not prior or prior <= 0:
        # No pair agreed on a near-certain rule (or none applies): assume about one duplicate
        # per hundred records rather than none, which would score every pair 0.
        prior = min(0.5, max(1.0, n_records / 100) / max(total_pairs, 1.0))
        linker._settings_obj._probability_two_random_records_match = prior  # no public setter
    log.info("fuzzy: prior probability that two records match %.3g", prior)

    say(f"fuzzy: u values from up to {cfg.u_max_pairs:,} random pairs (seed {cfg.seed})")
    linker.training.estimate_u_using_random_sampling(
        max_pairs=cfg.u_max_pairs, seed=cfg.seed, num_chunks=1
    )

    untrained = {c.name: c.attributes for c in comparisons}
    for rule in _rules(cfg.training, present):
        trains = [name for name, attrs in untrained.items() if not attrs & set(rule)]
        if not trains:
            continue
        say(f"fuzzy: EM over pairs agreeing on {', '.join(rule)} (trains {', '.join(trains)})")
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*rule),
                max_pairs=cfg.em_max_pairs if total_pairs > cfg.em_max_pairs else None,
            )
        except Exception as exc:  # Splink raises when a rule's blocks hold no pairs
            log.warning("fuzzy: EM over %s failed (%s); trying the next rule", rule, exc)
            continue
        for name in trains:
            untrained.pop(name)
    if untrained:
        log.warning(
            "fuzzy: no EM rule could estimate m for %s: Splink's default m values are used",
            ", ".join(sorted(untrained)),
        )


# ---------------------------------------------------------------------------------------------
# Guards: what no score may override
# ---------------------------------------------------------------------------------------------


def _similarity(a: Column, b: Column) -> Column:
    """1 - Levenshtein distance / longer length: 1 for equal texts, 0 for nothing in common."""
    longest = F.greatest(F.length(a), F.length(b))
    return F.lit(1.0) - F.levenshtein(a, b) / F.when(longest > 0, longest)


def drop_conflicting_pairs(
    pairs: DataFrame,
    prepared: DataFrame,
    cfg: FuzzyConfig,
    *,
    left: str = "record_id_l",
    right: str = "record_id_r",
) -> DataFrame:
    """``pairs`` without those whose records cannot be one person, whatever else they share.

    Members of one household share a surname, an address, often a landline and sometimes an
    e-mail: every one of them is evidence for a match, and together they outweigh a different
    first name in a model that treats attributes as independent. So, after scoring: two
    records whose first-name keys are both present and less similar than
    ``cfg.first_name_min_similarity`` (1 - Levenshtein / length; first and last name swapped
    is no conflict) are different people; so are two different birth dates when
    ``cfg.date_of_birth_must_agree`` (one typo and day and month swapped excepted).
    ``prepared`` is :func:`match_columns` output; ``left``/``right`` name the pair's ids.

    Example:
        >>> drop_conflicting_pairs(pairs, match_columns(records), cfg).count()   # doctest: +SKIP
    """
    checks: list[Column] = []
    have = set(prepared.columns)
    if cfg.first_name_min_similarity is not None and "first_name" in have:
        fl, fr = F.col("_first_l"), F.col("_first_r")
        differ = fl.isNotNull() & fr.isNotNull()
        differ = differ & (_similarity(fl, fr) < cfg.first_name_min_similarity)
        if "last_name" in have:
            swapped = (fl == F.col("_last_r")) & (fr == F.col("_last_l"))
            differ = differ & ~F.coalesce(swapped, F.lit(False))
        checks.append(differ)
    if cfg.date_of_birth_must_agree and "date_of_birth" in have:
        dl, dr = F.col("_dob_l"), F.col("_dob_r")
        typo = F.levenshtein(dl.cast("string"), dr.cast("string")) <= 1
        swapped = (
            (F.year(dl) == F.year(dr))
            & (F.month(dl) == F.dayofmonth(dr))
            & (F.dayofmonth(dl) == F.month(dr))
        )
        checks.append(dl.isNotNull() & dr.isNotNull() & ~typo & ~swapped)
    if not checks:
        return pairs
    names = {"first_name": "_first", "last_name": "_last", "date_of_birth": "_dob"}
    wanted = [c for c in names if c in have]

    def side(id_col: str, suffix: str) -> DataFrame:
        return prepared.select(
            F.col("record_id").alias(id_col), *[F.col(c).alias(names[c] + suffix) for c in wanted]
        )

    conflict = checks[0]
    for check in checks[1:]:
        conflict = conflict | check
    joined = pairs.join(side(left, "_l"), left, "left").join(side(right, "_r"), right, "left")
    return joined.where(~F.coalesce(conflict, F.lit(False))).select(*pairs.columns)


# ---------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------


def choose_backend(
    spark: SparkSession, backend: Backend, n_records: int, cfg: FuzzyConfig
) -> Literal["duckdb", "spark"]:
    """The backend Splink runs on: ``auto`` is DuckDB below ``cfg.spark_min_records``.

    Example:
        >>> choose_backend(spark, "auto", 5_000, FuzzyConfig())   # doctest: +SKIP
        'duckdb'
    """
    if backend == "auto":
        backend = cfg.backend
    if backend == "auto":
        backend = "duckdb" if n_records < cfg.spark_min_records else "spark"
    if backend not in ("duckdb", "spark"):
        raise CdpError(f"unknown fuzzy backend {backend!r}", hint="use auto, duckdb or spark")
    return backend


def ensure_similarity_functions(spark: SparkSession) -> None:
    """Make Splink's JVM similarity functions (``jaro_winkler``...) loadable in ``spark``.

    They live in a jar shipped in Splink's wheel. When the session lacks it, it is added with
    ``ADD JAR`` (a running session accepts it: no need to rebuild the session, and sessions
    that never match fuzzily do not carry it). Raises
    :class:`~cdp_spark.errors.EngineUnavailableError` when it cannot be loaded.

    Example:
        >>> ensure_similarity_functions(spark)   # doctest: +SKIP
    """
    if jvm_class_available(spark, SPLINK_JAR_CLASS):
        return
    from splink.backends.spark import similarity_jar_location

    jar = similarity_jar_location()
    try:
        spark.sql(f"ADD JAR '{jar}'")
    except Exception as exc:
        raise EngineUnavailableError(
            f"cannot add Splink's similarity jar to the Spark session: {exc}",
            hint=f"start Spark with spark.jars={jar}, or use identity.fuzzy.backend: duckdb",
        ) from exc
    if not jvm_class_available(spark, SPLINK_JAR_CLASS):
        raise EngineUnavailableError(
            f"Splink's similarity functions ({SPLINK_JAR_CLASS}) do not load in this session",
            hint=f"start Spark with spark.jars={jar}, or use identity.fuzzy.backend: duckdb",
        )


def _db_api(spark: SparkSession, backend: str) -> Any:
    if backend == "duckdb":
        from splink import DuckDBAPI

        return DuckDBAPI()
    from splink import SparkAPI

    ensure_similarity_functions(spark)
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions") or "8")
    # persist, not Splink's default checkpoint: no checkpoint folder needs configuring.
    return SparkAPI(
        spark_session=spark,
        break_lineage_method="persist",
        num_partitions_on_repartition=max(1, partitions),
    )


# ---------------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------------


def fuzzy_pairs(
    spark: SparkSession,
    records: DataFrame,
    cfg: FuzzyConfig,
    *,
    backend: Backend = "auto",
    default_region: str = "RU",
    normalized: bool = False,
    progress: ProgressFn | None = None,
) -> DataFrame:
    """Scored candidate pairs of ``records`` that are probably the same person.

    ``records``: ``record_id`` (unique) and any subset of the canonical attributes, raw; or,
    with ``normalized=True``, the output of :func:`match_columns`. Comparisons and blocking
    rules are built from the attributes present, so a file with names, addresses and birth
    dates only works. Returns :data:`FUZZY_PAIRS_SCHEMA`: ``record_id_l`` < ``record_id_r``,
    ``score`` (Splink's match probability, at least ``cfg.threshold``) and ``rule``
    (``"fuzzy:splink"``), one row per pair. ``backend``: ``auto`` defers to
    ``cfg.backend``, whose ``auto`` picks DuckDB below ``cfg.spark_min_records`` records.

    Raises :class:`~cdp_spark.errors.CdpError` when no attribute to compare or no blocking
    rule applies to the columns present.

    Example:
        >>> pairs = fuzzy_pairs(spark, records, cfg.identity.fuzzy)   # doctest: +SKIP
        >>> pairs.columns
        ['record_id_l', 'record_id_r', 'score', 'rule']
    """
    from splink import Linker

    say = progress or log.info
    prepared = (
        records
        if normalized
        else match_columns(records, default_region=default_region, blocklist=cfg.blocklist)
    )
    present = [a for a in RULE_ATTRIBUTES if a in prepared.columns]
    derived = [c for c in _DERIVED if c in prepared.columns]
    comparisons = _comparisons([*present, *derived], cfg)
    blocking = _rules(cfg.blocking, present)
    if not comparisons or not blocking:
        raise CdpError(
            "fuzzy matching needs attributes to compare and a blocking rule that applies; "
            f"present: {', '.join(present) or 'none'}",
            hint="map names, a date of birth or an address (canonical attributes: "
            + ", ".join(CANONICAL_ATTRIBUTES)
            + "), and check identity.fuzzy.blocking",
        )
    keyed = with_block_keys(
        prepared.select("record_id", *present, *derived).where(F.col("record_id").isNotNull()),
        blocking,
        cfg.max_block_size,
    )
    n_records = keyed.count()
    if n_records < 2:
        return spark.createDataFrame([], FUZZY_PAIRS_SCHEMA)
    chosen = choose_backend(spark, backend, n_records, cfg)
    say(
        f"fuzzy: {n_records:,} records on Splink's {chosen} backend; comparing "
        f"{', '.join(c.name for c in comparisons)}; {len(blocking)} blocking rules"
    )
    db_api = _db_api(spark, chosen)
    table = keyed.toArrow() if chosen == "duckdb" else keyed
    linker = Linker(
        db_api.register(table),
        _settings(comparisons, len(blocking), 1.0 / max(n_records, 2)),
        log_level=logging.WARNING,
    )
    _train(linker, comparisons, present, n_records, cfg, say)
    say(f"fuzzy: scoring candidate pairs (threshold {cfg.threshold})")
    predictions = linker.inference.predict(
        threshold_match_probability=cfg.threshold, warning_mode="never"
    )
    if chosen == "duckdb":
        pdf = predictions.as_pandas_dataframe()
        rows = [
            (min(a, b), max(a, b), float(p), FUZZY_RULE)
            for a, b, p in zip(
                pdf["record_id_l"].astype(str),
                pdf["record_id_r"].astype(str),
                pdf["match_probability"],
                strict=True,
            )
            if not math.isnan(p)
        ]
        return drop_conflicting_pairs(spark.createDataFrame(rows, FUZZY_PAIRS_SCHEMA), keyed, cfg)
    scored = predictions.as_spark_dataframe()
    left, right = F.col("record_id_l").cast("string"), F.col("record_id_r").cast("string")
    result = scored.select(
        F.least(left, right).alias("record_id_l"),
        F.greatest(left, right).alias("record_id_r"),
        F.col("match_probability").cast("double").alias("score"),
        F.lit(FUZZY_RULE).alias("rule"),
    ).where(F.col("score").isNotNull())
    # Keep the pairs and let Splink drop (unpersist) its intermediate tables.
    result = drop_conflicting_pairs(result, keyed, cfg).localCheckpoint()
    linker.table_management.delete_tables_created_by_splink_from_db()
    return result
