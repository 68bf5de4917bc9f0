"""Point-in-time features and labels: silver events + identity -> ``gold.features``.

For a cutoff ``as_of`` (a date; the cutoff instant is its midnight UTC), every feature of a
person uses only events whose *event time* is before the cutoff, and a status change counts
only if it happened before the cutoff (an order returned after the cutoff was a paid order at
the cutoff). Labels look at the window ``[as_of, as_of + horizon)``:

- ``label_purchase`` = 1 when the person buys (a non-cancelled order or a store receipt) in the
  horizon, else 0;
- ``label_churn`` = 1 when a person who bought before the cutoff buys nothing in the horizon,
  0 when they buy again, null for people with no purchase before the cutoff;
- both are null when the horizon is not complete in the data (it ends after the run date or
  after the latest event seen).

Events reach a person through ``gold.identity_clusters`` (``source``, ``record_id``,
``person_id``), ``record_id`` being the source keys joined with ``|``. A role whose source is
not configured or whose silver table does not exist contributes null features (an order export
alone is enough to train both models); see docs/models.md for every feature.

Example:
    >>> run_features(ctx, as_of=date(2026, 2, 1)).figures["persons"]    # doctest: +SKIP
    1874
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from cdp_spark.caching import cache_records
from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.ml.config import FeaturesConfig
from cdp_spark.profiles.build import fx_amount, with_sentiment
from cdp_spark.storage import Lakehouse

if TYPE_CHECKING:
    from cdp_spark.pipeline import RunContext, StageReport

log = logging.getLogger(__name__)

FEATURES_TABLE = "gold.features"
IDENTITY_TABLE = "gold.identity_clusters"
LABELS = ("label_churn", "label_purchase")
DAY = 86_400  # seconds

# Roles and the features each contributes (null when the role's source is missing).
ROLES = ("purchases", "web", "email", "support")


def feature_columns(fcfg: FeaturesConfig) -> list[str]:
    """The feature columns of ``gold.features`` for these windows, in table order.

    Example:
        >>> feature_columns(FeaturesConfig(windows_days=[30]))[:4]
        ['tenure_days', 'days_since_last_purchase', 'days_since_first_purchase', 'purchases_30d']
    """
    return ["tenure_days", *[c for role in ROLES for c in _role_columns(fcfg)[role]]]


def _role_columns(fcfg: FeaturesConfig) -> dict[str, list[str]]:
    ws = fcfg.windows_days
    w0, wmax = ws[0], ws[-1]
    return {
        "purchases": [
            "days_since_last_purchase",
            "days_since_first_purchase",
            *[f"purchases_{w}d" for w in ws],
            "purchases_all",
            *[f"monetary_{w}d" for w in ws],
            "monetary_all",
            "avg_order_value",
            f"purchase_trend_{w0}d",
            "store_share",
            f"returns_{wmax}d",
            f"cancellations_{wmax}d",
        ],
        "web": [
            "days_since_last_visit",
            *[f"web_sessions_{w}d" for w in ws],
            *[f"product_views_{w}d" for w in ws],
            *[f"cart_adds_{w}d" for w in ws],
        ],
        "email": [
            *[f"emails_sent_{w}d" for w in ws],
            *[f"email_opens_{w}d" for w in ws],
            *[f"email_clicks_{w}d" for w in ws],
            f"email_open_rate_{wmax}d",
            f"email_click_rate_{wmax}d",
            "days_since_last_email_open",
            "email_unsubscribed",
        ],
        "support": [
            *[f"tickets_{w}d" for w in ws],
            *[f"negative_tickets_{w}d" for w in ws],
            "days_since_last_negative_ticket",
        ],
    }


def features_schema(fcfg: FeaturesConfig) -> StructType:
    """Schema of ``gold.features``: person_id, as_of, features (double), labels (int).

    Example:
        >>> features_schema(FeaturesConfig()).fieldNames()[:3]
        ['person_id', 'as_of', 'tenure_days']
    """
    return StructType(
        [
            StructField("person_id", StringType(), False),
            StructField("as_of", DateType(), False),
            *[StructField(c, DoubleType(), True) for c in feature_columns(fcfg)],
            *[StructField(c, IntegerType(), True) for c in LABELS],
        ]
    )


# --- events per role -------------------------------------------------------------------------


@dataclass
class FeatureInputs:
    """Events of each role with ``person_id`` and ``t`` (event time, epoch seconds).

    ``None`` for a role means "no such source": its features are null. ``versions`` holds the
    Delta version of every table read, ``missing`` the roles that had no table.
    """

    purchases: DataFrame | None = None  # person_id, t, amount, cancelled_t, returned_t, store
    web: DataFrame | None = None  # person_id, t, event_type, session_id
    email: DataFrame | None = None  # person_id, t, event
    support: DataFrame | None = None  # person_id, t, negative
    crm: DataFrame | None = None  # person_id, t (account created)
    versions: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def persist(self) -> FeatureInputs:
        """Keep the joined events (identity applied) while one cutoff is built from them."""
        for role in (*ROLES, "crm"):
            df = getattr(self, role)
            if df is not None:
                setattr(self, role, cache_records(df))
        return self

    def unpersist(self) -> None:
        for df in self.present():
            df.unpersist()

    def present(self) -> list[DataFrame]:
        return [
            d
            for d in (self.purchases, self.web, self.email, self.support, self.crm)
            if d is not None
        ]


def _epoch(col: str | Column) -> Column:
    c = F.col(col) if isinstance(col, str) else col
    return c.cast("long")


def _opt_or_none(df: DataFrame, name: str) -> Column | None:
    return F.col(name) if name in df.columns else None


def _opt(df: DataFrame, name: str, default: Column | None = None) -> Column:
    """Column ``name`` if the table has it, else ``default`` (null): minimal exports lack some."""
    if name in df.columns:
        return F.col(name)
    return default if default is not None else F.lit(None)


def _to_base(amount: Column, currency: Column | None, rates: Mapping[str, float]) -> Column:
    # The rates are the profiles' (profiles.fx_rates), so CLV and features agree on money. An
    # export without a currency column is in the base currency.
    if currency is None:
        return amount.cast("double")
    return fx_amount(amount, currency, rates)


def with_person_id(
    df: DataFrame, clusters: DataFrame, *, source: str, keys: Sequence[str]
) -> DataFrame:
    """Attach ``person_id`` to silver records of ``source`` through the identity clusters.

    Records the identity stage has not resolved (no cluster row) are dropped.

    Example:
        >>> with_person_id(orders, clusters, source="orders", keys=["order_id"])  # doctest: +SKIP
    """
    if not keys:
        raise CdpError(f"source {source!r} has no keys", hint="declare keys: in conf/sources.yaml")
    ids = clusters.where(F.col("source") == source).select("record_id", "person_id")
    record_id = F.concat_ws("|", *[F.col(k).cast("string") for k in keys])
    return df.withColumn("record_id", record_id).join(ids, "record_id", "inner")


def order_events(orders: DataFrame, rates: Mapping[str, float]) -> DataFrame:
    """Orders (with ``person_id``) as purchase events; minimal exports need only
    ``ordered_at`` and ``total_amount`` (status, currency and updated_at are optional).

    ``cancelled_t`` / ``returned_t``: when the order became cancelled / returned (null if it
    did not). Silver keeps the latest state, stamped by ``updated_at``.

    Example:
        >>> order_events(orders_with_person, {"RUB": 1.0}).columns       # doctest: +SKIP
        ['person_id', 't', 'amount', 'cancelled_t', 'returned_t', 'store']
    """
    status = F.lower(_opt(orders, "status", F.lit("paid")).cast("string"))
    changed = _epoch(F.coalesce(_opt(orders, "updated_at"), F.col("ordered_at")))
    return orders.select(
        "person_id",
        _epoch("ordered_at").alias("t"),
        _to_base(F.col("total_amount"), _opt_or_none(orders, "currency"), rates).alias("amount"),
        F.when(status == "cancelled", changed).alias("cancelled_t"),
        F.when(status == "returned", changed).alias("returned_t"),
        F.lit(0.0).alias("store"),
    ).where(F.col("t").isNotNull())


def receipt_events(pos: DataFrame, rates: Mapping[str, float]) -> DataFrame:
    """Store till lines (with ``person_id``) summed into one purchase per receipt and person.

    Example:
        >>> receipt_events(pos_with_person, {"RUB": 1.0}).columns        # doctest: +SKIP
        ['person_id', 't', 'amount', 'cancelled_t', 'returned_t', 'store']
    """
    line_amount = _to_base(F.col("amount"), _opt_or_none(pos, "currency"), rates)
    return (
        pos.groupBy("person_id", "transaction_id")
        .agg(F.min(_epoch("purchased_at")).alias("t"), F.sum(line_amount).alias("amount"))
        .select(
            "person_id",
            "t",
            "amount",
            F.lit(None).cast("long").alias("cancelled_t"),
            F.lit(None).cast("long").alias("returned_t"),
            F.lit(1.0).alias("store"),
        )
        .where(F.col("t").isNotNull())
    )


# --- the features ----------------------------------------------------------------------------


def cutoff_epoch(as_of: date) -> int:
    """The cutoff instant of ``as_of``: its midnight UTC, in epoch seconds.

    Example:
        >>> cutoff_epoch(date(1970, 1, 2))
        86400
    """
    return int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp())


def _in(t: Column, start: int, end: int) -> Column:
    return (t >= F.lit(start)) & (t < F.lit(end))


def _count(cond: Column) -> Column:
    return F.sum(F.when(cond, 1.0).otherwise(0.0))


def _days_since(t: Column, cut: int) -> Column:
    return (F.lit(cut) - t) / F.lit(float(DAY))


def purchase_features(purchases: DataFrame, as_of: date, fcfg: FeaturesConfig) -> DataFrame:
    """Recency, frequency, monetary, trend, store share, returns and cancellations at ``as_of``.

    Example:
        >>> purchase_features(events, date(2026, 2, 1), FeaturesConfig())   # doctest: +SKIP
    """
    cut = cutoff_epoch(as_of)
    ws = fcfg.windows_days
    w0, wmax = ws[0], ws[-1]
    t = F.col("t")
    before = purchases.where(t < F.lit(cut))
    # A purchase at the cutoff is an order placed before it and not cancelled before it.
    bought = F.col("cancelled_t").isNull() | (F.col("cancelled_t") >= F.lit(cut))
    aggs = [
        F.max(F.when(bought, t)).alias("_last"),
        F.min(F.when(bought, t)).alias("_first"),
        *[_count(bought & (t >= F.lit(cut - w * DAY))).alias(f"purchases_{w}d") for w in ws],
        _count(bought).alias("purchases_all"),
        *[
            F.sum(
                F.when(bought & (t >= F.lit(cut - w * DAY)), F.col("amount")).otherwise(0.0)
            ).alias(f"monetary_{w}d")
            for w in ws
        ],
        F.sum(F.when(bought, F.col("amount")).otherwise(0.0)).alias("monetary_all"),
        _count(bought & _in(t, cut - 2 * w0 * DAY, cut - w0 * DAY)).alias("_prev"),
        F.sum(F.when(bought, F.col("store")).otherwise(0.0)).alias("_store"),
        _count(
            (F.col("returned_t") < F.lit(cut)) & (F.col("returned_t") >= F.lit(cut - wmax * DAY))
        ).alias(f"returns_{wmax}d"),
        _count(
            (F.col("cancelled_t") < F.lit(cut)) & (F.col("cancelled_t") >= F.lit(cut - wmax * DAY))
        ).alias(f"cancellations_{wmax}d"),
    ]
    n = F.col("purchases_all")
    return (
        before.groupBy("person_id")
        .agg(*aggs)
        .withColumn("days_since_last_purchase", _days_since(F.col("_last"), cut))
        .withColumn("days_since_first_purchase", _days_since(F.col("_first"), cut))
        .withColumn("avg_order_value", F.when(n > 0, F.col("monetary_all") / n))
        .withColumn(f"purchase_trend_{w0}d", F.col(f"purchases_{w0}d") - F.col("_prev"))
        .withColumn("store_share", F.when(n > 0, F.col("_store") / n))
        .drop("_last", "_first", "_prev", "_store")
    )


def web_features(web: DataFrame, as_of: date, fcfg: FeaturesConfig) -> DataFrame:
    """Sessions, product views and cart adds per window, days since the last visit.

    Example:
        >>> web_features(events, date(2026, 2, 1), FeaturesConfig())     # doctest: +SKIP
    """
    cut = cutoff_epoch(as_of)
    t = F.col("t")
    aggs: list[Column] = [F.max(t).alias("_last")]
    for w in fcfg.windows_days:
        recent = t >= F.lit(cut - w * DAY)
        aggs += [
            F.countDistinct(F.when(recent, F.col("session_id")))
            .cast("double")
            .alias(f"web_sessions_{w}d"),
            _count(recent & (F.col("event_type") == "product_view")).alias(f"product_views_{w}d"),
            _count(recent & (F.col("event_type") == "add_to_cart")).alias(f"cart_adds_{w}d"),
        ]
    return (
        web.where(t < F.lit(cut))
        .groupBy("person_id")
        .agg(*aggs)
        .withColumn("days_since_last_visit", _days_since(F.col("_last"), cut))
        .drop("_last")
    )


def email_features(email: DataFrame, as_of: date, fcfg: FeaturesConfig) -> DataFrame:
    """Sends, opens, clicks per window, open and click rates, unsubscribed.

    Example:
        >>> email_features(events, date(2026, 2, 1), FeaturesConfig())   # doctest: +SKIP
    """
    cut = cutoff_epoch(as_of)
    wmax = fcfg.windows_days[-1]
    t, ev = F.col("t"), F.lower(F.col("event"))
    aggs: list[Column] = [
        F.max(F.when(ev == "open", t)).alias("_last_open"),
        F.max(F.when(ev == "unsubscribe", 1.0).otherwise(0.0)).alias("email_unsubscribed"),
    ]
    for w in fcfg.windows_days:
        recent = t >= F.lit(cut - w * DAY)
        aggs += [
            _count(recent & (ev == "sent")).alias(f"emails_sent_{w}d"),
            _count(recent & (ev == "open")).alias(f"email_opens_{w}d"),
            _count(recent & (ev == "click")).alias(f"email_clicks_{w}d"),
        ]
    sent = F.col(f"emails_sent_{wmax}d")
    return (
        email.where(t < F.lit(cut))
        .groupBy("person_id")
        .agg(*aggs)
        .withColumn(
            f"email_open_rate_{wmax}d",
            F.when(sent > 0, F.least(F.col(f"email_opens_{wmax}d") / sent, F.lit(1.0))),
        )
        .withColumn(
            f"email_click_rate_{wmax}d",
            F.when(sent > 0, F.least(F.col(f"email_clicks_{wmax}d") / sent, F.lit(1.0))),
        )
        .withColumn("days_since_last_email_open", _days_since(F.col("_last_open"), cut))
        .drop("_last_open")
    )


def support_features(support: DataFrame, as_of: date, fcfg: FeaturesConfig) -> DataFrame:
    """Tickets and negative tickets per window, days since the last negative ticket.

    Example:
        >>> support_features(tickets, date(2026, 2, 1), FeaturesConfig())  # doctest: +SKIP
    """
    cut = cutoff_epoch(as_of)
    t, neg = F.col("t"), F.col("negative")
    aggs: list[Column] = [F.max(F.when(neg, t)).alias("_last_neg")]
    for w in fcfg.windows_days:
        recent = t >= F.lit(cut - w * DAY)
        aggs += [
            _count(recent).alias(f"tickets_{w}d"),
            _count(recent & neg).alias(f"negative_tickets_{w}d"),
        ]
    return (
        support.where(t < F.lit(cut))
        .groupBy("person_id")
        .agg(*aggs)
        .withColumn("days_since_last_negative_ticket", _days_since(F.col("_last_neg"), cut))
        .drop("_last_neg")
    )


def purchase_labels(purchases: DataFrame, as_of: date, horizon_days: int) -> DataFrame:
    """Purchases per person in ``[as_of, as_of + horizon)`` (cancelled orders do not count).

    Example:
        >>> purchase_labels(events, date(2026, 2, 1), 30).columns        # doctest: +SKIP
        ['person_id', '_horizon_purchases']
    """
    cut = cutoff_epoch(as_of)
    return (
        purchases.where(_in(F.col("t"), cut, cut + horizon_days * DAY))
        .where(F.col("cancelled_t").isNull())
        .groupBy("person_id")
        .agg(F.count(F.lit(1)).alias("_horizon_purchases"))
    )


def build_features(
    inputs: FeatureInputs,
    *,
    as_of: date,
    fcfg: FeaturesConfig,
    labels_complete: bool,
) -> DataFrame:
    """``gold.features`` rows for cutoff ``as_of``: every person seen before the cutoff.

    Pure: no I/O. ``labels_complete`` says whether the data covers the whole horizon; when it
    does not, both labels are null.

    Example:
        >>> build_features(inputs, as_of=date(2026, 2, 1), fcfg=FeaturesConfig(),
        ...                labels_complete=True).columns[:3]            # doctest: +SKIP
        ['person_id', 'as_of', 'tenure_days']
    """
    cut = cutoff_epoch(as_of)
    seen = [d.select("person_id", "t").where(F.col("t") < F.lit(cut)) for d in inputs.present()]
    if not seen:
        raise CdpError(
            "no source to build features from",
            hint="configure at least models.features.sources.orders and run ingest/standardize",
        )
    people = (
        reduce(DataFrame.unionByName, seen)
        .groupBy("person_id")
        .agg(F.min("t").alias("_first_seen"))
        .withColumn("tenure_days", _days_since(F.col("_first_seen"), cut))
        .drop("_first_seen")
    )
    builders = {
        "purchases": (inputs.purchases, purchase_features),
        "web": (inputs.web, web_features),
        "email": (inputs.email, email_features),
        "support": (inputs.support, support_features),
    }
    out = people
    for _role, (events, builder) in builders.items():
        if events is not None:
            out = out.join(builder(events, as_of, fcfg), "person_id", "left")
    # A person with no events of a present role has zero counts; recency and rates stay null.
    columns = _role_columns(fcfg)
    zero_if_absent = {
        c
        for role, cols in columns.items()
        if builders[role][0] is not None
        for c in cols
        if not c.startswith("days_since") and "rate" not in c and c not in _NULL_IF_NO_PURCHASE
    }
    if inputs.purchases is not None:
        out = out.join(
            purchase_labels(inputs.purchases, as_of, fcfg.horizon_days), "person_id", "left"
        )
        bought_before = F.coalesce(F.col("purchases_all"), F.lit(0.0)) > 0
        bought_after = F.coalesce(F.col("_horizon_purchases"), F.lit(0)) > 0
        label_purchase = F.when(F.lit(labels_complete), bought_after.cast("int"))
        label_churn = F.when(F.lit(labels_complete) & bought_before, (~bought_after).cast("int"))
    else:
        label_purchase = label_churn = F.lit(None)
    schema = features_schema(fcfg)
    selected = [F.col("person_id"), F.lit(as_of).cast("date").alias("as_of")]
    for c in feature_columns(fcfg):
        if c not in out.columns:
            value = F.lit(None).cast("double")
        elif c in zero_if_absent:
            value = F.coalesce(F.col(c).cast("double"), F.lit(0.0))
        else:
            value = F.col(c).cast("double")
        selected.append(value.alias(c))
    selected += [label_churn.cast("int").alias("label_churn")]
    selected += [label_purchase.cast("int").alias("label_purchase")]
    result = out.select(*selected)
    assert result.columns == schema.fieldNames()
    return result


# Purchase features that make no sense without a purchase stay null rather than 0.
_NULL_IF_NO_PURCHASE = frozenset({"avg_order_value", "store_share"})


# --- I/O -------------------------------------------------------------------------------------


def _read_source(
    lake: Lakehouse,
    cfg: CdpConfig,
    source: str | None,
    clusters: DataFrame,
    versions: dict[str, int],
    required: Sequence[str],
) -> DataFrame | None:
    if source is None or source not in cfg.sources:
        return None
    table = f"silver.{source}"
    if not lake.exists(table):
        return None
    version = lake.version(table)
    df = lake.read(table, version=version)
    missing = [c for c in required if c not in df.columns]
    if missing:
        log.warning("%s lacks %s: its features are null", table, ", ".join(missing))
        return None
    versions[table] = version
    return with_person_id(df, clusters, source=source, keys=cfg.sources[source].keys)


def read_feature_inputs(lake: Lakehouse, cfg: CdpConfig) -> FeatureInputs:
    """Read silver (each table at one version) and the identity clusters; events by role.

    Raises :class:`CdpError` when ``gold.identity_clusters`` does not exist.

    Example:
        >>> read_feature_inputs(ctx.lake, ctx.cfg).versions                # doctest: +SKIP
        {'gold.identity_clusters': 3, 'silver.orders': 2, ...}
    """
    fcfg = cfg.models.features
    if not lake.exists(IDENTITY_TABLE):
        raise CdpError(
            f"{IDENTITY_TABLE} does not exist: features need a person_id for every record",
            hint="run `cdp run identity` first",
        )
    versions: dict[str, int] = {IDENTITY_TABLE: lake.version(IDENTITY_TABLE)}
    clusters = lake.read(IDENTITY_TABLE, version=versions[IDENTITY_TABLE])
    src = fcfg.sources
    inputs = FeatureInputs(versions=versions)

    def read(source: str | None, required: Sequence[str]) -> DataFrame | None:
        return _read_source(lake, cfg, source, clusters, versions, required)

    parts: list[DataFrame] = []
    orders = read(src.orders, ["ordered_at", "total_amount"])
    if orders is not None:
        parts.append(order_events(orders, cfg.profiles.fx_rates))
    pos = read(src.pos, ["transaction_id", "purchased_at", "amount"])
    if pos is not None:
        parts.append(receipt_events(pos, cfg.profiles.fx_rates))
    inputs.purchases = reduce(DataFrame.unionByName, parts) if parts else None
    web = read(src.web, ["ts", "event_type"])
    if web is not None:
        inputs.web = web.select(
            "person_id",
            _epoch("ts").alias("t"),
            F.col("event_type"),
            _opt(web, "session_id", F.col("record_id")).alias("session_id"),
        )
    email = read(src.email, ["event", "event_at"])
    if email is not None:
        inputs.email = email.select("person_id", _epoch("event_at").alias("t"), "event")
    support = read(src.support, ["opened_at"])
    if support is not None:
        if "message" not in support.columns:
            support = support.withColumn("message", F.lit(None).cast("string"))
        # The profiles' lexicon, so a "negative ticket" means the same in profiles and models.
        inputs.support = with_sentiment(support, "message", cfg.profiles.sentiment).select(
            "person_id", _epoch("opened_at").alias("t"), F.col("is_negative").alias("negative")
        )
    crm = read(src.crm, ["created_at"])
    if crm is not None:
        inputs.crm = crm.select("person_id", _epoch("created_at").alias("t")).where(
            F.col("t").isNotNull()
        )
    for role in ROLES:
        if getattr(inputs, role) is None:
            inputs.missing.append(role)
    return inputs


def event_span(inputs: FeatureInputs) -> tuple[date | None, date | None]:
    """The day of the earliest purchase and the day of the latest event of any role.

    Example:
        >>> event_span(inputs)                                             # doctest: +SKIP
        (datetime.date(2026, 1, 1), datetime.date(2026, 3, 1))
    """

    def day(t: Any) -> date | None:
        return None if t is None else datetime.fromtimestamp(t, tz=UTC).date()

    first = None
    if inputs.purchases is not None:
        row = inputs.purchases.agg(F.min("t")).first()
        first = day(row[0]) if row is not None else None
    spans = [d.select("t") for d in inputs.present()]
    row = reduce(DataFrame.unionByName, spans).agg(F.max("t")).first() if spans else None
    return first, day(row[0]) if row is not None else None


def labels_complete(
    as_of: date, horizon_days: int, last_event: date | None, run_date: date
) -> bool:
    """Whether the data covers the whole horizon ``[as_of, as_of + horizon)``: it must end by
    the end of the run date (a run never looks past its own date) and of the latest event day.

    Example:
        >>> labels_complete(date(2026, 1, 31), 30, date(2026, 3, 1), date(2026, 3, 1))
        True
        >>> labels_complete(date(2026, 2, 1), 30, date(2026, 3, 1), date(2026, 3, 1))
        False
    """
    end = as_of + timedelta(days=horizon_days)  # exclusive
    covered = run_date if last_event is None else min(run_date, last_event)
    return end <= covered + timedelta(days=1)


@dataclass(frozen=True)
class FeatureWrite:
    """What :func:`write_features` committed."""

    as_of: date
    persons: int
    labelled_churn: int
    labelled_purchase: int
    labels_complete: bool
    version: int | None
    inputs: Mapping[str, int]
    missing_roles: tuple[str, ...]
    first_purchase: date | None = None

    def figures(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "persons": self.persons,
            "labelled_churn": self.labelled_churn,
            "labelled_purchase": self.labelled_purchase,
            "labels_complete": self.labels_complete,
            "missing_sources": ",".join(self.missing_roles) or "none",
            "table_version": self.version,
        }


def write_features(lake: Lakehouse, cfg: CdpConfig, *, as_of: date, run_date: date) -> FeatureWrite:
    """Build and write ``gold.features`` for ``as_of`` (overwrite of exactly that cutoff).

    Example:
        >>> write_features(ctx.lake, ctx.cfg, as_of=date(2026, 1, 30),
        ...                run_date=date(2026, 3, 1)).labels_complete     # doctest: +SKIP
        True
    """
    inputs = read_feature_inputs(lake, cfg).persist()
    try:
        return _write_features(lake, cfg, inputs, as_of=as_of, run_date=run_date)
    finally:
        inputs.unpersist()


def _write_features(
    lake: Lakehouse, cfg: CdpConfig, inputs: FeatureInputs, *, as_of: date, run_date: date
) -> FeatureWrite:
    fcfg = cfg.models.features
    if inputs.missing:
        log.info("features without %s: their columns are null", ", ".join(inputs.missing))
    first_purchase, last_event = event_span(inputs)
    complete = labels_complete(as_of, fcfg.horizon_days, last_event, run_date)
    df = build_features(inputs, as_of=as_of, fcfg=fcfg, labels_complete=complete)
    schema = features_schema(fcfg)
    if not lake.exists(FEATURES_TABLE):
        lake.create(FEATURES_TABLE, schema, partition_by=["as_of"])
    result = lake.overwrite(FEATURES_TABLE, df, where=f"as_of = DATE'{as_of.isoformat()}'")
    counts = (
        lake.read(FEATURES_TABLE)
        .where(F.col("as_of") == F.lit(as_of))
        .agg(F.count(F.lit(1)), F.count("label_churn"), F.count("label_purchase"))
        .first()
    )
    assert counts is not None
    return FeatureWrite(
        as_of=as_of,
        persons=int(counts[0]),
        labelled_churn=int(counts[1]),
        labelled_purchase=int(counts[2]),
        labels_complete=complete,
        version=result.version,
        inputs=dict(inputs.versions),
        missing_roles=tuple(inputs.missing),
        first_purchase=first_purchase,
    )


def run_features(ctx: RunContext, as_of: date | None = None) -> StageReport:
    """The ``features`` stage: ``gold.features`` at the cutoff ``as_of`` (default: run date).

    ``cdp run features --as-of 2026-02-01`` (the same as ``--run-date``) builds one cutoff.

    Example:
        >>> run_features(ctx).figures["as_of"]                             # doctest: +SKIP
        '2026-03-01'
    """
    from cdp_spark.pipeline import StageReport

    cutoff = as_of or ctx.run_date
    ctx.progress(f"features: building {FEATURES_TABLE} at as_of {cutoff}")
    written = write_features(ctx.lake, ctx.cfg, as_of=cutoff, run_date=ctx.run_date)
    if written.missing_roles:
        ctx.progress(
            "features: no data for "
            + ", ".join(written.missing_roles)
            + " (their features are null)"
        )
    return StageReport(stage="features", figures=written.figures())
