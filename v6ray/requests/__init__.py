"""What a request is: its types (one spec module each, ``types/``), the registry that
checks them at import, the parameter rules they are built from, and IB durations."""
