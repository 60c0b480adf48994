"""Dashboards: what reads every app and nobody reads (README, "How the code is laid
out")."""
