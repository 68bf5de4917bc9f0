"""Configuration of privacy (``privacy:`` in ``conf/privacy.yaml``)."""

from __future__ import annotations

from cdp_spark._settings import Settings


class PrivacyConfig(Settings):
    """PII columns, erasure retention, pseudonymisation."""
