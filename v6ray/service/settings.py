"""Service settings from the environment (``V6RAY_*``) and command-line flags.

One frozen dataclass; flags override the environment, the environment overrides defaults.
Component tunables (queue, gateway, scheduler) live in their own packages' config classes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from v6ray import constants
from v6ray.errors import SettingsError
from v6ray.storage.location import DataRoot

_ENV = {
    "data_dir": "V6RAY_DATA_DIR",
    "ib_host": "V6RAY_IB_HOST",
    "ib_port": "V6RAY_IB_PORT",
    "client_id": "V6RAY_CLIENT_ID",
    "time_scale": "V6RAY_TIME_SCALE",
    "ray_address": "V6RAY_RAY_ADDRESS",
}


@dataclass(frozen=True)
class Settings:
    data_dir: str = constants.DEFAULT_DATA_DIR
    ib_host: str = constants.DEFAULT_IB_HOST
    ib_port: int = constants.DEFAULT_IB_PORT
    client_id: int = constants.DEFAULT_CLIENT_ID
    # Multiplies every IB pacing window the gateway enforces: 1.0 against real IB; tests
    # run the simulator and the gateway with the same small factor.
    time_scale: float = 1.0
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.ib_port < 65536:
            raise SettingsError(f"ib_port must be within 1..65535, got {self.ib_port}")
        if self.client_id < 0:
            raise SettingsError(f"client_id must be 0 or more, got {self.client_id}")
        if not self.time_scale > 0:
            raise SettingsError(f"time_scale must be greater than 0, got {self.time_scale}")
        if not self.data_dir:
            raise SettingsError("data_dir must not be empty")
        DataRoot.parse(self.data_dir)  # StorageConfigError naming V6RAY_DATA_DIR / --data-dir

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``V6RAY_*`` variables, then non-None ``overrides`` (flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in _ENV.items():
            if env.get(var):
                values[name] = _convert(name, types[name], env[var], var)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def data_path(self) -> str:
        """The data root: an absolute local path, or the object-store URI as given."""
        return DataRoot.parse(self.data_dir).uri


def _convert(name: str, type_name: Any, raw: str, var: str) -> Any:
    text = str(type_name)
    try:
        if text == "int":
            return int(raw)
        if text == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{var}={raw!r}: {name} must be a number") from None
    return raw
