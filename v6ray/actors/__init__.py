"""What every v6ray actor shares: how its long-running loops are started, kept alive and
stopped (``loops``)."""
