"""market_bars written by an older v6ray (no series identity, the old 4-column key) is
migrated in place on its first write and read in the current schema before that."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from v6ray.gateway.parsing import to_table
from v6ray.queue.journal import Journal
from v6ray.requests.instruments import bar_series
from v6ray.requests.model import new_request
from v6ray.storage.reader import read_table
from v6ray.storage.schemas import TABLES, table_path
from v6ray.storage.writer import merge_rows

T0 = datetime(2025, 3, 6, 21, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
# market_bars as v6ray wrote it before rows carried their series (key: the first five
# names but request_id: symbol, bar_size, what_to_show, timestamp).
OLD_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("symbol", pa.string()), ("bar_size", pa.string()),
    ("what_to_show", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC")),
    ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()),
    ("close", pa.float64()), ("volume", pa.float64()), ("wap", pa.float64()),
    ("bar_count", pa.int64()),
])
IDENTITY = ("use_rth", "sec_type", "exchange", "contract_month")


def bar_request(symbol: str, **parameters):
    return new_request("market_bars", symbol, parameters={"bar_size": "1 day", **parameters})


def old_row(request_id: str, symbol: str, stamp: datetime, close: float) -> dict:
    return dict(request_id=request_id, symbol=symbol, bar_size="1 day", what_to_show="TRADES",
                timestamp=stamp, open=close, high=close, low=close, close=close, volume=1.0,
                wap=None, bar_count=None)


@pytest.fixture
def old_table(data_dir):
    """An old market_bars table whose rows were written by four requests: SPY regular
    hours (defaults), ES with use_rth=false, ES 202512, and one no longer in ib_requests."""
    spy, es_eth, es_dec = (bar_request("SPY"), bar_request("ES", use_rth=False),
                           bar_request("ES", contract_month="202512"))
    Journal(data_dir).append([spy, es_eth, es_dec])
    path = table_path(data_dir, "market_bars")
    DeltaTable.create(path, OLD_SCHEMA)
    rows = [old_row(spy.request_id, "SPY", T0, 500.0), old_row(es_eth.request_id, "ES", T0, 6000.0),
            old_row(es_dec.request_id, "ES", T1, 6100.0), old_row("gone", "QQQ", T0, 400.0)]
    write_deltalake(path, pa.Table.from_pylist(rows, schema=OLD_SCHEMA), mode="append")
    return {"SPY": spy.request_id, "eth": es_eth.request_id, "dec": es_dec.request_id,
            "dir": data_dir, "path": path}


def identity_by_request(rows: list[dict]) -> dict[str, tuple]:
    return {r["request_id"]: tuple(r[c] for c in IDENTITY) for r in rows}


def expected_identity(ids: dict) -> dict[str, tuple]:
    return {
        ids["SPY"]: (True, "STK", "SMART", ""),
        ids["eth"]: (False, "CONTFUT", "CME", ""),
        ids["dec"]: (True, "FUT", "CME", "202512"),
        "gone": (True, "STK", "SMART", ""),  # its request is gone: the defaults
    }


def new_bars(request_id: str, symbol: str, stamp: datetime, close: float, **parameters):
    series = {"symbol": symbol, "bar_size": "1 day", "what_to_show": "TRADES",
              **bar_series(symbol, parameters)}
    return to_table("market_bars", [dict(request_id=request_id, **series, timestamp=stamp,
                                         open=close, high=close, low=close, close=close)])


def test_read_table_shows_an_old_table_in_the_current_schema_without_writing(old_table):
    version = DeltaTable(old_table["path"]).version()
    frame = read_table("market_bars", data_dir=old_table["dir"])
    assert frame.columns == TABLES["market_bars"].schema.names
    assert identity_by_request(frame.to_dicts()) == expected_identity(old_table)
    assert DeltaTable(old_table["path"]).version() == version  # reading never writes


def test_first_write_migrates_in_place_keeping_every_row(old_table):
    data_dir = old_table["dir"]
    # SPY outside regular hours at T0: under the old key it would replace the RTH bar.
    merge_rows(data_dir, "market_bars", new_bars("spy-eth", "SPY", T0, 501.0, use_rth=False))
    delta = DeltaTable(old_table["path"])
    assert set(IDENTITY) | {"con_id", "local_symbol"} <= {f.name for f in delta.schema().fields}
    rows = delta.to_pyarrow_table().to_pylist()
    assert len(rows) == 5
    assert identity_by_request(rows) == {**expected_identity(old_table),
                                         "spy-eth": (False, "STK", "SMART", "")}
    old = {r["request_id"]: r for r in rows}
    assert old["gone"]["close"] == 400.0 and old[old_table["dec"]]["timestamp"] == T1
    assert all(r["con_id"] is None and r["local_symbol"] is None for r in rows)
    # Migrated once: the next write is a plain merge, and re-fetching a migrated bar of
    # the same series replaces it.
    version = delta.version()
    merge_rows(data_dir, "market_bars", new_bars("spy-again", "SPY", T0, 502.0))
    delta = DeltaTable(old_table["path"])
    assert delta.version() == version + 1
    rows = delta.to_pyarrow_table().to_pylist()
    assert len(rows) == 5
    assert {r["request_id"]: r["close"] for r in rows if r["symbol"] == "SPY"} == {
        "spy-again": 502.0, "spy-eth": 501.0}


def test_concurrent_first_writes_migrate_once_and_lose_nothing(old_table):
    def write(i: int) -> dict:
        return merge_rows(old_table["dir"], "market_bars",
                          new_bars(f"w{i}", "IWM", T0 + timedelta(days=i), 200.0 + i))

    with ThreadPoolExecutor(max_workers=4) as pool:  # a writer's error re-raises here
        assert [r["rows"] for r in pool.map(write, range(4))] == [1] * 4
    rows = DeltaTable(old_table["path"]).to_pyarrow_table().to_pylist()
    assert len(rows) == 4 + 4
    keys = [tuple(r[c] for c in TABLES["market_bars"].key_columns) for r in rows]
    assert len(set(keys)) == len(keys)
    assert identity_by_request([r for r in rows if r["symbol"] != "IWM"]) == \
        expected_identity(old_table)


def test_without_ib_requests_old_bars_get_the_default_series(data_dir):
    path = table_path(data_dir, "market_bars")
    DeltaTable.create(path, OLD_SCHEMA)
    write_deltalake(path, pa.Table.from_pylist([old_row("r", "ES", T0, 1.0)], schema=OLD_SCHEMA),
                    mode="append")
    merge_rows(data_dir, "market_bars", new_bars("n", "ES", T1, 2.0))
    rows = DeltaTable(path).to_pyarrow_table().to_pylist()
    assert identity_by_request(rows) == {"r": (True, "CONTFUT", "CME", ""),
                                         "n": (True, "CONTFUT", "CME", "")}
