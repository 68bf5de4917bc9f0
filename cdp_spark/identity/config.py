"""Configuration of identity resolution (``identity:`` in ``conf/identity.yaml``).

The keys read like the "match rules" of commercial CDPs: which columns of which source are
identifiers (``rules``), how far each identifier type may be trusted (``identifiers``: its
blocklist, how many people it may link, how strong it is when an oversized cluster must be
split) and the size above which a cluster is split and reported (``oversize``).

Example:
    >>> cfg = load_config("local")                              # doctest: +SKIP
    >>> cfg.identity.identifiers["phone"].max_links
    1
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cdp_spark._settings import Settings
from cdp_spark.identity.fuzzy_config import FuzzyConfig

IdType = Literal["email", "phone", "customer_id", "loyalty_card", "cookie_id", "device_id"]
# Node type of same_person groups (records of one receipt): linked, never an identifier.
GROUP_TYPE = "group"
ID_TYPES: tuple[str, ...] = (
    "customer_id",
    "email",
    "phone",
    "loyalty_card",
    "cookie_id",
    "device_id",
)


class MatchRule(Settings):
    """A deterministic rule: every record of ``source`` is linked to each identifier it holds.

    ``identifiers`` maps silver columns to identifier types. ``typed_identifier`` is for sources
    whose rows say which kind of value they hold (consent: ``[identifier_norm,
    identifier_type]``). ``same_person`` names columns whose common values make records one
    person (the lines of one till receipt: ``[transaction_id]``); they are linked through a
    ``group:`` node, which is not an identifier of the person. ``where`` (Spark SQL over the
    silver columns) limits the rule to some records, e.g. login events.
    """

    source: str
    identifiers: dict[str, IdType] = Field(default_factory=dict)
    typed_identifier: tuple[str, str] | None = None
    same_person: list[str] = Field(default_factory=list)
    where: str | None = None
    score: float = Field(default=1.0, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _has_identifiers(self) -> MatchRule:
        if not self.identifiers and self.typed_identifier is None and not self.same_person:
            raise ValueError("a match rule needs identifiers, typed_identifier or same_person")
        return self


class IdentifierPolicy(Settings):
    """How one identifier type is trusted.

    ``anchor``: the type names a person by itself (CRM customer id, e-mail); the other types
    (phones, cookies, devices, cards) are checked against the anchors they touch.
    ``max_links``: the most distinct anchors one value may link before it is a shared value
    (a household tablet or landline, the store's card) whose links are dropped and reported;
    ``None`` means no limit. ``strength``: when an oversized cluster is split, links through
    the weakest types are cut first. ``blocklist``: extra junk values (normalised form), on top
    of the normaliser's built-in list for e-mails and phones; ``blocklist_patterns``: Java
    regular expressions matched against the whole normalised value.
    """

    anchor: bool = False
    max_links: int | None = Field(default=None, ge=1)
    strength: int = Field(default=1, ge=0)
    blocklist: list[str] = Field(default_factory=list)
    blocklist_patterns: list[str] = Field(default_factory=list)


CorroborateAttribute = Literal["name", "date_of_birth"]
_CORROBORATE_ATTRIBUTES: tuple[CorroborateAttribute, ...] = ("name", "date_of_birth")
_CORROBORATE_TYPES: tuple[IdType, ...] = ("phone", "loyalty_card", "device_id", "cookie_id")


class CorroborateConfig(Settings):
    """When a shared value's anchor groups are one person by their CRM attributes.

    A phone or browser that two anchor groups hold is cut as shared (``max_links``), yet the
    commonest CRM duplicate is one person's second account sharing only that phone. With this
    on, the anchor groups a value touches are compared by the attributes of their records in
    ``source``: groups with the same name key (``name``: ``name_match_key`` of
    :mod:`cdp_spark.normalize`, case, transliteration and word order folded) and, if
    ``date_of_birth`` is
    listed, birth dates equal or missing on one side, count as one group for the value's limit.
    A group is compared only if its records hold one name key and at most one birth date; a
    group without such records (no CRM account) counts on its own. ``id_types``: the
    non-anchor types this applies to. ``missing_dates``: placeholder birth dates that count as
    missing.
    """

    enabled: bool = True
    attributes: list[CorroborateAttribute] = Field(
        default_factory=lambda: list(_CORROBORATE_ATTRIBUTES)
    )
    id_types: list[IdType] = Field(default_factory=lambda: list(_CORROBORATE_TYPES))
    source: str = "crm_contacts"
    missing_dates: list[str] = Field(default_factory=lambda: ["1900-01-01", "1970-01-01"])

    @model_validator(mode="after")
    def _needs_name(self) -> CorroborateConfig:
        # A birth date alone is far too common to say two accounts are one person.
        if "name" not in self.attributes:
            raise ValueError("corroborate_shared.attributes must include name")
        return self


class OversizeConfig(Settings):
    """A cluster larger than this is split along its weakest links and reported for review."""

    max_identifiers: int = Field(default=60, ge=2)
    max_customer_ids: int = Field(default=4, ge=1)


def _default_policies() -> dict[IdType, IdentifierPolicy]:
    return {
        "customer_id": IdentifierPolicy(anchor=True, strength=6),
        "email": IdentifierPolicy(anchor=True, max_links=3, strength=5),
        "phone": IdentifierPolicy(max_links=1, strength=4),
        "loyalty_card": IdentifierPolicy(max_links=1, strength=3),
        "device_id": IdentifierPolicy(max_links=1, strength=2),
        "cookie_id": IdentifierPolicy(max_links=1, strength=1),
    }


class IdentityConfig(Settings):
    """Match rules, thresholds, cardinality limits, blocklists and oversize limits."""

    # Person-bearing sources: every record of these gets a person_id.
    sources: list[str] = Field(
        default_factory=lambda: [
            "crm_contacts",
            "orders",
            "web_events",
            "email_events",
            "support_tickets",
            "pos_sales",
            "consent_events",
        ]
    )
    rules: dict[str, MatchRule] = Field(default_factory=dict)
    identifiers: dict[IdType, IdentifierPolicy] = Field(default_factory=_default_policies)
    oversize: OversizeConfig = OversizeConfig()
    # Strength of a fuzzy link when oversized clusters are split (compare identifiers.*.strength).
    fuzzy_strength: int = Field(default=3, ge=0)
    # Prefix of generated person ids: P + 16 hex digits of a hash of the cluster's first record.
    person_id_prefix: str = Field(default="P", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,7}$")
    # auto: incremental when the stage has run before, full otherwise; full: whole graph.
    mode: Literal["auto", "full", "incremental"] = "auto"
    # Where `cdp run identity` writes its cluster-size plot (relative to the project root).
    plots_dir: str = "data/reports/identity"
    # Log a full run's figures and plot to MLflow (mlflow.tracking_uri, run identity-<date>).
    log_to_mlflow: bool = True
    # Fuzzy links between CRM contacts in the identity stage. Off by default: on the demo data
    # they joined household members (same surname and address): CRM precision 1.0 -> 0.96,
    # recall 0.59 -> 0.99 (docs/decisions.md).
    # `cdp resolve` uses fuzzy.enabled alone.
    fuzzy_crm_links: bool = False
    # Shared values whose anchor groups are one person by name and birth date are not cut.
    corroborate_shared: CorroborateConfig = CorroborateConfig()
    fuzzy: FuzzyConfig = FuzzyConfig()

    def policy(self, id_type: str) -> IdentifierPolicy:
        """The policy of ``id_type`` (a default one for a type the YAML does not list)."""
        return self.identifiers.get(id_type, IdentifierPolicy())  # type: ignore[call-overload]

    def anchor_types(self) -> list[str]:
        """Identifier types that name a person by themselves (``anchor: true``)."""
        return sorted(t for t, p in self.identifiers.items() if p.anchor)
