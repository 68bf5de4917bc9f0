"""Synthetic multi-source data for the CDP: a retailer's CRM, orders, web, e-mail, support, POS
and consent exports, with known ground truth (see ``docs/sources.md``).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = generate(Path(tmp), customers=100, days=2, seed=42)
    >>> summary.files["web_events"] >= 2
    True
"""

from cdp_spark.generate.core import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
