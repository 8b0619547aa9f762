"""The running service: ``v6ray up``/``down`` (``lifecycle``), the Ray cluster under it
(``cluster``: the one place v6ray connects to Ray), where work may run (``placement``),
its settings, its state file, and the few private Ray calls it needs."""
