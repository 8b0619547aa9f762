"""Data-loading scripts, each a function for the CLI and ``python -m v6ray.scripts.<name>``:
load_historical_data (``load_history``), load_futures_data (``load_futures``),
derive_statistics (``derive_statistics``); shared summary/progress in progress.py."""
