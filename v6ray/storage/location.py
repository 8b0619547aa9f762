"""Where v6ray's tables live: a local folder or an object-store URI (``DataRoot``).

``--data-dir`` / ``V6RAY_DATA_DIR`` is a local path, ``file://…``, or a URI of an object
store deltalake opens by itself (``s3://bucket/prefix``, ``gs://``, ``az://``, ...). The
URI names a place and nothing more: credentials never ride in it (a URI with a password
or a query string is refused), so the root can be shown, logged, passed to Ray
tasks and written to the state record as it is.

Credentials and other storage options come from the environment of the process that opens
a table, at the moment it opens it (``storage_options``): the standard variables of the
store (``AWS_*`` for S3: ``AWS_ENDPOINT_URL``, ``AWS_REGION``, keys or, when absent, the
instance profile deltalake finds by itself, ``AWS_ALLOW_HTTP`` for a local endpoint),
then the optional ``V6RAY_STORAGE_OPTIONS`` JSON object. They are never passed between
processes: every Ray worker reads its own environment, so no secret lands in task
arguments, a runtime_env, a table or a log line. ``redact_options`` is the only form of
them fit to show.

Concurrent commits on S3: a Delta commit is "create ``_delta_log/<version>.json`` unless
it exists". deltalake's S3 store does that atomically only with a conditional put; for
S3-compatible stores delta-rs documents ``aws_conditional_put: "etag"`` as what "provides
safe concurrency" (delta-rs docs, integrations/object-storage/s3-like), and delta-rs 1.x
dropped the DynamoDB lock in favour of conditional writes (delta-io/delta-rs discussion
4482). object_store leaves it off by default (apache/arrow-rs PR 6682), so v6ray turns it
on for every S3 root unless the user chose a mode; tests/integration/test_s3_storage.py
proves it with concurrent writers against a real S3 server.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from v6ray.errors import StorageConfigError

DATA_DIR_FIELD = "data dir (--data-dir / V6RAY_DATA_DIR)"
STORAGE_OPTIONS_VAR = "V6RAY_STORAGE_OPTIONS"
STATE_DIR_VAR = "V6RAY_STATE_DIR"
STATE_SUBDIR = "_v6ray"  # the local state folder inside a local data root

# The URI schemes the installed deltalake (1.x) opens as object stores, and the prefix of
# the environment variables its store reads. ``memory://`` is left out on purpose: each
# process would see its own empty store.
_ENV_PREFIX_BY_SCHEME: dict[str, str] = {
    "s3": "AWS_",
    "s3a": "AWS_",
    "gs": "GOOGLE_",
    "az": "AZURE_",
    "abfs": "AZURE_",
    "abfss": "AZURE_",
    "adl": "AZURE_",
    "azure": "AZURE_",
    "wasb": "AZURE_",
    "wasbs": "AZURE_",
    "hdfs": "",
    "viewfs": "",
    "lakefs": "",
}
OBJECT_STORE_SCHEMES = frozenset(_ENV_PREFIX_BY_SCHEME)

# Safe concurrent commits on S3 (see the module doc); keys compared case-insensitively.
_S3_SCHEMES = frozenset({"s3", "s3a"})
_CONDITIONAL_PUT_KEYS = frozenset({"conditional_put", "aws_conditional_put"})
_S3_DEFAULTS = {"conditional_put": "etag"}

_SCHEME_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Option names whose values are secrets (or close enough to one that showing them helps
# nobody): masked by ``redact_options``.
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|KEY|SAS|CREDENTIAL|SIGNATURE", re.IGNORECASE)
REDACTED = "***"


@dataclass(frozen=True)
class DataRoot:
    """A data root: an absolute local path, or a normalised object-store URI."""

    uri: str  # "/abs/path" for a local root; "scheme://authority/prefix" otherwise
    scheme: str  # "" for a local root

    @classmethod
    def parse(cls, text: str | os.PathLike[str], *, field: str = DATA_DIR_FIELD) -> DataRoot:
        """Parse a local path, ``file://`` URI or object-store URI; bad input raises
        ``StorageConfigError`` naming ``field``."""
        raw = os.fspath(text).strip()
        if not raw:
            raise StorageConfigError(field, "must not be empty")
        if "://" not in raw:
            match = _SCHEME_PREFIX.match(raw)
            if match and match.group(1).lower() in OBJECT_STORE_SCHEMES | {"file"}:
                raise StorageConfigError(
                    field, f"{raw!r} looks like a URI without '//' (write {match.group(1)}://…)"
                )
            return cls(os.path.abspath(os.path.expanduser(raw)), "")
        parts = urlsplit(raw)
        scheme = parts.scheme.lower()
        if scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path:
                raise StorageConfigError(
                    field, f"{raw!r}: a file URI is file:///absolute/path (no host)"
                )
            return cls(os.path.abspath(parts.path), "")
        if scheme not in OBJECT_STORE_SCHEMES:
            known = ", ".join(f"{s}://" for s in sorted(OBJECT_STORE_SCHEMES))
            raise StorageConfigError(
                field,
                f"{raw!r}: unsupported scheme {scheme!r}; use a local path, "
                f"file://, or one of {known}",
            )
        if not parts.netloc:
            raise StorageConfigError(field, f"{raw!r}: the bucket (or container) is missing")
        # A user part alone is fine (abfss://container@account...); a password is not.
        if parts.password is not None or parts.query or parts.fragment:
            # Whatever is there would be shown, logged and recorded with the root.
            raise StorageConfigError(
                field,
                f"{_strip_secrets(parts)}: credentials and query strings do not "
                f"belong in the URI; set them in the environment (AWS_*, {STORAGE_OPTIONS_VAR})",
            )
        prefix = parts.path.rstrip("/")
        return cls(f"{scheme}://{parts.netloc}{prefix}", scheme)

    @property
    def is_local(self) -> bool:
        return not self.scheme

    def join(self, *names: str) -> str:
        """The location of ``names`` (a table, a subfolder) under this root."""
        if self.is_local:
            return os.path.join(self.uri, *names)
        return "/".join((self.uri, *names))

    def child(self, name: str) -> DataRoot:
        """The root ``name`` below this one (``<root>/simulated``)."""
        return DataRoot(self.join(name), self.scheme)

    def storage_options(
        self, env: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """deltalake's ``storage_options`` for this root, read from ``env`` (this process's
        environment by default) now; ``overrides`` win over everything. Empty when local.

        Holds secrets: pass it to deltalake only, never to a log, a Ray call or a file.
        """
        if self.is_local:
            return dict(overrides or {})
        env = os.environ if env is None else env
        prefix = _ENV_PREFIX_BY_SCHEME[self.scheme]
        options: dict[str, str] = {}
        if prefix:
            options.update({k: v for k, v in env.items() if k.startswith(prefix) and v})
        options.update(parse_storage_options(env.get(STORAGE_OPTIONS_VAR)))
        options.update(overrides or {})
        if self.scheme in _S3_SCHEMES and not _CONDITIONAL_PUT_KEYS & _lower_keys(options):
            options.update(_S3_DEFAULTS)
        return options

    def redacted(self) -> str:
        """The root as it may be shown anywhere (it never holds secrets; see ``parse``)."""
        return self.uri

    def __str__(self) -> str:
        return self.redacted()


def normalize(location: str | os.PathLike[str]) -> str:
    """``location`` as every process should see it: an absolute path, or the clean URI
    (``os.path.abspath`` would turn ``s3://b/p`` into a local folder named ``s3:``)."""
    return DataRoot.parse(location).uri


def local_state_dir(root: str | os.PathLike[str]) -> str:
    """A folder on this machine for what v6ray keeps beside the tables (the service state
    record, the Ray head's temp dir, the scheduler's run times): ``<root>/_v6ray`` for a
    local root; for an object-store root, ``$V6RAY_STATE_DIR`` (default ``~/.v6ray/state``)
    ``/<root as a file name>``, since pids and temp dirs belong to this machine. None of
    it holds a secret."""
    parsed = DataRoot.parse(root)
    if parsed.is_local:
        return os.path.join(parsed.uri, STATE_SUBDIR)
    base = os.environ.get(STATE_DIR_VAR) or os.path.join(os.path.expanduser("~"), ".v6ray", "state")
    digest = hashlib.sha256(parsed.uri.encode()).hexdigest()[:10]
    return os.path.join(base, f"{re.sub(r'[^A-Za-z0-9._-]+', '_', parsed.uri)[:80]}-{digest}")


def is_uri(location: str | os.PathLike[str]) -> bool:
    """True for an object-store location (``file://`` is a local path)."""
    return not DataRoot.parse(location).is_local


def join(location: str | os.PathLike[str], *names: str) -> str:
    """``names`` under ``location``; a local path is joined as it is (not made absolute)."""
    text = os.fspath(location)
    if "://" not in text:
        return os.path.join(text, *names)
    return DataRoot.parse(text).join(*names)


def storage_options_for(
    location: str | os.PathLike[str], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``storage_options`` for a root or anything under it (a table's location)."""
    return DataRoot.parse(location).storage_options(overrides=overrides)


def parse_storage_options(text: str | None) -> dict[str, str]:
    """``V6RAY_STORAGE_OPTIONS``: a JSON object of option → value ({} when unset)."""
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:  # the text itself may hold a secret: not quoted back
        raise StorageConfigError(
            STORAGE_OPTIONS_VAR, f"not valid JSON ({exc.msg} at char {exc.pos})"
        ) from None
    if not isinstance(value, dict):
        raise StorageConfigError(
            STORAGE_OPTIONS_VAR, f"must be a JSON object, got {type(value).__name__}"
        )
    options: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            options[key] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            options[key] = str(item)
        else:
            raise StorageConfigError(
                STORAGE_OPTIONS_VAR, f"option {key!r} must be a string, number or boolean"
            )
    return options


def redact_options(options: Mapping[str, str]) -> dict[str, str]:
    """``options`` fit to show: values of secret-looking names masked."""
    return {k: (REDACTED if _SECRET_NAME.search(k) else v) for k, v in options.items()}


def _lower_keys(options: Mapping[str, str]) -> set[str]:
    return {k.lower() for k in options}


def _strip_secrets(parts) -> str:
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}"
