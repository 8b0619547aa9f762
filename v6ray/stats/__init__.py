"""Derived statistics: pure polars metrics (metrics.py) and their assembly into the
``derived_statistics`` table with a Ray task (derive.py)."""
