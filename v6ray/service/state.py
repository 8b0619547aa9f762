"""The service state file ``<data-dir>/_v6ray/service.json``: what `v6ray up` started.

It records the Ray address `up` used, whether `up` owns that cluster (the head's pid and
its unique temp dir), where results go (``<data-dir>/simulated`` with ``--simulate``) and
the pid of a foreground `up`. Every other command finds the service through it, so no
command connects to "whatever Ray cluster is around" by accident, and `down` knows
exactly which cluster is its own to stop. Written atomically; a corrupt file reads as none.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

from v6ray import constants
from v6ray.service import cluster
from v6ray.service.settings import Settings
from v6ray.storage import location

STATE_SUBDIR = location.STATE_SUBDIR
STATE_FILE = "service.json"


@dataclass
class ServiceState:
    base_data_dir: str  # what --data-dir / V6RAY_DATA_DIR said (absolute, or its URI)
    results_dir: str  # where the tables are: base, or base/simulated with --simulate
    ray_address: str
    owns_cluster: bool  # `up` started this Ray head, so `down` stops it
    simulate: bool
    time_scale: float
    ib_host: str
    ib_port: int
    client_id: int
    head_pid: int | None = None
    head_temp_dir: str | None = None
    head_log: str | None = None
    dashboard_url: str | None = None
    auth_mode: str | None = None
    up_pid: int | None = None  # a foreground `up`; None once detached
    monitor_url: str | None = None  # the live monitor page (None with --no-monitor)
    monitor_token_file: str | None = None  # its token, when bound beyond loopback
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @staticmethod
    def path(base_data_dir: str) -> str:
        # On this machine even for an object-store data root (location.local_state_dir).
        return os.path.join(location.local_state_dir(base_data_dir), STATE_FILE)

    def save(self) -> None:
        path = self.path(self.base_data_dir)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as out:
            json.dump(asdict(self), out, indent=2)
        os.replace(tmp, path)  # atomic: a reader never sees half a file

    @classmethod
    def load(cls, base_data_dir: str) -> ServiceState | None:
        try:
            with open(cls.path(base_data_dir)) as src:
                raw = json.load(src)
        except (OSError, ValueError):
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError:
            return None

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path(self.base_data_dir))

    def head(self) -> cluster.OwnedHead | None:
        if not (self.owns_cluster and self.head_pid and self.head_temp_dir):
            return None
        return cluster.OwnedHead(
            pid=self.head_pid,
            gcs_address=self.ray_address,
            dashboard_url=self.dashboard_url or "",
            temp_dir=self.head_temp_dir,
            log_path=self.head_log or "",
            auth_mode=self.auth_mode,
        )

    def cluster_alive(self) -> bool:
        head = self.head()
        if self.owns_cluster and (head is None or not cluster.head_is_ours(head)):
            return False
        return cluster.reachable(self.ray_address)


def results_dir(settings: Settings, simulate: bool) -> str:
    """Simulated data never mixes with real data: it lives under <data-dir>/simulated."""
    base = settings.data_path
    return location.join(base, constants.SIMULATED_DATA_SUBDIR) if simulate else base
