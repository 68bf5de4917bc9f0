"""Point-in-time features, churn and purchase-propensity models, scoring and monitoring."""
