"""Every use v6ray makes of Ray's private modules (``ray._private``, ``ray._raylet``), in one
place, each with why no public API does it. Nothing else in v6ray may import them
(tests/unit/test_ray_private.py enforces it); a Ray upgrade checks this file only.

Ray releases v6ray is tested with: see ``ray[default]`` in pyproject.toml.
"""

from __future__ import annotations

import contextlib
from typing import Any


def keep_loopback_as_loopback() -> None:
    """Make Ray in this process keep 127.0.0.1 as 127.0.0.1.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is read once, when ``ray._private.ray_constants``
    is imported; a process that imported Ray before setting it (a notebook) needs the
    constant itself changed. No public API exists (Ray reads it at call time).
    """
    import ray._private.ray_constants as ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def refresh_ray_config() -> None:
    """Re-read Ray's C++ config (auth mode, token path) from the environment, and forget
    the token Ray loaded.

    Ray caches both when first used; after changing ``RAY_AUTH_MODE`` or the token path in
    a process that already used Ray, this is what Ray's own auth test utilities do
    (``reset_auth_token_state``: config first, then the token cache). Without the second
    step a later local ``ray.init()`` sends the old cluster's token to its new GCS and is
    refused. No public API. Older Rays without the calls need nothing.
    """
    with contextlib.suppress(Exception):
        from ray._raylet import Config

        Config.initialize("")
    with contextlib.suppress(Exception):
        from ray._raylet import AuthenticationTokenLoader

        AuthenticationTokenLoader.instance().reset_cache()


def job_logging_config() -> Any:
    """The ``ray.LoggingConfig`` of the job this Ray worker runs for, or None.

    Ray applies it to the worker's loggers but exposes no getter for it; v6ray's batched
    request lines need its encoding to write lines in the job's layout.
    """
    try:
        from ray._private.worker import global_worker

        return global_worker.job_logging_config
    except Exception:  # noqa: BLE001 - not a Ray worker
        return None
