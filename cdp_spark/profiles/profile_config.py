"""The parts of ``profiles:`` (``conf/profiles.yaml``): survivorship, lifecycle, consent, KPIs.

:class:`cdp_spark.profiles.config.ProfilesConfig` is made of these models; they live in their
own module so that the profile build owns them without crowding the shared ``config.py``.

Example:
    >>> FieldGroup(fields=["email"], rule="source_priority",
    ...            sources={"crm_contacts": {"email": "email_norm"}}).rule
    'source_priority'
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp_spark._settings import Settings

SurvivorshipRule = Literal["source_priority", "most_recent", "most_frequent", "most_complete"]
LifecycleStage = Literal["prospect", "new", "active", "at_risk", "lapsed", "churned"]
LIFECYCLE_STAGES: tuple[str, ...] = ("prospect", "new", "active", "at_risk", "lapsed", "churned")
_NAME = r"^[a-z][a-z0-9_]*$"


class FieldGroup(Settings):
    """Golden-record fields taken together from one winning record.

    ``sources`` maps a source (a key of ``sources:``) to ``{field: silver column}``; a field a
    source lacks is null in its candidates. Its order is the priority of ``source_priority``.
    Every rule breaks ties by the most recent record, then source priority, then record id, so
    the result never depends on row order.

    Example:
        >>> FieldGroup(fields=["city"], rule="most_recent",
        ...            sources={"crm_contacts": {"city": "city"}}).fields
        ['city']
    """

    fields: list[str] = Field(min_length=1)
    rule: SurvivorshipRule
    sources: dict[str, dict[str, str]] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: list[str]) -> list[str]:
        import re

        bad = [f for f in value if not re.match(_NAME, f)]
        if bad:
            raise ValueError(f"field names must match {_NAME}: {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate field in {value}")
        return value

    @model_validator(mode="after")
    def _mapped_fields_known(self) -> FieldGroup:
        for source, mapping in self.sources.items():
            unknown = sorted(set(mapping) - set(self.fields))
            if unknown:
                raise ValueError(f"source {source!r} maps unknown field(s) {unknown}")
            if not mapping:
                raise ValueError(f"source {source!r} maps no field")
        return self


class LifecycleConfig(Settings):
    """Day thresholds of the lifecycle stages (see docs/profiles.md, "Lifecycle").

    ``new``: first purchase at most ``new_days`` days before the run date. Otherwise by days
    since the last purchase: ``active`` <= ``active_days`` < ``at_risk`` <= ``at_risk_days`` <
    ``lapsed`` <= ``lapsed_days`` < ``churned``. No purchase at all: ``prospect``.

    Example:
        >>> LifecycleConfig(active_days=30, at_risk_days=20)
        Traceback (most recent call last):
        pydantic_core._pydantic_core.ValidationError: 1 validation error for LifecycleConfig
          Value error, lifecycle thresholds must grow: active_days < at_risk_days < lapsed_days ...
    """

    new_days: int = Field(default=30, ge=0)
    active_days: int = Field(default=30, ge=0)
    at_risk_days: int = Field(default=60, ge=1)
    lapsed_days: int = Field(default=120, ge=1)

    @model_validator(mode="after")
    def _increasing(self) -> LifecycleConfig:
        if not self.active_days < self.at_risk_days < self.lapsed_days:
            raise ValueError(
                "lifecycle thresholds must grow: active_days < at_risk_days < lapsed_days "
                f"(got {self.active_days}, {self.at_risk_days}, {self.lapsed_days})"
            )
        return self


class ConsentConfig(Settings):
    """Which purposes a channel needs, and whether an e-mail unsubscribe revokes e-mail consent.

    Example:
        >>> ConsentConfig().channels["email"]
        ['marketing']
    """

    channels: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "email": ["marketing"],
            "sms": ["marketing"],
            "ads": ["profiling"],
        }
    )
    unsubscribe_revokes_email: bool = True

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        import re

        for channel, purposes in value.items():
            if not re.match(_NAME, channel) or not purposes:
                raise ValueError(f"channel {channel!r}: a name matching {_NAME} and >= 1 purpose")
        return value


class SentimentConfig(Settings):
    """Lexicon of the ticket sentiment: lower-case words, stems or phrases, Russian and English.

    A ticket is negative when its text contains more negative entries than positive ones.

    Example:
        >>> "спасибо" in SentimentConfig().positive
        True
    """

    negative: list[str] = Field(
        default_factory=lambda: [
            # Russian: stems, so that every ending matches (проблема, проблемы, проблему...)
            "возмутительн", "проблем", "опаздыва", "не приехал", "мят", "порван", "не подош",
            "не оформля", "не пришл", "дважды", "верните", "отменён", "отменен", "сломал",
            "ужасн", "не тот размер", "не могу", "не сбрасыва", "не начисл", "не работает",
            "груб", "тормоз", "не покупаю", "разочарован", "жалоб", "обман", "плох",
            # English
            "unacceptable", "late", "nobody answers", "damaged", "refund never", "never arrived",
            "twice", "cancelled", "broke", "terrible", "wrong size", "wrong colour", "cannot",
            "does not work", "not added", "slow", "disappointed", "will not order", "awful",
            "complain", "worst", "bad",
        ]
    )  # fmt: skip
    positive: list[str] = Field(
        default_factory=lambda: [
            "спасибо", "отличн", "довольн", "рекоменд", "вежлив", "быстро помогли", "благодар",
            "хорош", "супер",
            "thank", "great", "love", "helpful", "excellent", "perfect", "good",
        ]
    )  # fmt: skip


class ProfileSources(Settings):
    """Which source (a key of ``sources:``) plays which role; ``null`` when a shop has none.

    The columns each role reads are listed in docs/profiles.md ("Inputs").

    Example:
        >>> ProfileSources().pos
        'pos_sales'
    """

    crm: str | None = "crm_contacts"
    orders: str | None = "orders"
    pos: str | None = "pos_sales"
    web: str | None = "web_events"
    email: str | None = "email_events"
    support: str | None = "support_tickets"
    products: str | None = "products"


class KpiConfig(Settings):
    """Parameters of CLV and the KPIs (formulas in docs/profiles.md, "KPIs").

    Example:
        >>> KpiConfig().lifecycle_churn_rate["churned"]
        1.0
    """

    # Gross margin as a share of revenue.
    gross_margin: float = Field(default=0.3, gt=0.0, le=1.0)
    # The CLV period: purchase frequency is orders in the last period, churn is per period.
    period_days: int = Field(default=365, ge=1)
    # "Customers acquired in the period" of customer equity: first purchase in the last N days.
    acquisition_days: int = Field(default=30, ge=1)
    # Floor of the churn rate, so that 1 / churn stays finite (at most 1 / min_churn_rate periods).
    min_churn_rate: float = Field(default=0.05, gt=0.0, le=1.0)
    # Churn rate per period by lifecycle stage, used when no model score exists for a person.
    lifecycle_churn_rate: dict[str, float] = Field(
        default_factory=lambda: {
            "prospect": 1.0,
            "new": 0.5,
            "active": 0.25,
            "at_risk": 0.5,
            "lapsed": 0.8,
            "churned": 1.0,
        }
    )

    @field_validator("lifecycle_churn_rate")
    @classmethod
    def _every_stage(cls, value: dict[str, float]) -> dict[str, float]:
        missing = [s for s in LIFECYCLE_STAGES if s not in value]
        unknown = sorted(set(value) - set(LIFECYCLE_STAGES))
        bad = {k: v for k, v in value.items() if not 0.0 < v <= 1.0}
        if missing or unknown or bad:
            raise ValueError(
                f"one rate in (0, 1] per stage {list(LIFECYCLE_STAGES)}; missing {missing}, "
                f"unknown {unknown}, out of range {bad}"
            )
        return value
