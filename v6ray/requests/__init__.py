"""What a request is: its types (one spec module each, ``types/``), the registry that
checks them at import, the parameter rules they are built from, and IB durations (a bar
request's time range and how it is split into IB requests)."""
