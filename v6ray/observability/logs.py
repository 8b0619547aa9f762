"""Logging of v6ray's actors and tasks: Ray's worker logging configuration, and masking.

``logging_config(settings)`` is the ``ray.LoggingConfig`` `v6ray up` starts its job with:
Ray then sets up the root logger of every worker of the job (the actors, the writer
tasks) at that level, so their lines reach Ray's log files (``worker-*.err`` under the
session's ``logs/``) and the dashboard's log view; ``json`` makes every line a JSON object.

``install_masking()`` keeps account ids and secrets out of every log line of the process:
IB's error texts can carry an account id (e.g. "DU1234567"), and a library may print an
option that holds a key. Ids are masked to their prefix and last three digits.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from v6ray.config import SettingsError

LEVEL_ENV = "V6RAY_LOG_LEVEL"
FORMAT_ENV = "V6RAY_LOG_FORMAT"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")


class LogSettingsError(SettingsError):
    """A log level or format that is not one of the known ones; the message names it."""


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    format: str = "text"

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise LogSettingsError(f"log level must be one of {', '.join(LEVELS)}, "
                                   f"got {self.level!r}")
        if self.format not in FORMATS:
            raise LogSettingsError(f"log format must be one of {', '.join(FORMATS)}, "
                                   f"got {self.format!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, level: str | None = None,
                 format: str | None = None) -> LogSettings:
        """Flags first, then ``V6RAY_LOG_LEVEL`` / ``V6RAY_LOG_FORMAT``, then INFO / text."""
        env = os.environ if env is None else env
        return cls(
            level=(level or env.get(LEVEL_ENV) or "INFO").strip().upper(),
            format=(format or env.get(FORMAT_ENV) or "text").strip().lower(),
        )


def logging_config(settings: LogSettings) -> Any:
    """Ray's job-wide logging configuration for these settings."""
    import ray

    return ray.LoggingConfig(encoding=settings.format.upper(), log_level=settings.level)


# --------------------------------------------------------------------------- masking

# IB account ids: U/DU (individual, paper), F/DF (advisor), I (institution) + digits.
_ACCOUNT = re.compile(r"\b(DU|DF|DI|U|F|I)(\d{4,9})\b")
# key=value / "key": "value" where the key names a secret.
_SECRET_PAIR = re.compile(
    r"(?i)((?:secret|token|password|passwd|api[_-]?key|access[_-]?key|credential)"
    r"[\w-]*[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}]+)"
)
# Cheap first looks: the full patterns above run only on text that may hold a match
# (they cost ~20 µs per line, the look ~1 µs; every log line of the worker passes here).
_ACCOUNT_HINT = re.compile(r"[UFI]\d{4}")
_SECRET_WORDS = ("secret", "token", "passw", "key", "credential")
_SECRET_ENV = re.compile(r"(?i)(SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|_KEY$|ACCESS_KEY)")
MASK = "***"


def mask_account(account: str) -> str:
    """"DU1234567" → "DU****567": enough to tell accounts apart, not enough to use one."""
    return _ACCOUNT.sub(lambda m: f"{m.group(1)}****{m.group(2)[-3:]}", account)


def _secret_values(env: Mapping[str, str]) -> list[str]:
    return sorted(
        (v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= 6),
        key=len, reverse=True,
    )


def mask(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with account ids masked and secret values (and key=value secrets) hidden."""
    for value in secrets if secrets is not None else _secret_values(os.environ):
        if value in text:
            text = text.replace(value, MASK)
    lower = text.lower()
    if any(word in lower for word in _SECRET_WORDS):
        text = _SECRET_PAIR.sub(lambda m: m.group(1) + MASK, text)
    return mask_account(text) if _ACCOUNT_HINT.search(text) else text


_installed = False


def install_masking() -> None:
    """Mask every log record this process makes from now on (idempotent).

    Done in the record factory, before any handler or filter, so whatever handler Ray or
    a library adds prints the masked text only.
    """
    global _installed
    if _installed:
        return
    _installed = True
    secrets = _secret_values(os.environ)
    make_record = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the handler's to report
            return record
        record.msg, record.args = mask(message, secrets), None
        return record

    logging.setLogRecordFactory(masked_record)
