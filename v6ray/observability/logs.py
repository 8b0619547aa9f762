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

import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from v6ray.errors import LogSettingsError

LEVEL_ENV = "V6RAY_LOG_LEVEL"
FORMAT_ENV = "V6RAY_LOG_FORMAT"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")


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


# --------------------------------------------------------------------------- line batches

# Ray's own text layout, so request lines read like every other line of the file.
TEXT_LAYOUT = "{asctime}\t{level} {filename}:{lineno} -- {message}\n"


def job_log_encoding() -> str | None:
    """"TEXT" or "JSON" when this Ray worker's job has a logging config, else None."""
    from v6ray.service.ray_private import job_logging_config

    config = job_logging_config()
    return getattr(config, "encoding", None) if config is not None else None


class LineBatch:
    """Many INFO lines of one logger written at once into the worker's log file.

    For the queue's request lines (three per request, hundreds per journal batch): a
    ``logging`` call per line cost the queue ~20-30 µs each (record, caller lookup, lock,
    Ray's context filter and formatter, a flush), which made it the busiest stage of the
    gateway's pipeline. Under Ray's job logging config the batch is formatted here, in the
    job's layout (Ray's text layout or JSON lines), masked, and written to the worker's
    stderr (Ray's log file of this worker) with one write. Without that config (a plain
    process, tests) each line goes through ``logger.info`` as usual.
    """

    def __init__(self, logger: logging.Logger, filename: str, lineno: int,
                 encoding: str | None = None) -> None:
        self.logger = logger
        self.filename, self.lineno = filename, lineno
        self.encoding = encoding or job_log_encoding()
        self._secrets = _secret_values(os.environ)

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, lines: list[tuple[str, dict[str, Any]]]) -> None:
        """(message, fields) pairs; fields go into JSON lines as keys of their own."""
        if not lines:
            return
        if self.encoding is None:
            for message, _ in lines:
                self.logger.info(message)
            return
        now = time.time()
        asctime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + (
            f",{int(now % 1 * 1000):03d}")
        if self.encoding == "JSON":
            base = {"asctime": asctime, "levelname": "INFO", "filename": self.filename,
                    "lineno": self.lineno, "logger": self.logger.name, "pid": os.getpid()}
            text = "".join(
                json.dumps({**base, "message": mask(message, self._secrets),
                            **{k: mask(str(v), self._secrets) for k, v in fields.items()}})
                + "\n" for message, fields in lines)
        else:
            text = "".join(
                TEXT_LAYOUT.format(asctime=asctime, level="INFO", filename=self.filename,
                                   lineno=self.lineno, message=mask(message, self._secrets))
                for message, _ in lines)
        stream = sys.stderr
        stream.write(text)
        stream.flush()


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
