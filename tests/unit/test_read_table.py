"""read_table finds the tables of a data dir (or of its simulated/ folder) and never reads
"no data" from a folder that holds no v6ray tables at all."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

import v6ray
from v6ray.gateway.parsing import to_table
from v6ray.queue.journal import Journal
from v6ray.requests.instruments import bar_series
from v6ray.storage.schemas import TABLES
from v6ray.storage.writer import merge_rows

T0 = datetime(2025, 3, 6, 21, 0, tzinfo=UTC)


def one_bar(request_id: str = "r") -> object:
    return to_table("market_bars", [dict(
        request_id=request_id, symbol="SPY", bar_size="1 day", what_to_show="TRADES",
        **bar_series("SPY", {}), timestamp=T0, open=1.0, high=1.0, low=1.0, close=1.0)])


@pytest.mark.parametrize("where", ["empty", "typo"])
def test_a_dir_without_v6ray_tables_raises_naming_what_it_looked_for(tmp_path, where):
    root = tmp_path / "data"
    root.mkdir()
    target = str(root if where == "empty" else tmp_path / "dat")
    with pytest.raises(v6ray.NoTables) as caught:
        v6ray.read_table("market_bars", data_dir=target)
    text = str(caught.value)
    assert target in text and os.path.join(target, "simulated") in text
    assert all(name in text for name in TABLES)
    assert isinstance(caught.value, FileNotFoundError)


def test_the_root_of_a_simulated_data_dir_reads_its_simulated_tables(tmp_path):
    root = tmp_path / "v6ray-data"
    merge_rows(str(root / "simulated"), "market_bars", one_bar())
    bars = v6ray.read_table("market_bars", data_dir=str(root))
    assert bars.height == 1 and bars["symbol"].to_list() == ["SPY"]
    # A table the simulated service has not written yet reads empty, with its columns.
    positions = v6ray.read_table("positions", data_dir=str(root))
    assert positions.height == 0 and positions.columns == TABLES["positions"].schema.names


def test_tables_at_the_root_win_over_a_simulated_folder(tmp_path):
    root = tmp_path / "v6ray-data"
    merge_rows(str(root), "market_bars", one_bar("real"))
    merge_rows(str(root / "simulated"), "market_bars", one_bar("simulated"))
    assert v6ray.read_table("market_bars", data_dir=str(root))["request_id"].to_list() == [
        "real"]


def test_a_service_dir_reads_a_table_not_written_yet_as_empty(data_dir):
    Journal(data_dir)  # the queue creates ib_requests when the service starts
    bars = v6ray.read_table("market_bars", data_dir=data_dir)
    assert bars.height == 0 and bars.columns == TABLES["market_bars"].schema.names
