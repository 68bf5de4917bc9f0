"""Configuration of fuzzy (probabilistic) matching (``identity.fuzzy`` in ``conf/identity.yaml``).

The matcher is Splink's Fellegi-Sunter model (:mod:`cdp_spark.identity.fuzzy`); these keys say
which pairs it looks at (``blocking``), how it estimates its parameters without labels
(``training``, ``prior_rules``, ``seed``...), which pairs become edges (``threshold``) and which
values never count as evidence (``blocklist``). Rules are lists of attribute names: the
canonical attributes of a person record (:data:`CANONICAL_ATTRIBUTES`) plus two derived keys,
``name`` (the whole name, transliteration variants folded, word order ignored) and ``address``
(street number, street and unit, abbreviations and word order folded).

Example:
    >>> cfg = FuzzyConfig(threshold=0.99, blocking=[["name"], ["last_name", "date_of_birth"]])
    >>> cfg.blocking[1]
    ['last_name', 'date_of_birth']
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, field_validator

from cdp_spark._settings import Settings

# The attributes a person record may carry (`cdp resolve --map canonical=column`).
CanonicalAttribute = Literal[
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "date_of_birth",
    "street_number",
    "street",
    "address_line2",
    "city",
    "postcode",
    "state",
    "country",
    "national_id",
    "customer_id",
    "loyalty_id",
]
CANONICAL_ATTRIBUTES: tuple[str, ...] = get_args(CanonicalAttribute)

# What blocking and training rules may name: the attributes the matcher compares (names and
# addresses through their derived keys).
RuleAttribute = Literal[
    "name",
    "first_name",
    "last_name",
    "date_of_birth",
    "address",
    "city",
    "postcode",
    "state",
    "country",
    "email",
    "phone",
    "national_id",
]
RULE_ATTRIBUTES: tuple[str, ...] = get_args(RuleAttribute)

Rule = list[RuleAttribute]


_DEFAULT_TRAINING: list[Rule] = [["date_of_birth"], ["name"], ["postcode"], ["address"]]
_DEFAULT_PRIOR_RULES: list[Rule] = [
    ["name", "date_of_birth"],
    ["name", "address"],
    ["email"],
    ["phone"],
    ["national_id"],
]


def _rule_list(rules: list[Rule]) -> list[Rule]:
    return [list(rule) for rule in rules]


def _default_blocking() -> list[Rule]:
    return [
        ["name"],
        ["last_name", "date_of_birth"],
        ["first_name", "date_of_birth"],
        ["date_of_birth", "postcode"],
        ["last_name", "postcode"],
        ["address", "city"],
        ["email"],
        ["phone"],
        ["national_id"],
    ]


class FuzzyConfig(Settings):
    """Blocking rules, comparisons' thresholds, estimation and the match threshold.

    ``threshold``: pairs whose match probability is at least this become edges.
    ``backend``: ``auto`` runs Splink on DuckDB (in the driver) below ``spark_min_records``
    records and on Spark at or above it. ``blocking``: candidate pairs agree exactly on every
    attribute of at least one rule; a rule whose attributes the input lacks is skipped, and a
    value shared by more than ``max_block_size`` records (a common name with no other key, a
    placeholder date) generates no pairs through that rule, so comparisons stay near-linear.
    ``training``: EM runs over these blocking rules in turn (each estimates the m values of the
    comparisons it does not block on) until every comparison has them. ``prior_rules`` /
    ``prior_recall``: the share of matching pairs is estimated from pairs agreeing on these
    near-certain rules, assumed to find ``prior_recall`` of the true matches. ``u_max_pairs``:
    random pairs sampled for the u values; ``em_max_pairs``: most pairs per EM round.
    ``blocklist``: per attribute, normalised values that are treated as missing (``1900-01-01``,
    ``unknown``...).
    """

    enabled: bool = True
    threshold: float = Field(default=0.95, gt=0.0, lt=1.0)
    backend: Literal["auto", "duckdb", "spark"] = "auto"
    spark_min_records: int = Field(default=200_000, ge=0)
    seed: int = 42
    blocking: list[Rule] = Field(default_factory=_default_blocking)
    max_block_size: int = Field(default=500, ge=2)
    training: list[Rule] = Field(default_factory=lambda: _rule_list(_DEFAULT_TRAINING))
    prior_rules: list[Rule] = Field(default_factory=lambda: _rule_list(_DEFAULT_PRIOR_RULES))
    prior_recall: float = Field(default=0.7, gt=0.0, le=1.0)
    u_max_pairs: int = Field(default=1_000_000, ge=100)
    em_max_pairs: int = Field(default=2_000_000, ge=100)
    # An exact match on a frequent name weighs less than on a rare one (Splink's term-frequency
    # adjustment). Frequencies count every record, duplicates too: on small inputs (hundreds
    # of records) a person's own duplicates make their name look frequent.
    name_frequency_adjustment: bool = False
    # Jaro-Winkler similarities of name and address levels, highest first.
    name_similarity: list[float] = Field(default_factory=lambda: [0.92, 0.88])
    address_similarity: list[float] = Field(default_factory=lambda: [0.92, 0.8])
    # Guards applied after scoring (and to exact links in `cdp resolve`): first names less
    # similar than this (1 - Levenshtein / length; null: no check), or different birth dates,
    # mean different people however much else two records share (a household).
    first_name_min_similarity: float | None = Field(default=0.5, ge=0.0, le=1.0)
    date_of_birth_must_agree: bool = True
    blocklist: dict[str, list[str]] = Field(
        default_factory=lambda: {"date_of_birth": ["1900-01-01", "1970-01-01"]}
    )

    @field_validator("blocklist")
    @classmethod
    def _blocklist_attributes(cls, blocklist: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(blocklist) - set(RULE_ATTRIBUTES))
        if unknown:
            raise ValueError(f"unknown attributes {unknown}; allowed: {', '.join(RULE_ATTRIBUTES)}")
        return blocklist

    @field_validator("blocking", "training", "prior_rules")
    @classmethod
    def _non_empty_rules(cls, rules: list[Rule]) -> list[Rule]:
        for rule in rules:
            if not rule:
                raise ValueError("a rule needs at least one attribute")
        return rules

    @field_validator("name_similarity", "address_similarity")
    @classmethod
    def _similarities(cls, values: list[float]) -> list[float]:
        if not values or any(not 0.0 < v < 1.0 for v in values):
            raise ValueError("similarities must be between 0 and 1 (exclusive), at least one")
        return sorted(values, reverse=True)
