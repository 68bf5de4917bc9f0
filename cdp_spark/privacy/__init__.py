"""Privacy: erasure, PII declarations, pseudonymisation, suppression."""
