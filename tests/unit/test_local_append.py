"""Hand-written Delta appends (the queue journal's commit path) read back by deltalake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from v6ray.errors import SchemaMismatch
from v6ray.storage.local_append import (
    CommitConflict,
    LocalAppender,
    latest_version,
    remove_stale_files,
)

SCHEMA = pa.schema([("key", pa.string()), ("seq", pa.int64()), ("note", pa.string())])


def rows(first: int, count: int, note: str | None = "x") -> pa.Table:
    seqs = list(range(first, first + count))
    return pa.table({"key": [f"k{s:04d}" for s in seqs], "seq": seqs,
                     "note": [note] * count}, schema=SCHEMA)


@pytest.fixture
def table_dir(tmp_path) -> str:
    path = str(tmp_path / "t")
    DeltaTable.create(path, schema=SCHEMA)
    return path


def test_appends_are_ordinary_delta_commits(table_dir):
    appender = LocalAppender(table_dir, stats_columns=("key", "seq"))
    assert appender.version == 0
    assert appender.append(rows(1, 3)) == 1
    assert appender.append(rows(4, 2, note=None)) == 2
    table = DeltaTable(table_dir)
    assert table.version() == 2
    data = table.to_pyarrow_table().sort_by("seq")
    assert data.column("seq").to_pylist() == [1, 2, 3, 4, 5]
    assert data.column("note").to_pylist() == ["x", "x", "x", None, None]
    assert [h["operation"] for h in table.history()][:2] == ["WRITE", "WRITE"]
    # Stats let readers skip files: a filter on seq reads only the matching file's rows.
    assert table.to_pyarrow_table(filters=[("seq", "=", 5)]).column("seq").to_pylist() == [5]
    with open(os.path.join(table_dir, "_delta_log", f"{2:020d}.json")) as f:
        add = [json.loads(line)["add"] for line in f if '"add"' in line][0]
    assert json.loads(add["stats"]) == {"numRecords": 2, "minValues": {"key": "k0004", "seq": 4},
                                        "maxValues": {"key": "k0005", "seq": 5}}
    assert add["size"] == os.path.getsize(os.path.join(table_dir, add["path"]))


def test_a_commit_by_another_writer_is_never_overwritten(table_dir):
    appender = LocalAppender(table_dir)
    appender.append(rows(1, 1))
    write_deltalake(table_dir, rows(100, 2), mode="append")  # takes version 2 first
    assert appender.append(rows(2, 1)) == 3  # put-if-absent lost the race, went on to 3
    seqs = sorted(DeltaTable(table_dir).to_pyarrow_table().column("seq").to_pylist())
    assert seqs == [1, 2, 100, 101]
    assert not [n for n in os.listdir(os.path.join(table_dir, "_delta_log")) if ".tmp" in n]


def test_a_crash_before_the_log_entry_leaves_the_table_unchanged(table_dir, monkeypatch):
    appender = LocalAppender(table_dir)
    appender.append(rows(1, 2))

    def crash(*_args):
        raise OSError("killed between the data file and its entry")

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(OSError, match="killed"):
        appender.append(rows(3, 2))
    monkeypatch.undo()
    table = DeltaTable(table_dir)
    assert table.version() == 1
    assert table.to_pyarrow_table().num_rows == 2
    orphans = table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True,
                           full=True)
    assert len(orphans) == 1  # the unreferenced data file, which a full vacuum deletes
    assert appender.append(rows(3, 2)) == 2


def test_version_is_found_after_a_checkpoint_and_log_cleanup(table_dir):
    table = DeltaTable(table_dir)
    for first in range(1, 4):
        write_deltalake(table, rows(first, 1), mode="append")
    table.create_checkpoint()
    for name in os.listdir(os.path.join(table_dir, "_delta_log")):
        if name.endswith(".json"):  # as a cleanup with no log retention leaves it
            os.remove(os.path.join(table_dir, "_delta_log", name))
    assert latest_version(os.path.join(table_dir, "_delta_log")) == 3
    assert LocalAppender(table_dir).append(rows(10, 1)) == 4
    assert DeltaTable(table_dir).to_pyarrow_table().num_rows == 4


def data_files(table_dir: str) -> set[str]:
    return {n for n in os.listdir(table_dir) if n.endswith(".parquet")}


def test_rows_that_do_not_fit_the_schema_are_refused_before_anything_is_written(table_dir):
    appender = LocalAppender(table_dir)
    appender.append(rows(1, 1))
    files = data_files(table_dir)
    wrong_type = rows(2, 1).set_column(1, "seq", pa.array(["2"]))
    missing = rows(2, 1).drop_columns(["note"])
    extra = rows(2, 1).append_column("colour", pa.array(["red"]))
    narrow = pa.table({"key": ["k"], "seq": [2], "note": ["x"]}).cast(
        pa.schema([("key", pa.string()), ("seq", pa.int32()), ("note", pa.string())]))
    for bad, why in [(wrong_type, "'seq' is string, the table has long"),
                     (missing, "'note' is missing"), (extra, "'colour' is not in the table"),
                     (narrow, "'seq' is integer, the table has long")]:
        with pytest.raises(SchemaMismatch, match=why):
            appender.append(bad)
    assert data_files(table_dir) == files  # nothing written
    assert DeltaTable(table_dir).version() == 1
    # Arrow's large_string is Delta's string too: fits.
    assert appender.append(rows(2, 1).cast(pa.schema(
        [("key", pa.large_string()), ("seq", pa.int64()), ("note", pa.string())]))) == 2


ADD_COLUMN = """
import sys
from deltalake import DeltaTable, Field
DeltaTable(sys.argv[1]).alter.add_columns([Field("colour", "string", nullable=True)])
"""


def test_a_schema_change_by_another_process_refuses_the_blind_commit(table_dir):
    appender = LocalAppender(table_dir)
    appender.append(rows(1, 1))
    subprocess.run([sys.executable, "-c", ADD_COLUMN, table_dir], check=True, timeout=120)
    files = data_files(table_dir)
    with pytest.raises(CommitConflict, match="changed the table's metadata"):
        appender.append(rows(2, 1))  # lost the race for version 2 to the schema change
    assert data_files(table_dir) == files  # its data file is gone again
    with pytest.raises(SchemaMismatch, match="'colour' is missing"):
        appender.append(rows(2, 1))  # checked against the new schema now
    assert DeltaTable(table_dir).version() == 2
    assert DeltaTable(table_dir).to_pyarrow_table().num_rows == 1


def test_stale_leftovers_of_crashed_writers_are_removed_young_ones_kept(table_dir):
    appender = LocalAppender(table_dir)
    appender.append(rows(1, 1))
    log_dir = os.path.join(table_dir, "_delta_log")
    leftovers = {
        "part-00000-old-c000.snappy.parquet": 7200,
        "part-00000-young-c000.snappy.parquet": 60,
        os.path.join("_delta_log", ".v6ray-0123abcd.json.tmp"): 7200,
        os.path.join("_delta_log", ".v6ray-4567abcd.json.tmp"): 60,
        os.path.join("_delta_log", "_commit_0b1c2d3e-aaaa-bbbb-cccc-000000000000.json.tmp"): 7200,
    }
    for name, age in leftovers.items():
        full = os.path.join(table_dir, name)
        with open(full, "wb") as sink:
            sink.write(b"{}")
        os.utime(full, (time.time() - age, time.time() - age))
    old_committed = os.path.join(table_dir, sorted(data_files(table_dir))[0])
    os.utime(old_committed, (time.time() - 7200, time.time() - 7200))  # named by a commit
    removed = remove_stale_files(table_dir, DeltaTable(table_dir), min_age_seconds=3600)
    assert sorted(removed) == sorted(n for n, age in leftovers.items() if age > 3600)
    assert os.path.exists(old_committed)
    assert "part-00000-young-c000.snappy.parquet" in os.listdir(table_dir)
    assert os.listdir(log_dir).count(".v6ray-4567abcd.json.tmp") == 1
    assert DeltaTable(table_dir).to_pyarrow_table().num_rows == 1
