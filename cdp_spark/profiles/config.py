"""Configuration of profiles, KPIs, segments and activation.

``profiles:`` and ``activation:`` live in ``conf/profiles.yaml``, ``segments:`` in
``conf/segments.yaml``.
"""

from __future__ import annotations

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


class SegmentConfig(Settings):
    """One audience: a name, a description and a boolean expression over profile columns."""


class ActivationConfig(Settings):
    """Destinations that segments are published to."""
