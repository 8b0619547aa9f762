"""Hand-written Delta appends (the queue journal's commit path) read back by deltalake."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from v6ray.storage.local_append import LocalAppender, latest_version

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
