"""WriteBatcher: one Arrow table per batch; a request whose rows do not convert fails alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pyarrow as pa

from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.write_batch import WriteBatcher
from v6ray.service.placement import WriterRotation


class FakeWriter:
    """Stands in for the ``write_rows`` Ray task: records each table it is given."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.commit_options: list[dict] = []  # each commit's keyword options (replace_requests)

        self.nodes: list[str | None] = []
        self._next_node: str | None = None

    def options(self, scheduling_strategy):
        assert scheduling_strategy.soft  # a busy or lost node's commit may run elsewhere
        self._next_node = scheduling_strategy.node_id
        return self

    def remote(self, data_dir, table, rows, **options):
        self.tables.append(rows)
        self.commit_options.append(options)
        self.nodes.append(self._next_node)
        self._next_node = None

        async def done():
            await asyncio.sleep(0.01)
            return {"table": table, "rows": rows.num_rows, "delta_version": len(self.tables)}

        return done()


NODE_IDS = tuple(letter * 56 for letter in "abc")  # Ray node ids: 28 bytes in hex


def bar(rid: str, close) -> dict:
    return {"request_id": rid, "symbol": "SPY", "bar_size": "1 day", "what_to_show": "TRADES",
            "timestamp": datetime(2024, 1, 2, tzinfo=UTC), "open": 1.0, "high": 2.0,
            "low": 0.5, "close": close, "volume": 10.0}


def run(coro):
    return asyncio.run(coro)


def test_one_table_of_one_chunk_per_batch_and_each_request_gets_its_row_count():
    async def scenario():
        writer = FakeWriter()
        batcher = WriteBatcher("/unused", GatewayConfig(write_batch_seconds=0.01), writer)
        results = await asyncio.gather(
            batcher.write("market_bars", [bar("a", 1.0), bar("a", 1.5)]),
            batcher.write("market_bars", [bar("b", 2.0)]),
            batcher.write("market_bars", []))
        assert [r["rows"] for r in results] == [2, 1, 0]
        assert results[0]["delta_version"] == results[1]["delta_version"] == 1
        [table] = writer.tables
        assert table.num_rows == 3 and table.column("close").num_chunks == 1
        assert table.column("request_id").to_pylist() == ["a", "a", "b"]
        assert batcher.commits == 1 and batcher.rows_written == 3

    run(scenario())


def test_rows_that_do_not_convert_fail_only_their_request():
    async def scenario():
        writer = FakeWriter()
        batcher = WriteBatcher("/unused", GatewayConfig(write_batch_seconds=0.01), writer)
        good, bad = await asyncio.gather(
            batcher.write("market_bars", [bar("a", 1.0)]),
            batcher.write("market_bars", [bar("b", "not a price")]),
            return_exceptions=True)
        assert good["rows"] == 1
        assert isinstance(bad, pa.ArrowInvalid | pa.ArrowTypeError | TypeError | ValueError)
        assert [t.column("request_id").to_pylist() for t in writer.tables] == [["a"]]

    run(scenario())


def test_a_retried_request_asks_its_commit_to_replace_its_earlier_rows():
    async def scenario():
        writer = FakeWriter()
        batcher = WriteBatcher("/unused", GatewayConfig(write_batch_seconds=0.01), writer)
        await asyncio.gather(
            batcher.write("option_snapshots", [{"request_id": "a", "con_id": 1}]),
            batcher.write("option_snapshots", [{"request_id": "b", "con_id": 2}], replacing="b"))
        await batcher.write("option_snapshots", [{"request_id": "c", "con_id": 3}])
        # One batch: only the retried request is replaced; a later batch replaces nothing.
        assert writer.commit_options == [{"replace_requests": ["b"]}, {}]

    run(scenario())


def test_a_full_buffer_flushes_without_waiting_for_the_timer():
    async def scenario():
        writer = FakeWriter()
        config = GatewayConfig(write_batch_rows=2, write_batch_seconds=30)
        batcher = WriteBatcher("/unused", config, writer)
        result = await asyncio.wait_for(
            batcher.write("market_bars", [bar("a", 1.0), bar("a", 2.0)]), 5)
        assert result["rows"] == 2

    run(scenario())




def test_on_a_cluster_each_commit_goes_to_the_next_node_with_cpu():
    a, b, c = NODE_IDS
    nodes = [{"NodeID": name, "Alive": True, "Resources": {"CPU": 1.0}} for name in (a, b, c)]

    async def scenario():
        writer = FakeWriter()
        batcher = WriteBatcher("/unused", GatewayConfig(write_batch_seconds=0.001), writer,
                               rotation=WriterRotation(lambda: nodes))
        for n in range(7):
            await batcher.write("market_bars", [bar(f"r{n}", 1.0)])
            await asyncio.sleep(0)  # let the node-list refresh (a thread) finish
        return writer.nodes, batcher.commits_by_node

    sent_to, by_node = run(scenario())
    assert sent_to == [a, b, c, a, b, c, a]
    assert by_node == {a: 3, b: 2, c: 2}
