"""Configuration of profiles, KPIs, segments and activation.

``profiles:`` and ``activation:`` live in ``conf/profiles.yaml``, ``segments:`` in
``conf/segments.yaml``.
"""

from __future__ import annotations

from cdp_spark._settings import Settings


class ProfilesConfig(Settings):
    """Survivorship rules, lifecycle thresholds, KPI parameters."""


class SegmentConfig(Settings):
    """One audience: a name, a description and a boolean expression over profile columns."""


class ActivationConfig(Settings):
    """Destinations that segments are published to."""
