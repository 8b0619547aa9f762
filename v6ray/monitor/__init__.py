"""The live monitor page `v6ray up` serves on 127.0.0.1 (``v6ray monitor`` prints its URL).

* ``snapshot``: the page's numbers, built from the actors' ``stats()`` (pure);
* ``server``: the ``V6RayMonitor`` actor serving the page and ``GET /api/status`` (aiohttp,
  read-only, every asset served from ``static/``: no CDN, no external request).
"""
