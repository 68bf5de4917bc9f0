"""Configuration of fuzzy (probabilistic) matching (``identity.fuzzy`` in ``conf/identity.yaml``)."""

from __future__ import annotations

from cdp_spark._settings import Settings


class FuzzyConfig(Settings):
    """Blocking rules, comparisons, thresholds of the probabilistic matcher."""
