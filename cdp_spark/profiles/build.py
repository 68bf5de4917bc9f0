"""The unified customer profile: golden record, identifiers and aggregates per ``person_id``.

Pure ``DataFrame -> DataFrame`` transformations; :mod:`cdp_spark.profiles.stage` reads the
tables and writes ``gold.customer_profiles``. Every silver record reaches its person through
``gold.identity_clusters`` (``source``, ``record_id`` = the source keys joined with ``|``), and
every aggregate is "as of" the end of the run date: records after it are ignored.

The columns and the rules behind them are documented in docs/profiles.md.

Example:
    >>> inputs = ProfileInputs(clusters=clusters, identifiers=identifiers,
    ...                        silver={"orders": orders}, products=None, consent=None,
    ...                        scores=None)                                 # doctest: +SKIP
    >>> build_customer_profiles(inputs, cfg, run_date=date(2026, 3, 1)).columns[:3]
    ['person_id', 'first_name', 'last_name']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from cdp_spark.config import CdpConfig
from cdp_spark.errors import ConfigError
from cdp_spark.profiles.config import ProfilesConfig
from cdp_spark.profiles.profile_config import FieldGroup, SentimentConfig
from cdp_spark.schemas import require_columns

# The look-back windows of web engagement, in days (fixed: they name columns of the contract).
ENGAGEMENT_WINDOWS: tuple[int, ...] = (7, 30, 90)
# gold.identity_identifiers id_type -> profile array column.
IDENTIFIER_ARRAYS: dict[str, str] = {
    "email": "emails",
    "phone": "phones",
    "customer_id": "customer_ids",
    "loyalty_card": "loyalty_cards",
    "cookie_id": "cookie_ids",
    "device_id": "device_ids",
}
STORE_CHANNEL = "store"


@dataclass(frozen=True)
class ProfileInputs:
    """The tables a profile build reads; ``None`` (or a missing source) when it does not exist.

    ``silver`` maps a source name (a key of ``sources:``) to its silver table. ``consent`` is
    ``silver.consent_history`` (or ``silver.consent``), ``scores`` ``gold.scored_profiles``.
    """

    clusters: DataFrame
    identifiers: DataFrame
    silver: Mapping[str, DataFrame] = field(default_factory=dict)
    products: DataFrame | None = None
    consent: DataFrame | None = None
    scores: DataFrame | None = None


# --- small helpers ---------------------------------------------------------------------------


def run_end(run_date: date) -> Column:
    """The first instant after the run date (midnight UTC of the next day): data is "as of" it.

    Example:
        >>> df.where(F.col("ts") < run_end(date(2026, 3, 1)))        # doctest: +SKIP
    """
    return F.lit(f"{run_date + timedelta(days=1):%Y-%m-%d} 00:00:00").cast("timestamp")


def days_before(end: Column, days: int) -> Column:
    """``end`` minus ``days`` whole days.

    Example:
        >>> df.where(F.col("ts") >= days_before(run_end(d), 7))     # doctest: +SKIP
    """
    return end - F.make_dt_interval(F.lit(days))


def record_id_column(keys: Sequence[str]) -> Column:
    """``record_id`` of a silver record: its source keys cast to string, joined with ``|``.

    Example:
        >>> pos.select(record_id_column(["transaction_id", "line_no"]))   # doctest: +SKIP
        'T000123|2'
    """
    return F.concat_ws("|", *[F.col(f"`{k}`").cast("string") for k in keys])


def with_person(
    silver: DataFrame, clusters: DataFrame, source: str, keys: Sequence[str]
) -> DataFrame:
    """Silver records of ``source`` with their ``record_id`` and ``person_id`` (inner join).

    A record the identity stage has not resolved yet has no person and is left out.

    Example:
        >>> with_person(orders, clusters, "orders", ["order_id"]).columns[-1]  # doctest: +SKIP
        'person_id'
    """
    if not keys:
        raise ConfigError(
            f"source {source!r} declares no keys, so its records have no record_id",
            hint="declare keys: [...] for it in conf/sources.yaml",
        )
    people = clusters.where(F.col("source") == source).select("record_id", "person_id")
    base = silver.drop("record_id", "person_id").withColumn("record_id", record_id_column(keys))
    return base.join(people, "record_id")


def fx_amount(amount: Column, currency: Column, rates: Mapping[str, float]) -> Column:
    """``amount`` in the base currency; null when the currency has no rate.

    Example:
        >>> orders.select(fx_amount(F.col("total_amount"), F.col("currency"), {"RUB": 1.0}))
        ...                                                            # doctest: +SKIP
    """
    rate_map = F.create_map(*[x for k, v in rates.items() for x in (F.lit(k.upper()), F.lit(v))])
    return amount.cast("double") * F.try_element_at(rate_map, F.upper(F.trim(currency)))


def _first_by(df: DataFrame, partition: str, order: Sequence[Column]) -> DataFrame:
    window = Window.partitionBy(partition).orderBy(*order)
    return df.withColumn("_rn", F.row_number().over(window)).where("_rn = 1").drop("_rn")


# --- golden record -----------------------------------------------------------------------------


def survivorship_candidates(
    records: Mapping[str, DataFrame],
    group: FieldGroup,
    event_times: Mapping[str, str | None],
    end: Column,
) -> DataFrame | None:
    """Candidate values of one field group: one row per record holding any of its fields.

    Columns: ``person_id``, ``_source``, ``_priority`` (position in ``group.sources``),
    ``_time`` (the source's event time), ``_record_id`` and the group's fields. Records after
    ``end`` are not candidates; a record without a time is (as the oldest).

    Example:
        >>> survivorship_candidates({"crm_contacts": crm}, group, {"crm_contacts": "updated_at"},
        ...                         run_end(d)).columns[:3]             # doctest: +SKIP
        ['person_id', '_source', '_priority']
    """
    parts = []
    for priority, (source, mapping) in enumerate(group.sources.items()):
        df = records.get(source)
        if df is None:
            continue
        require_columns(df, list(mapping.values()), f"silver.{source} (survivorship)")
        time_col = event_times.get(source)
        when = F.col(f"`{time_col}`").cast("timestamp") if time_col else F.lit(None)
        values = [
            F.col(f"`{mapping[f]}`").alias(f) if f in mapping else F.lit(None).alias(f)
            for f in group.fields
        ]
        part = df.select(
            "person_id",
            F.lit(source).alias("_source"),
            F.lit(priority).alias("_priority"),
            when.cast("timestamp").alias("_time"),
            F.col("record_id").alias("_record_id"),
            *values,
        )
        any_value = reduce(lambda a, b: a | b, [F.col(f).isNotNull() for f in group.fields])
        parts.append(part.where(any_value & (F.col("_time").isNull() | (F.col("_time") < end))))
    if not parts:
        return None
    return reduce(lambda a, b: a.unionByName(b), parts)


def pick_survivors(candidates: DataFrame, group: FieldGroup) -> DataFrame:
    """One winning record per person for a field group: ``person_id``, the fields, ``_source``.

    The fields come together from the winner, so a group (an address) is never mixed.
    Rules: ``source_priority`` (lowest ``_priority``), ``most_recent`` (latest ``_time``),
    ``most_frequent`` (the value held by most records), ``most_complete`` (most non-null
    fields); ties go to the most recent record, then the source order, then the record id.

    Example:
        >>> pick_survivors(cands, FieldGroup(fields=["email"], rule="most_recent",
        ...     sources={"crm_contacts": {"email": "email_norm"}})).columns   # doctest: +SKIP
        ['person_id', 'email', '_source']
    """
    fields = group.fields
    filled = reduce(
        lambda a, b: a + b, [F.when(F.col(f).isNotNull(), 1).otherwise(0) for f in fields]
    )
    value_key = F.to_json(F.struct(*[F.col(f) for f in fields]))
    ranked = candidates.withColumn("_filled", filled).withColumn(
        "_freq", F.count(F.lit(1)).over(Window.partitionBy("person_id", value_key))
    )
    ties = [
        F.col("_time").desc_nulls_last(),
        F.col("_priority").asc(),
        F.col("_source").asc(),
        F.col("_record_id").asc(),
    ]
    first = {
        "source_priority": [F.col("_priority").asc()],
        "most_recent": [],
        "most_frequent": [F.col("_freq").desc()],
        "most_complete": [F.col("_filled").desc()],
    }[group.rule]
    winners = _first_by(ranked, "person_id", [*first, *ties])
    return winners.select("person_id", *fields, "_source")


def golden_record(
    records: Mapping[str, DataFrame],
    cfg: ProfilesConfig,
    event_times: Mapping[str, str | None],
    end: Column,
) -> DataFrame | None:
    """Every survivorship group's fields per person, plus ``golden_sources`` (group -> source).

    Example:
        >>> golden_record({"crm_contacts": crm}, cfg.profiles, times, run_end(d))  # doctest: +SKIP
    """
    result: DataFrame | None = None
    sources: list[tuple[str, str]] = []
    for name, group in cfg.survivorship.items():
        candidates = survivorship_candidates(records, group, event_times, end)
        if candidates is None:
            continue
        src_col = f"_src_{name}"
        picked = pick_survivors(candidates, group).withColumnRenamed("_source", src_col)
        sources.append((name, src_col))
        result = picked if result is None else result.join(picked, "person_id", "full")
    if result is None:
        return None
    pairs = [
        F.when(F.col(c).isNotNull(), F.struct(F.lit(n).alias("k"), F.col(c).alias("v")))
        for n, c in sources
    ]
    entries = F.filter(F.array(*pairs), lambda e: e.isNotNull())
    return result.withColumn("golden_sources", F.map_from_entries(entries)).drop(
        *[c for _, c in sources]
    )


def golden_fields(cfg: ProfilesConfig) -> list[str]:
    """The golden-record columns in declared order.

    Example:
        >>> golden_fields(load_config("local").profiles)[:2]           # doctest: +SKIP
        ['first_name', 'last_name']
    """
    return [f for group in cfg.survivorship.values() for f in group.fields]


# --- identifiers -------------------------------------------------------------------------------


def identifier_arrays(identifiers: DataFrame) -> DataFrame:
    """Every known identifier of a person as sorted arrays (``emails``, ``phones``...).

    Example:
        >>> identifier_arrays(ids).columns                               # doctest: +SKIP
        ['person_id', 'emails', 'phones', 'customer_ids', 'loyalty_cards', 'cookie_ids', ...]
    """
    return identifiers.groupBy("person_id").agg(
        *[
            F.array_sort(F.collect_set(F.when(F.col("id_type") == t, F.col("id_value")))).alias(c)
            for t, c in IDENTIFIER_ARRAYS.items()
        ]
    )


def record_counts(clusters: DataFrame) -> DataFrame:
    """``source_records`` (records unified into the person) and ``sources`` per person.

    Example:
        >>> record_counts(clusters).columns                               # doctest: +SKIP
        ['person_id', 'source_records', 'sources']
    """
    return clusters.groupBy("person_id").agg(
        F.count(F.lit(1)).alias("source_records"),
        F.array_sort(F.collect_set("source")).alias("sources"),
    )


# --- purchases ---------------------------------------------------------------------------------


def online_purchases(orders: DataFrame, cfg: ProfilesConfig, end: Column) -> DataFrame:
    """Counted online orders before ``end``: ``person_id``, ``purchase_id``, ``purchased_at``,
    ``channel``, ``amount`` (base currency, null if the currency has no rate), ``lines``.

    Example:
        >>> online_purchases(with_person(orders, ...), cfg.profiles, run_end(d))  # doctest: +SKIP
    """
    statuses = [s.lower() for s in cfg.purchase_statuses]
    return orders.where(
        F.lower(F.col("status")).isin(statuses) & (F.col("ordered_at") < end)
    ).select(
        "person_id",
        F.col("order_id").cast("string").alias("purchase_id"),
        F.col("ordered_at").alias("purchased_at"),
        F.coalesce(F.lower(F.col("channel")), F.lit("web")).alias("channel"),
        fx_amount(F.col("total_amount"), F.col("currency"), cfg.fx_rates).alias("amount"),
        F.col("currency"),
        "lines",
    )


def store_purchases(pos: DataFrame, cfg: ProfilesConfig, end: Column) -> DataFrame:
    """Till receipts before ``end``, one row per transaction (lines summed), channel ``store``.

    A receipt with a line in a currency without a rate has a null ``amount``.

    Example:
        >>> store_purchases(with_person(pos, ...), cfg.profiles, run_end(d))   # doctest: +SKIP
    """
    line_amount = fx_amount(F.col("amount"), F.col("currency"), cfg.fx_rates)
    return (
        pos.where(F.col("purchased_at") < end)
        .withColumn("_amount", line_amount)
        .groupBy("person_id", F.col("transaction_id").cast("string").alias("purchase_id"))
        .agg(
            F.min("purchased_at").alias("purchased_at"),
            F.when(F.count_if(F.col("_amount").isNull()) == 0, F.sum("_amount")).alias("amount"),
            F.first("currency", ignorenulls=True).alias("currency"),
        )
        .withColumn("channel", F.lit(STORE_CHANNEL))
    )


def purchase_aggregates(
    purchases: DataFrame, cfg: ProfilesConfig, run_date: date, end: Column
) -> DataFrame:
    """Purchase figures per person (first/last purchase, orders, revenue, AOV, frequency,
    recency, preferred channel).

    ``orders`` counts online orders and store receipts; ``aov`` is revenue over the orders
    whose amount could be converted; ``purchase_frequency`` is the number of orders in the
    last ``kpis.period_days`` days (orders per CLV period).

    Example:
        >>> purchase_aggregates(bought, cfg.profiles, d, run_end(d)).columns[:3]  # doctest: +SKIP
        ['person_id', 'first_purchase_at', 'last_purchase_at']
    """
    period_start = days_before(end, cfg.kpis.period_days)
    totals = purchases.groupBy("person_id").agg(
        F.min("purchased_at").alias("first_purchase_at"),
        F.max("purchased_at").alias("last_purchase_at"),
        F.count(F.lit(1)).alias("orders"),
        F.count_if(F.col("channel") != STORE_CHANNEL).alias("online_orders"),
        F.count_if(F.col("channel") == STORE_CHANNEL).alias("store_orders"),
        F.round(F.sum("amount"), 2).alias("revenue"),
        F.round(F.avg("amount"), 2).alias("aov"),
        F.count_if(F.col("purchased_at") >= period_start)
        .cast("double")
        .alias("purchase_frequency"),
    )
    channels = purchases.groupBy("person_id", "channel").agg(
        F.count(F.lit(1)).alias("_n"), F.max("purchased_at").alias("_last")
    )
    preferred = _first_by(
        channels, "person_id", [F.col("_n").desc(), F.col("_last").desc(), F.col("channel")]
    ).select("person_id", F.col("channel").alias("preferred_channel"))
    return totals.join(preferred, "person_id", "left").withColumn(
        "recency_days", F.datediff(F.lit(run_date), F.to_date("last_purchase_at"))
    )


def preferred_category(
    online: DataFrame | None,
    pos: DataFrame | None,
    products: DataFrame | None,
    cfg: ProfilesConfig,
    end: Column,
) -> DataFrame | None:
    """The catalogue category a person bought most items of (then most revenue, then name).

    Example:
        >>> preferred_category(online, pos, products, cfg.profiles, run_end(d))  # doctest: +SKIP
    """
    if products is None:
        return None
    items = []
    if online is not None:
        line = F.explode("lines").alias("line")
        items.append(
            online.select("person_id", "currency", line).select(
                "person_id",
                F.col("line.sku").alias("sku"),
                F.coalesce(F.col("line.qty"), F.lit(1)).alias("qty"),
                fx_amount(
                    F.col("line.unit_price") * F.coalesce(F.col("line.qty"), F.lit(1)),
                    F.col("currency"),
                    cfg.fx_rates,
                ).alias("amount"),
            )
        )
    if pos is not None:
        items.append(
            pos.where(F.col("purchased_at") < end).select(
                "person_id",
                "sku",
                F.coalesce(F.col("qty"), F.lit(1)).alias("qty"),
                fx_amount(F.col("amount"), F.col("currency"), cfg.fx_rates).alias("amount"),
            )
        )
    if not items:
        return None
    catalogue = products.select("sku", "category").where(F.col("category").isNotNull())
    by_category = (
        reduce(lambda a, b: a.unionByName(b), items)
        .join(catalogue, "sku")
        .groupBy("person_id", "category")
        .agg(F.sum("qty").alias("_qty"), F.sum("amount").alias("_amount"))
    )
    return _first_by(
        by_category,
        "person_id",
        [F.col("_qty").desc(), F.col("_amount").desc_nulls_last(), F.col("category")],
    ).select("person_id", F.col("category").alias("preferred_category"))


# --- web, e-mail, support ------------------------------------------------------------------------


def web_engagement(
    web: DataFrame, online_orders: DataFrame | None, cfg: ProfilesConfig, end: Column
) -> DataFrame:
    """Sessions, product views and cart abandons over 7/30/90 days, and the last web activity.

    A session is a ``session_id``; it counts in a window when it started in it. A cart is
    abandoned when a session has an ``add_to_cart`` and the person placed no online order (any
    status) between that first add and ``cart_abandon_hours`` after the session's last event;
    it counts in the window of its first add.

    Example:
        >>> web_engagement(web, orders, cfg.profiles, run_end(d)).columns[:2]  # doctest: +SKIP
        ['person_id', 'last_web_at']
    """
    events = web.where(F.col("ts") < end).select("person_id", "ts", "event_type", "session_id")
    sessions = (
        events.where(F.col("session_id").isNotNull())
        .groupBy("person_id", "session_id")
        .agg(
            F.min("ts").alias("_start"),
            F.max("ts").alias("_stop"),
            F.min(F.when(F.col("event_type") == "add_to_cart", F.col("ts"))).alias("_cart"),
        )
    )
    carts = sessions.where(F.col("_cart").isNotNull())
    if online_orders is not None:
        orders = online_orders.where(F.col("ordered_at") < end).select(
            F.col("person_id").alias("_pid"), F.col("ordered_at").alias("_ordered")
        )
        follow = (
            (carts["person_id"] == orders["_pid"])
            & (orders["_ordered"] >= carts["_cart"])
            & (
                orders["_ordered"]
                <= carts["_stop"] + F.make_dt_interval(hours=F.lit(cfg.cart_abandon_hours))
            )
        )
        converted = (
            carts.join(orders, follow, "left")
            .groupBy("person_id", "session_id", "_cart")
            .agg(F.count("_ordered").alias("_orders"))
        )
        abandoned = converted.where(F.col("_orders") == 0)
    else:
        abandoned = carts
    per_event = events.groupBy("person_id").agg(
        F.max("ts").alias("last_web_at"),
        *[
            F.count_if(
                (F.col("event_type") == "product_view") & (F.col("ts") >= days_before(end, w))
            ).alias(f"product_views_{w}d")
            for w in ENGAGEMENT_WINDOWS
        ],
    )
    per_session = sessions.groupBy("person_id").agg(
        *[
            F.count_if(F.col("_start") >= days_before(end, w)).alias(f"web_sessions_{w}d")
            for w in ENGAGEMENT_WINDOWS
        ]
    )
    per_abandon = abandoned.groupBy("person_id").agg(
        *[
            F.count_if(F.col("_cart") >= days_before(end, w)).alias(f"cart_abandons_{w}d")
            for w in ENGAGEMENT_WINDOWS
        ]
    )
    return per_event.join(per_session, "person_id", "left").join(per_abandon, "person_id", "left")


def email_engagement(email: DataFrame, end: Column) -> DataFrame:
    """E-mail figures per person: campaigns sent/delivered/opened/clicked, rates, unsubscribe,
    and ``best_send_hour`` (the UTC hour with most opens; ties: the earliest hour).

    Rates are distinct campaigns opened (clicked) over distinct campaigns delivered (sent when
    the platform reports no deliveries), capped at 1.

    Example:
        >>> email_engagement(email_events, run_end(d)).columns[:2]     # doctest: +SKIP
        ['person_id', 'emails_sent']
    """
    ev = email.where(F.col("event_at") < end).withColumn("_event", F.lower(F.col("event")))

    def campaigns(kind: str) -> Column:
        return F.count_distinct(F.when(F.col("_event") == kind, F.col("campaign_id")))

    totals = ev.groupBy("person_id").agg(
        campaigns("sent").alias("emails_sent"),
        campaigns("delivered").alias("emails_delivered"),
        campaigns("open").alias("email_opens"),
        campaigns("click").alias("email_clicks"),
        F.max(F.col("_event") == "unsubscribe").alias("email_unsubscribed"),
    )
    base = F.when(F.col("emails_delivered") > 0, F.col("emails_delivered")).when(
        F.col("emails_sent") > 0, F.col("emails_sent")
    )
    totals = totals.withColumn(
        "email_open_rate", F.round(F.least(F.lit(1.0), F.col("email_opens") / base), 4)
    ).withColumn("email_click_rate", F.round(F.least(F.lit(1.0), F.col("email_clicks") / base), 4))
    hours = (
        ev.where(F.col("_event") == "open")
        .groupBy("person_id", F.hour("event_at").alias("best_send_hour"))
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    best = _first_by(hours, "person_id", [F.col("_n").desc(), F.col("best_send_hour")]).select(
        "person_id", "best_send_hour"
    )
    return totals.join(best, "person_id", "left")


def lexicon_pattern(entry: str) -> str:
    """The Java regex of a lexicon entry: the entry at the start of a word, taken literally.

    Example:
        >>> lexicon_pattern("проблем")
        '(?<!\\\\p{L})\\\\Qпроблем\\\\E'
    """
    return r"(?<!\p{L})\Q" + entry.lower().replace(r"\E", "") + r"\E"


def with_sentiment(df: DataFrame, text_col: str, lexicon: SentimentConfig) -> DataFrame:
    """Add ``negative_hits``, ``positive_hits`` and ``is_negative`` for the text in ``text_col``.

    Lexicon-based: a hit is a lexicon entry found at the start of a word of the lower-cased
    text (so a Russian stem matches all its endings); each entry counts once. The text is
    negative when it has more negative than positive hits. No text: not negative.

    Example:
        >>> with_sentiment(tickets, "message", SentimentConfig()).select("is_negative")
        ...                                                                # doctest: +SKIP
        'Товар сломался, ужасное качество' -> True;  'Спасибо, всё отлично' -> False
    """
    text = F.lower(F.coalesce(F.col(f"`{text_col}`"), F.lit("")))

    def hits(entries: Sequence[str]) -> Column:
        flags = [F.when(text.rlike(lexicon_pattern(e)), 1).otherwise(0) for e in entries if e]
        return reduce(lambda a, b: a + b, flags, F.lit(0))

    return (
        df.withColumn("negative_hits", hits(lexicon.negative))
        .withColumn("positive_hits", hits(lexicon.positive))
        .withColumn("is_negative", F.col("negative_hits") > F.col("positive_hits"))
    )


def support_aggregates(tickets: DataFrame, lexicon: SentimentConfig, end: Column) -> DataFrame:
    """Tickets opened before ``end``: count, still open at ``end``, negative share, last one.

    Example:
        >>> support_aggregates(tickets, SentimentConfig(), run_end(d)).columns  # doctest: +SKIP
        ['person_id', 'tickets', 'open_tickets', 'negative_tickets', 'last_ticket_at', ...]
    """
    scored = with_sentiment(tickets.where(F.col("opened_at") < end), "message", lexicon)
    still_open = F.col("resolved_at").isNull() | (F.col("resolved_at") >= end)
    return (
        scored.groupBy("person_id")
        .agg(
            F.count(F.lit(1)).alias("tickets"),
            F.count_if(still_open).alias("open_tickets"),
            F.count_if("is_negative").alias("negative_tickets"),
            F.max("opened_at").alias("last_ticket_at"),
        )
        .withColumn(
            "negative_ticket_share", F.round(F.col("negative_tickets") / F.col("tickets"), 4)
        )
    )


# --- consent ---------------------------------------------------------------------------------


def consent_records(
    consent: DataFrame | None,
    email: DataFrame | None,
    cfg: ProfilesConfig,
    end: Column,
) -> DataFrame | None:
    """Consent records before ``end`` (``identifier_type``, ``identifier_norm``, ``channel``,
    ``purpose``, ``status``, ``recorded_at``), plus e-mail unsubscribes as revocations.

    Example:
        >>> consent_records(history, email_events, cfg.profiles, run_end(d))   # doctest: +SKIP
    """
    parts = []
    if consent is not None:
        parts.append(
            consent.select(
                F.lower("identifier_type").alias("identifier_type"),
                "identifier_norm",
                F.lower("channel").alias("channel"),
                F.lower("purpose").alias("purpose"),
                F.lower(F.trim("status")).alias("status"),
                "recorded_at",
            ).where(
                F.col("identifier_norm").isNotNull()
                & (F.col("recorded_at").isNull() | (F.col("recorded_at") < end))
            )
        )
    email_purposes = cfg.consent.channels.get("email", [])
    if email is not None and cfg.consent.unsubscribe_revokes_email and email_purposes:
        unsubscribes = email.where(
            (F.lower("event") == "unsubscribe")
            & F.col("email_norm").isNotNull()
            & (F.col("event_at") < end)
        )
        parts.append(
            unsubscribes.select(
                F.lit("email").alias("identifier_type"),
                F.col("email_norm").alias("identifier_norm"),
                F.lit("email").alias("channel"),
                F.explode(F.array(*[F.lit(p) for p in email_purposes])).alias("purpose"),
                F.lit("revoked").alias("status"),
                F.col("event_at").alias("recorded_at"),
            )
        )
    if not parts:
        return None
    return reduce(lambda a, b: a.unionByName(b), parts)


def consent_state(
    records: DataFrame | None, identifiers: DataFrame, cfg: ProfilesConfig
) -> DataFrame:
    """``consent_<channel>`` per person (see docs/profiles.md, "Consent").

    The latest record per identifier, channel and purpose is its current state (a revocation
    wins a tie). A person consents to a channel only when, for every purpose the channel
    needs, at least one of their identifiers is ``granted`` and none is ``revoked``. No record
    means no consent.

    Example:
        >>> consent_state(records, identifiers, cfg.profiles).columns      # doctest: +SKIP
        ['person_id', 'consent_email', 'consent_sms', 'consent_ads']
    """
    channels = cfg.consent.channels
    names = [f"consent_{c}" for c in channels]
    if records is None:
        return (
            identifiers.select("person_id")
            .distinct()
            .select("person_id", *[F.lit(False).alias(n) for n in names])
        )
    window = Window.partitionBy("identifier_type", "identifier_norm", "channel", "purpose").orderBy(
        F.col("recorded_at").desc_nulls_last(), (F.col("status") == "revoked").desc()
    )
    current = records.withColumn("_rn", F.row_number().over(window)).where("_rn = 1").drop("_rn")
    ids = identifiers.select(
        F.col("id_type").alias("identifier_type"),
        F.col("id_value").alias("identifier_norm"),
        "person_id",
    )
    per_purpose = (
        current.join(ids, ["identifier_type", "identifier_norm"])
        .groupBy("person_id", "channel", "purpose")
        .agg(
            F.max(F.col("status") == "granted").alias("_granted"),
            F.max(F.col("status") == "revoked").alias("_revoked"),
        )
        .withColumn("_ok", F.col("_granted") & ~F.col("_revoked"))
    )
    return per_purpose.groupBy("person_id").agg(
        *[
            (
                F.count_if(
                    (F.col("channel") == channel) & F.col("purpose").isin(purposes) & F.col("_ok")
                )
                == len(set(purposes))
            ).alias(f"consent_{channel}")
            for channel, purposes in channels.items()
        ]
    )


# --- lifecycle, RFM, CLV ---------------------------------------------------------------------


def lifecycle_stage(cfg: ProfilesConfig, run_date: date) -> Column:
    """The lifecycle stage from ``orders``, ``first_purchase_at`` and ``recency_days``.

    Example:
        >>> profiles.withColumn("stage", lifecycle_stage(cfg.profiles, d))  # doctest: +SKIP
    """
    lc = cfg.lifecycle
    tenure = F.datediff(F.lit(run_date), F.to_date("first_purchase_at"))
    recency = F.col("recency_days")
    return (
        F.when(F.coalesce(F.col("orders"), F.lit(0)) == 0, F.lit("prospect"))
        .when(tenure <= lc.new_days, F.lit("new"))
        .when(recency <= lc.active_days, F.lit("active"))
        .when(recency <= lc.at_risk_days, F.lit("at_risk"))
        .when(recency <= lc.lapsed_days, F.lit("lapsed"))
        .otherwise(F.lit("churned"))
    )


def with_rfm(profiles: DataFrame) -> DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score`` (1-5) and ``rfm_score`` (e.g. ``"545"``).

    Quintiles by percent rank among customers with a purchase (5 = most recent, most orders,
    most revenue): ``score = 1 + floor(5 * percent_rank)``, capped at 5; ties share a score.
    People without purchases get nulls.

    Example:
        >>> with_rfm(profiles).select("rfm_score").first()[0]            # doctest: +SKIP
        '545'
    """
    buyers = profiles.where(F.col("orders") > 0)

    def score(order: Column) -> Column:
        rank = F.percent_rank().over(Window.orderBy(order))
        return F.least(F.lit(5), F.floor(rank * 5).cast("int") + 1)

    scored = buyers.select(
        "person_id",
        score(F.col("recency_days").desc()).alias("r_score"),
        score(F.col("orders").asc()).alias("f_score"),
        score(F.coalesce(F.col("revenue"), F.lit(0.0)).asc()).alias("m_score"),
    ).withColumn(
        "rfm_score",
        F.concat(
            F.col("r_score").cast("string"),
            F.col("f_score").cast("string"),
            F.col("m_score").cast("string"),
        ),
    )
    return profiles.join(scored, "person_id", "left")


def latest_scores(scores: DataFrame | None, run_date: date) -> DataFrame | None:
    """The latest ``churn_score`` per person scored on or before the run date.

    Example:
        >>> latest_scores(scored_profiles, d).columns                    # doctest: +SKIP
        ['person_id', 'churn_score']
    """
    if scores is None:
        return None
    recent = scores.where(F.col("score_date") <= F.lit(run_date)).where(
        F.col("churn_score").isNotNull()
    )
    return _first_by(recent, "person_id", [F.col("score_date").desc()]).select(
        "person_id", F.col("churn_score").cast("double").alias("churn_score")
    )


def with_clv(profiles: DataFrame, cfg: ProfilesConfig, scores: DataFrame | None) -> DataFrame:
    """Add ``churn_rate``, ``churn_source`` and ``clv``.

    ``clv = aov * purchase_frequency * gross_margin / churn_rate``: churn rate from the churn
    model's latest score when there is one (``churn_source = 'model'``), else the rate of the
    person's lifecycle stage (``'lifecycle'``), floored at ``kpis.min_churn_rate``. People
    without a converted purchase have ``clv = 0``.

    Example:
        >>> with_clv(profiles, cfg.profiles, None).select("clv").first()[0]  # doctest: +SKIP
        1260.0
    """
    k = cfg.kpis
    stage_rate = F.create_map(
        *[x for s, r in k.lifecycle_churn_rate.items() for x in (F.lit(s), F.lit(float(r)))]
    )
    if scores is not None:
        profiles = profiles.join(scores, "person_id", "left")
    else:
        profiles = profiles.withColumn("churn_score", F.lit(None).cast("double"))
    raw = F.coalesce(F.col("churn_score"), F.try_element_at(stage_rate, F.col("lifecycle_stage")))
    return (
        profiles.withColumn("churn_rate", F.greatest(F.lit(k.min_churn_rate), raw))
        .withColumn(
            "churn_source",
            F.when(F.col("churn_score").isNotNull(), F.lit("model")).otherwise(F.lit("lifecycle")),
        )
        .withColumn(
            "clv",
            F.round(
                F.coalesce(
                    F.col("aov")
                    * F.col("purchase_frequency")
                    * F.lit(k.gross_margin)
                    / F.col("churn_rate"),
                    F.lit(0.0),
                ),
                2,
            ),
        )
        .drop("churn_score")
    )


# --- the whole profile -----------------------------------------------------------------------

# Aggregate columns with the value a person without such records gets.
_ZERO_LONG = (
    "orders",
    "online_orders",
    "store_orders",
    "emails_sent",
    "emails_delivered",
    "email_opens",
    "email_clicks",
    "tickets",
    "open_tickets",
    "negative_tickets",
    *[
        f"{m}_{w}d"
        for m in ("web_sessions", "product_views", "cart_abandons")
        for w in ENGAGEMENT_WINDOWS
    ],
)


def profile_columns(cfg: ProfilesConfig) -> list[tuple[str, str]]:
    """Every column of ``gold.customer_profiles`` with its Spark type, in table order.

    Example:
        >>> [c for c, _ in profile_columns(load_config("local").profiles)][:3]  # doctest: +SKIP
        ['person_id', 'first_name', 'last_name']
    """
    golden = [(f, "") for f in golden_fields(cfg)]  # type taken from the source column
    arrays = [(c, "array<string>") for c in IDENTIFIER_ARRAYS.values()]
    web = [
        (f"{m}_{w}d", "bigint")
        for m in ("web_sessions", "product_views", "cart_abandons")
        for w in ENGAGEMENT_WINDOWS
    ]
    return [
        ("person_id", "string"),
        *golden,
        ("golden_sources", "map<string,string>"),
        *arrays,
        ("source_records", "bigint"),
        ("sources", "array<string>"),
        ("first_purchase_at", "timestamp"),
        ("last_purchase_at", "timestamp"),
        ("orders", "bigint"),
        ("online_orders", "bigint"),
        ("store_orders", "bigint"),
        ("revenue", "double"),
        ("aov", "double"),
        ("purchase_frequency", "double"),
        ("recency_days", "int"),
        ("r_score", "int"),
        ("f_score", "int"),
        ("m_score", "int"),
        ("rfm_score", "string"),
        ("preferred_channel", "string"),
        ("preferred_category", "string"),
        *web,
        ("last_web_at", "timestamp"),
        ("emails_sent", "bigint"),
        ("emails_delivered", "bigint"),
        ("email_opens", "bigint"),
        ("email_clicks", "bigint"),
        ("email_open_rate", "double"),
        ("email_click_rate", "double"),
        ("email_unsubscribed", "boolean"),
        ("best_send_hour", "int"),
        ("tickets", "bigint"),
        ("open_tickets", "bigint"),
        ("negative_tickets", "bigint"),
        ("negative_ticket_share", "double"),
        ("last_ticket_at", "timestamp"),
        *[(f"consent_{c}", "boolean") for c in cfg.consent.channels],
        ("lifecycle_stage", "string"),
        ("churn_rate", "double"),
        ("churn_source", "string"),
        ("clv", "double"),
        ("run_date", "date"),
    ]


def _check_names(cfg: ProfilesConfig) -> None:
    golden = golden_fields(cfg)
    taken = {c for c, t in profile_columns(cfg) if t} & set(golden)
    dupes = {f for f in golden if golden.count(f) > 1}
    if taken or dupes:
        raise ConfigError(
            f"profiles.survivorship: field name(s) {sorted(taken | dupes)} clash with "
            "profile columns or with another group",
            hint="rename the fields (see the column list in docs/profiles.md)",
        )


def _source_frame(inputs: ProfileInputs, cfg: CdpConfig, source: str | None) -> DataFrame | None:
    if source is None or source not in inputs.silver:
        return None
    declared = cfg.sources.get(source)
    if declared is None:
        raise ConfigError(
            f"profiles: source {source!r} is not declared in sources:",
            hint="use a key of conf/sources.yaml in conf/profiles.yaml",
        )
    return with_person(inputs.silver[source], inputs.clusters, source, declared.keys)


def build_customer_profiles(inputs: ProfileInputs, cfg: CdpConfig, run_date: date) -> DataFrame:
    """``gold.customer_profiles`` as of the end of ``run_date``: one row per ``person_id``.

    Persons are those of ``gold.identity_clusters`` and ``gold.identity_identifiers``; every
    aggregate a person has no records for is 0 (counts), false (flags) or null (times, rates).

    Example:
        >>> build_customer_profiles(inputs, cfg, date(2026, 3, 1)).count()   # doctest: +SKIP
        2143
    """
    pc = cfg.profiles
    _check_names(pc)
    end = run_end(run_date)
    roles = pc.sources
    require_columns(inputs.clusters, ["source", "record_id", "person_id"], "gold.identity_clusters")
    require_columns(
        inputs.identifiers, ["id_type", "id_value", "person_id"], "gold.identity_identifiers"
    )

    # Survivorship may name any source; aggregates read the sources of their roles.
    needed = set(roles.model_dump().values()) | {
        s for g in pc.survivorship.values() for s in g.sources
    }
    records = {
        s: frame
        for s in sorted(x for x in needed if x)
        if (frame := _source_frame(inputs, cfg, s)) is not None
    }
    event_times = {s: (cfg.sources[s].event_time or cfg.sources[s].order_by) for s in records}

    def role(name: str | None) -> DataFrame | None:
        return records.get(name) if name else None

    persons = (
        inputs.clusters.select("person_id")
        .unionByName(inputs.identifiers.select("person_id"))
        .distinct()
    )
    parts: list[DataFrame] = [record_counts(inputs.clusters), identifier_arrays(inputs.identifiers)]

    golden = golden_record(records, pc, event_times, end)
    if golden is not None:
        parts.append(golden)

    orders, pos = role(roles.orders), role(roles.pos)
    online = online_purchases(orders, pc, end) if orders is not None else None
    store = store_purchases(pos, pc, end) if pos is not None else None
    bought = [
        p.select("person_id", "purchase_id", "purchased_at", "channel", "amount")
        for p in (online, store)
        if p is not None
    ]
    if bought:
        parts.append(
            purchase_aggregates(reduce(lambda a, b: a.unionByName(b), bought), pc, run_date, end)
        )
    category = preferred_category(online, pos, inputs.products, pc, end)
    if category is not None:
        parts.append(category)
    web = role(roles.web)
    if web is not None:
        parts.append(web_engagement(web, orders, pc, end))
    email = role(roles.email)
    if email is not None:
        parts.append(email_engagement(email, end))
    support = role(roles.support)
    if support is not None:
        parts.append(support_aggregates(support, pc.sentiment, end))
    parts.append(
        consent_state(consent_records(inputs.consent, email, pc, end), inputs.identifiers, pc)
    )

    profiles = reduce(lambda acc, part: acc.join(part, "person_id", "left"), parts, persons)
    profiles = _fill_missing(profiles, pc)
    profiles = profiles.withColumn("lifecycle_stage", lifecycle_stage(pc, run_date))
    profiles = with_rfm(profiles)
    profiles = with_clv(profiles, pc, latest_scores(inputs.scores, run_date))
    profiles = profiles.withColumn("run_date", F.lit(run_date))
    return profiles.select(*[c for c, _ in profile_columns(pc)])


def _fill_missing(profiles: DataFrame, cfg: ProfilesConfig) -> DataFrame:
    """Add absent columns (a source the shop lacks) as typed nulls; zero counts, false flags."""
    present = set(profiles.columns)
    out = []
    for name, dtype in profile_columns(cfg):
        if name in ("lifecycle_stage", "churn_rate", "churn_source", "clv", "run_date"):
            continue
        if name in ("r_score", "f_score", "m_score", "rfm_score"):
            continue
        col = F.col(f"`{name}`") if name in present else F.lit(None).cast(dtype or "string")
        if name in _ZERO_LONG:
            col = F.coalesce(col.cast("bigint"), F.lit(0).cast("bigint"))
        elif dtype == "array<string>":
            col = F.coalesce(col, F.array().cast("array<string>"))
        elif dtype == "boolean":
            col = F.coalesce(col, F.lit(False))
        elif dtype == "map<string,string>":
            col = F.coalesce(col, F.create_map().cast("map<string,string>"))
        elif dtype:
            col = col.cast(dtype)
        out.append(col.alias(name))
    return profiles.select(*out)


def profile_schema(df: DataFrame) -> StructType:
    """The table schema of a built profile: every column nullable but ``person_id``.

    Example:
        >>> profile_schema(profiles)["person_id"].nullable                 # doctest: +SKIP
        False
    """
    return StructType(
        [StructField(f.name, f.dataType, f.name != "person_id") for f in df.schema.fields]
    )
