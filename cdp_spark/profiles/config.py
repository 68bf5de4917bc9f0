"""Configuration of profiles, KPIs, segments and activation.

``profiles:`` and ``activation:`` live in ``conf/profiles.yaml``, ``segments:`` in
``conf/segments.yaml``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from cdp_spark._settings import Settings
from cdp_spark.profiles.profile_config import (
    ConsentConfig,
    FieldGroup,
    KpiConfig,
    LifecycleConfig,
    ProfileSources,
    SentimentConfig,
)


class ProfilesConfig(Settings):
    """Survivorship rules, currencies, lifecycle thresholds, consent, KPI parameters.

    Every key is explained in ``conf/profiles.yaml`` and docs/profiles.md.

    Example:
        >>> ProfilesConfig().fx_rates["RUB"]
        1.0
    """

    # Golden record: field group name -> the fields, the rule and the sources they come from.
    survivorship: dict[str, FieldGroup] = Field(default_factory=dict)
    sources: ProfileSources = ProfileSources()
    base_currency: str = Field(default="RUB", min_length=3, max_length=3)
    # Units of base currency per unit of each currency.
    fx_rates: dict[str, float] = Field(default_factory=lambda: {"RUB": 1.0})
    # Online order statuses that count as purchases (cancelled and returned ones do not).
    purchase_statuses: list[str] = Field(default_factory=lambda: ["paid"])
    # A cart is abandoned when no order follows the add-to-cart within this many hours.
    cart_abandon_hours: int = Field(default=24, ge=1)
    lifecycle: LifecycleConfig = LifecycleConfig()
    consent: ConsentConfig = ConsentConfig()
    sentiment: SentimentConfig = SentimentConfig()
    kpis: KpiConfig = KpiConfig()
    # Look-up (`cdp profile`): how many recent items of each activity kind to show.
    recent_items: int = Field(default=5, ge=1, le=100)
    # gold.person_activity keeps this many latest records per person and kind (the most a
    # look-up can show).
    activity_items: int = Field(default=10, ge=1, le=100)


class SegmentConfig(Settings):
    """One audience: a name, a description and a boolean expression over profile columns.

    The name is the key under ``segments:``. ``where`` is checked by
    :func:`cdp_spark.profiles.expressions.validate_expression` before anything runs;
    ``schedule`` is ``daily``, ``weekly`` (Mondays), ``weekly:<day>``, ``monthly`` (the 1st) or
    a cron line (``"0 6 * * 1,4"``; only its day fields matter); ``destinations`` name entries
    of ``activation.destinations``.

    Example:
        >>> SegmentConfig(where="lifecycle_stage = 'at_risk' and clv > 500").schedule
        'daily'
    """

    description: str = ""
    where: str = Field(min_length=1, max_length=4000)
    schedule: str = "daily"
    destinations: list[str] = Field(default_factory=list)
    enabled: bool = True


class ConsentRule(Settings):
    """The consent a destination needs: a channel and a purpose as ``silver.consent`` spells them.

    Example:
        >>> ConsentRule(channel="email", purpose="marketing").channel
        'email'
    """

    channel: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    purpose: str = Field(pattern=r"^[a-z][a-z0-9_]*$")


class FileDestination(Settings):
    """CSV or Parquet files for an ESP: one file set per segment and run date, chosen columns."""

    type: Literal["csv", "parquet"]
    description: str = ""
    consent: ConsentRule
    # Profile columns to export; person_id is always added (erasure finds rows through it).
    columns: list[str] = Field(default_factory=lambda: ["person_id"])


class HashedDestination(Settings):
    """Ad platforms: SHA-256 of the normalised e-mails and E.164 phones, no raw PII."""

    type: Literal["hashed"]
    description: str = ""
    consent: ConsentRule
    format: Literal["csv", "parquet"] = "csv"


class DeltaDestination(Settings):
    """A Delta change feed (``entered`` / ``left`` rows per run date) for Delta readers."""

    type: Literal["delta"]
    description: str = ""
    consent: ConsentRule
    table: str = Field(pattern=r"^gold\.[a-z0-9_]+$")
    columns: list[str] = Field(default_factory=list)


Destination = Annotated[
    FileDestination | HashedDestination | DeltaDestination, Field(discriminator="type")
]


class ActivationConfig(Settings):
    """Destinations that segments are published to (``activation:`` in conf).

    Example:
        >>> ActivationConfig.model_validate({"destinations": {"esp": {"type": "csv",
        ...     "consent": {"channel": "email", "purpose": "marketing"}}}}).destinations["esp"].type
        'csv'
    """

    destinations: dict[str, Destination] = Field(default_factory=dict)
