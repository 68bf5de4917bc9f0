"""Unified customer profiles, KPIs, segments, activation and the profile look-up."""
