"""Compaction beside live writers: a commit lost to a concurrent MERGE is redone, not raised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from v6ray.gateway.parsing import to_table
from v6ray.storage import maintenance
from v6ray.storage.maintenance import compact_table
from v6ray.storage.writer import merge_rows

T0 = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
CONFLICT = "Commit failed: a concurrent transaction deleted data this operation read."


def write_bars(data_dir: str, flushes: int) -> None:
    for flush in range(flushes):
        merge_rows(
            data_dir,
            "market_bars",
            to_table(
                "market_bars",
                [
                    dict(
                        request_id=f"r{flush}",
                        symbol="SPY",
                        bar_size="1 min",
                        what_to_show="TRADES",
                        timestamp=T0 + timedelta(minutes=10 * flush + i),
                        open=1.0,
                        high=2.0,
                        low=0.5,
                        close=1.5,
                        volume=10.0,
                    )
                    for i in range(10)
                ],
            ),
        )


def losing_the_first_commits(losses: int) -> type[DeltaTable]:
    """A DeltaTable whose compaction commit loses ``losses`` times to a concurrent MERGE,
    as delta-rs reports it when a writer rewrote a file the compaction read."""

    class Contended(DeltaTable):
        left = losses

        @property
        def optimize(self):
            real = super().optimize

            class Optimizer:
                def compact(self_, **kwargs):
                    if Contended.left:
                        Contended.left -= 1
                        raise CommitFailedError(CONFLICT)
                    return real.compact(**kwargs)

            return Optimizer()

    return Contended


def test_a_compaction_that_loses_its_commit_to_a_writer_is_redone(tmp_path, monkeypatch):
    write_bars(str(tmp_path), 4)
    monkeypatch.setattr(maintenance, "COMPACT_RETRY_BASE_SECONDS", 0.001)
    monkeypatch.setattr(maintenance, "DeltaTable", losing_the_first_commits(2))
    result = compact_table(str(tmp_path), "market_bars")
    assert (result["files_before"], result["files_after"]) == (4, 1)
    assert DeltaTable(str(tmp_path / "market_bars")).to_pyarrow_table().num_rows == 40


def test_a_compaction_that_always_loses_raises_after_its_attempts(tmp_path, monkeypatch):
    write_bars(str(tmp_path), 2)
    monkeypatch.setattr(maintenance, "COMPACT_RETRY_BASE_SECONDS", 0.001)
    monkeypatch.setattr(
        maintenance, "DeltaTable", losing_the_first_commits(maintenance.COMPACT_ATTEMPTS)
    )
    with pytest.raises(CommitFailedError):
        compact_table(str(tmp_path), "market_bars")
