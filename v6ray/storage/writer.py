"""Writer tasks: Arrow tables → Delta tables, idempotent under retries, crashes and races.

Every write is a Delta MERGE on the table's ``key_columns`` (DESIGN.md's uniqueness rule):
a key already present is updated, a new key inserted. So a re-executed request, an
overlapping bar load or a retried commit can never leave two copies of a row. A table an
older v6ray wrote is migrated to the current schema and layout on its first write
(``migrations``).

A MERGE reads the target files its source's keys could be in, and only those: the batch
carries its partition columns (``layout``; a function of the key, so matching them loses
no match), and the MERGE runs with ``streamed_exec=False``, which lets delta-rs derive an
early pruning predicate from the source (partition values, min/max of the other key
columns) and skip every other file by its partition and statistics. With streamed
execution that predicate is off (deltalake 1.6, ``DeltaTable.merge`` docstring:
"Enabling streamed_exec implicitly disables source table stats to derive an
early_pruning_predicate"); a flush is small, so holding it in memory costs nothing.

delta-rs retries blind appends by itself but hands merge conflicts back to the caller as
``CommitFailedError``; ``merge_rows`` retries them with jittered backoff, re-reading the
table each time, so concurrent writers to one table never lose a commit.

A request retried after an attempt that may have committed its rows replaces them: a
snapshot taken again can hold other contracts (an option chain's strikes follow the
underlying), and the table must show the request's last snapshot, not the union of two.
That commit's MERGE also deletes the request's target rows its source does not have
(``when_not_matched_by_source_delete``). delta-rs derives no pruning predicate for a MERGE
with a not-matched-by-source clause, so that MERGE reads the whole table: it is used only
for batches holding such a retry, which are rare.

``write_rows`` is the ``@ray.remote`` task the gateway fans out (stateless, many at once);
``merge_rows`` is the same function callable in-process (tests, maintenance scripts).
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Collection
from typing import Any

import pyarrow as pa
import ray
from deltalake import DeltaTable
from deltalake.exceptions import (
    CommitFailedError,
    DeltaError,
    SchemaMismatchError,
    TableNotFoundError,
)

from v6ray.backoff import backoff_delay
from v6ray.errors import StorageError
from v6ray.observability.hooks import writer_committed
from v6ray.service.process_priority import run_at_normal_priority
from v6ray.storage import location, migrations
from v6ray.storage.layout import with_partition_columns
from v6ray.storage.object_store_append import TABLE_CONFIGURATION
from v6ray.storage.schemas import conform, table_path, table_spec

MAX_COMMIT_ATTEMPTS = 12
RETRY_BASE_SECONDS = 0.05
RETRY_CAP_SECONDS = 2.0
_SOURCE, _TARGET = "s", "t"


def dedupe_last(rows: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """One row per key, the last one of the batch winning (a MERGE source must be unique)."""
    if rows.num_rows <= 1:
        return rows
    marker = "__v6ray_row"
    indexed = rows.append_column(marker, pa.array(range(rows.num_rows), type=pa.int64()))
    latest = indexed.group_by(list(keys), use_threads=False).aggregate([(marker, "max")])
    keep = pa.compute.sort_indices(latest.column(f"{marker}_max"))
    return rows.take(latest.column(f"{marker}_max").take(keep))


def merge_predicate(keys: tuple[str, ...] | list[str]) -> str:
    return " AND ".join(f"{_TARGET}.`{k}` = {_SOURCE}.`{k}`" for k in keys)


def _open_or_create(data_dir: str, table: str) -> DeltaTable:
    """Open the table (migrating one an older v6ray wrote), creating it empty if needed.

    Two writers may race to create it: ``mode="ignore"`` plus re-opening makes the loser
    simply use the winner's table (its commit of version 0 fails; the table is there).
    Two racing migrations: the loser's commit fails and its retry finds the new schema.
    """
    path = table_path(data_dir, table)
    # Read from this process's environment: a writer task on any node uses its own
    # credentials; none travel with the task.
    options = location.storage_options_for(path)
    try:
        delta = DeltaTable(path, storage_options=options)
    except TableNotFoundError:
        pass
    else:
        if migrations.needs_migration(
            table, migrations.stored_columns(delta)
        ) or migrations.needs_relayout(table, delta):
            delta = migrations.migrate(data_dir, table, delta)
        return delta
    if not location.is_uri(path):
        os.makedirs(path, exist_ok=True)
    spec = table_spec(table)
    # Someone else may create it between our check and our commit: that is fine (on S3
    # the conditional put of version 0 refuses the second creator).
    with contextlib.suppress(CommitFailedError, DeltaError):
        # A checkpoint every few commits: every MERGE attempt opens the table, which replays
        # the log since the last checkpoint (a GET per commit on S3); Delta's default of 100
        # made a MERGE's cost grow with each of the writers' small commits between them.
        DeltaTable.create(
            path, spec.stored_schema, mode="ignore", partition_by=spec.partition_by or None,
            storage_options=options, configuration=TABLE_CONFIGURATION,
        )
    return DeltaTable(path, storage_options=options)


def merge_rows(
    data_dir: str,
    table: str,
    rows: pa.Table,
    *,
    max_attempts: int = MAX_COMMIT_ATTEMPTS,
    rng: random.Random | None = None,
    replace_requests: Collection[str] = (),
) -> dict[str, Any]:
    """Merge ``rows`` into ``table`` under ``data_dir`` (a folder or an object-store URI);
    returns {table, rows, delta_version, conflicts}.

    ``rows`` is the number of distinct keys written; ``conflicts`` the commits retried
    because another writer (on this node or any other) committed first. Raises
    ``StorageError`` after ``max_attempts`` conflicting commits or on a schema mismatch.
    ``replace_requests``: request ids whose rows in the table this commit replaces (rows of
    theirs the batch does not carry are deleted); only for a table keyed by request_id.
    """
    spec = table_spec(table)
    replaced = _replacement_predicate(table, replace_requests)
    batch = dedupe_last(conform(rows, spec.schema), spec.key_columns)
    batch = with_partition_columns(batch, spec.partitions)
    # Partition columns first: delta-rs turns their source values into a partition filter.
    on = [*spec.partition_by, *spec.key_columns]
    last_error: Exception | None = None
    started = time.monotonic()
    for attempt in range(1, max_attempts + 1):
        try:
            delta = _open_or_create(data_dir, table)
            if batch.num_rows:
                merge = (
                    delta.merge(
                        batch,
                        merge_predicate(on),
                        source_alias=_SOURCE,
                        target_alias=_TARGET,
                        streamed_exec=False,  # see the module docstring: file pruning
                    )
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                )
                if replaced:
                    merge = merge.when_not_matched_by_source_delete(replaced)
                merge.execute()
            writer_committed(table, batch.num_rows, time.monotonic() - started, attempt - 1)
            return {
                "table": table,
                "rows": batch.num_rows,
                "delta_version": delta.version(),
                "conflicts": attempt - 1,  # commits lost to a concurrent writer, then retried
            }
        except SchemaMismatchError as exc:
            raise StorageError(table, f"schema mismatch: {exc}") from None
        except (CommitFailedError, DeltaError, TableNotFoundError, OSError) as exc:
            # Conflicting concurrent commit (or a creation race): re-read and try again.
            last_error = exc
            pause = backoff_delay(attempt, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS, rng=rng)
            time.sleep(pause)
    raise StorageError(table, f"{max_attempts} commit attempts failed; last: {last_error}")


def _replacement_predicate(table: str, request_ids: Collection[str]) -> str | None:
    """The target rows a replacing commit may delete: those of ``request_ids``."""
    if not request_ids:
        return None
    if not table_spec(table).rows_belong_to_request:
        raise StorageError(table, "replace_requests: this table's rows are not keyed by request")
    # Request ids are v6ray's own (uuid4 text or a caller's id checked at submit), but quote
    # them as SQL literals anyway: a quote in an id must not end the string.
    quoted = ", ".join("'" + rid.replace("'", "''") + "'" for rid in sorted(set(request_ids)))
    return f"{_TARGET}.`request_id` IN ({quoted})"


# Writers are I/O bound; a quarter CPU lets several run beside the actors on a small node.
def _merge_rows_task(data_dir: str, table: str, rows: pa.Table, **options: Any) -> dict[str, Any]:
    # A request is final only once its rows are committed: a writer left at Ray's lowered
    # CPU priority would hold the whole pipeline back on a busy machine.
    run_at_normal_priority("writer task")
    return merge_rows(data_dir, table, rows, **options)


# SPREAD: under load the writer tasks go to every node with CPU, not only the gateway's
# node (Ray's default packs tasks onto the caller's node while it has room). A writer may
# run anywhere because every node reaches the same data root (``placement`` refuses a
# local-path data root on a multi-node cluster). Retried on a lost node as on a
# StorageError: the MERGE is idempotent, so a task redone elsewhere adds no duplicate.
write_rows = ray.remote(
    num_cpus=0.25,
    max_retries=3,
    retry_exceptions=[StorageError],
    scheduling_strategy="SPREAD",
)(_merge_rows_task)
