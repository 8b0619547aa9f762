"""One exception tree for v6ray.

Every class survives pickling (Ray ships exceptions between processes): each keeps its
constructor arguments in ``args`` so ``pickle`` can rebuild it.
"""

from __future__ import annotations

import errno


class V6RayError(Exception):
    """Base of every error v6ray raises on purpose."""


class InvalidField(V6RayError, ValueError):
    """Bad input; ``field`` names the culprit, ``reason`` says what is wrong with it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid {self.field}: {self.reason}"


class InvalidRequest(InvalidField):
    """A submitted request is malformed; ``field`` names the culprit. Nothing was queued."""


class UnknownTable(V6RayError, ValueError):
    """A table name that is not one of v6ray's registered tables."""

    def __init__(self, name: str, known: tuple[str, ...] = ()) -> None:
        super().__init__(name, tuple(known))
        self.name = name
        self.known = tuple(known)

    def __str__(self) -> str:
        known = f"; known tables: {', '.join(sorted(self.known))}" if self.known else ""
        return f"unknown table {self.name!r}{known}"


class NotRunning(V6RayError, RuntimeError):
    """The v6ray service (its Ray actors) is not reachable."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        hint = "start it with `v6ray up --simulate` (or `v6ray up` for a real IB Gateway)"
        return f"v6ray is not running{': ' + self.detail if self.detail else ''}; {hint}"


class RequestTimeout(V6RayError, TimeoutError):
    """``wait`` gave up before the request reached a final status."""

    def __init__(self, request_id: str, timeout: float) -> None:
        super().__init__(request_id, timeout)
        self.request_id = request_id
        self.timeout = timeout

    def __str__(self) -> str:
        return f"request {self.request_id} not finished after {self.timeout:g} s"


class UnknownRequest(V6RayError, KeyError):
    """No request with this id exists in the queue."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id

    def __str__(self) -> str:
        return f"no request with id {self.request_id!r}"


class IBRequestError(V6RayError):
    """IB answered a request with an error; IB's code and message are kept structured."""

    def __init__(self, code: int, message: str, *, retryable: bool) -> None:
        super().__init__(code, message, retryable)
        self.code = code
        self.message = message
        self.retryable = retryable

    def __reduce__(self):  # ``retryable`` is keyword-only: plain args would not rebuild it
        return (_rebuild_ib_request_error, (self.code, self.message, self.retryable))

    def __str__(self) -> str:
        return f"IB error {self.code}: {self.message}"


def _rebuild_ib_request_error(code: int, message: str, retryable: bool) -> IBRequestError:
    return IBRequestError(code, message, retryable=retryable)


class GatewayUnavailable(V6RayError, ConnectionError):
    """The IB connection is down or the circuit breaker is open; retry later."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return f"IB gateway unavailable: {self.detail}"


class StorageConfigError(InvalidField):
    """The data root or its storage options are malformed; ``field`` names the setting."""


class StorageError(V6RayError):
    """A Delta table could not be written after retries."""

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(table, detail)
        self.table = table
        self.detail = detail

    def __str__(self) -> str:
        return f"writing table {self.table!r} failed: {self.detail}"


class NoTables(V6RayError, FileNotFoundError):
    """A data dir holds none of v6ray's tables (a typo, or not the service's data dir)."""

    def __init__(
        self, data_dir: str, looked_in: tuple[str, ...], tables: tuple[str, ...] = ()
    ) -> None:
        # errno, strerror, filename: what any FileNotFoundError handler expects to find.
        super().__init__(errno.ENOENT, "no v6ray tables", data_dir)
        self.data_dir = data_dir
        self.looked_in = tuple(looked_in)
        self.tables = tuple(tables)

    def __reduce__(self):  # OSError's own reduce would rebuild it from (errno, strerror)
        return (type(self), (self.data_dir, self.looked_in, self.tables))

    def __str__(self) -> str:
        tables = f" ({', '.join(self.tables)})" if self.tables else ""
        return (
            f"no v6ray tables in {self.data_dir}: looked for Delta tables"
            f"{tables} in {' and '.join(self.looked_in)}; give the data dir "
            "the service writes to (`v6ray up --data-dir`, V6RAY_DATA_DIR)"
        )


class TableLocked(StorageError):
    """Another process writes this table (it holds the table's writer lock)."""

    def __init__(self, path: str, holder: str, waited: float) -> None:
        V6RayError.__init__(self, path, holder, waited)
        self.table = path
        self.path = path
        self.holder = holder
        self.waited = waited
        self.detail = f"held by {holder}"

    def __str__(self) -> str:
        return (
            f"table {self.path!r} is being written by {self.holder} (waited "
            f"{self.waited:.1f} s for its writer lock); only one queue may use a data dir: "
            f"stop the other one, or wait for it to exit"
        )


class SchemaMismatch(StorageError):
    """Rows to append do not fit the table's schema; nothing was committed."""


class IncompleteRequestType(V6RayError, ImportError):
    """A request type's spec is missing a part (raised when v6ray is imported)."""

    def __init__(self, request_type: str, detail: str) -> None:
        super().__init__(request_type, detail)
        self.request_type = request_type
        self.detail = detail

    def __str__(self) -> str:
        return f"request type {self.request_type!r} is incomplete: {self.detail}"


class SettingsError(V6RayError, ValueError):
    """A setting from the environment or a flag is malformed; the message names it."""


class LogSettingsError(SettingsError):
    """A log level or format that is not one of the known ones; the message names it."""


class JobConfigError(V6RayError, ValueError):
    """A scheduler job is misconfigured; ``job`` and ``field`` name the culprit."""

    def __init__(self, job: str, field: str, reason: str) -> None:
        super().__init__(job, field, reason)
        self.job = job
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"scheduler job {self.job!r}: {self.field}: {self.reason}"


class SplitDataRoot(V6RayError):
    """A local-folder data root on a cluster of several nodes: each would write its own copy."""


class ClusterStartFailed(V6RayError, RuntimeError):
    """``ray start`` exited or never became reachable; the message holds its last log line."""


class UsageError(V6RayError):
    """Bad command-line input that argparse cannot see (``--param`` syntax, ...)."""


class CommandFailed(V6RayError):
    """The command ran but did not succeed; the message is the one line the user sees.

    ``exit_code`` None means the CLI's usual failure code (``cli.EXIT_ERROR``)."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message, exit_code)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
