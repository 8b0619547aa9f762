"""The ``v6ray`` command: its parser and entry point (``main``), what each command does
(``commands``), argument types, and the text of ``v6ray status``."""
