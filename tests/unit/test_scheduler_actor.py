"""The scheduler actor's shell without Ray: a fake queue handle and a fake clock drive
``tick()``; backpressure, market hours, run_now, stats and state across a restart."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import FakeClock
from v6ray.errors import JobConfigError
from v6ray.requests.model import Status, request_from_submission
from v6ray.scheduler.actor import UnifiedScheduler


class _Method:
    def __init__(self, func):
        self.func = func

    def remote(self, *args):
        async def call():
            return self.func(*args)

        return call()


class FakeQueue:
    """Coalesces identical unfinished requests like the real queue."""

    def __init__(self):
        self.requests = {}
        self.submitted = 0
        self.submit_many = _Method(self._submit_many)
        self.get = _Method(self.requests.get)

    def _submit_many(self, items):
        ids = []
        for item in items:
            self.submitted += 1
            request = request_from_submission(item)
            same = [
                r
                for r in self.requests.values()
                if r.dedup_key == request.dedup_key and not r.is_final
            ]
            if same:
                ids.append(same[0].request_id)
            else:
                self.requests[request.request_id] = request
                ids.append(request.request_id)
        return ids

    def finish_all(self):
        for rid, request in list(self.requests.items()):
            self.requests[rid] = request.with_changes(status=Status.SUCCESS)


CONFIG = """
[scheduler]
replace_defaults = true

[[jobs]]
name = "chains"
type = "option_chain"
symbols = ["SPY", "QQQ"]
interval_seconds = 60
needs_market_open = true

[[jobs]]
name = "positions"
type = "position_update"
symbols = ["*"]
interval_seconds = 600
"""


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "scheduler.toml"
    path.write_text(CONFIG)
    return str(path)


def make(data_dir, config_path, clock, queue):
    scheduler = UnifiedScheduler(data_dir, config_path, clock=clock, tick_seconds=1.0)
    scheduler._queue = queue
    return scheduler


def test_ticks_submit_skip_pending_runs_and_respect_market_hours(data_dir, config_path):
    clock = FakeClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # Tuesday 10:00 ET
    queue = FakeQueue()
    scheduler = make(data_dir, config_path, clock, queue)

    async def scenario():
        assert await scheduler.tick() == ["chains", "positions"]
        assert len(queue.requests) == 3
        clock.now += timedelta(seconds=61)
        assert await scheduler.tick() == []  # previous chains still PENDING: skipped
        assert queue.submitted == 3
        queue.finish_all()
        assert await scheduler.tick() == ["chains"]
        assert len(queue.requests) == 5
        queue.finish_all()
        clock.now = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # Thanksgiving
        assert await scheduler.tick() == ["positions"]
        ids = await scheduler.run_now("chains")  # explicit: ignores the closed market
        assert len(ids) == 2
        stats = await scheduler.stats()
        json.dumps(stats)
        return stats

    stats = asyncio.run(scenario())
    chains = next(j for j in stats["jobs"] if j["name"] == "chains")
    assert chains["skipped_pending"] == 1 and chains["runs"] == 3
    assert chains["last_request_ids"] == ids_of(queue, "option_chain")[-2:]
    # Next chains run: Friday's open (half day), 09:30 ET.
    assert chains["next_due"] == "2026-11-27T14:30:00+00:00"

    # A new instance (an actor restart) reads the same state back.
    again = make(data_dir, config_path, clock, queue)
    assert again.state == scheduler.state


def ids_of(queue, request_type):
    return [rid for rid, r in queue.requests.items() if r.request_type.value == request_type]


def test_start_stop_and_remembered_running_flag(data_dir, config_path):
    clock = FakeClock(datetime(2026, 11, 28, 16, 0, tzinfo=UTC))  # Saturday
    queue = FakeQueue()
    scheduler = make(data_dir, config_path, clock, queue)

    async def scenario():
        stats = await scheduler.start()
        assert stats["running"]
        assert (await scheduler.start())["started_at"] == stats["started_at"]  # idempotent
        await asyncio.sleep(0)  # let the loop tick once
        await asyncio.sleep(0)
        stopped = await scheduler.stop()
        assert not stopped["running"]

    asyncio.run(scenario())
    assert scheduler.state.job("positions").runs == 1
    assert not make(data_dir, config_path, clock, queue).state.running


def test_bad_config_and_unknown_job(tmp_path, data_dir):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[jobs]]\nname = "x"\ntype = "option_chain"\nsymbols = ["SPY"]\n')
    with pytest.raises(JobConfigError, match="'x'"):
        UnifiedScheduler(data_dir, str(bad))
    scheduler = UnifiedScheduler(data_dir)
    with pytest.raises(JobConfigError, match="no such job"):
        asyncio.run(scheduler.run_now("nope"))


MAINTENANCE_CONFIG = """
[scheduler]
replace_defaults = true

[[jobs]]
name = "maintenance"
type = "maintain_tables"
after_close_minutes = 5
market = "CME"
"""


def test_maintenance_runs_as_a_background_task_and_a_running_one_is_not_doubled(
    tmp_path, data_dir, monkeypatch
):
    import v6ray.storage.maintenance as maintenance

    release = asyncio.Event()
    calls = []

    class FakeTask:  # stands in for the Ray task: ``.remote`` gives an awaitable
        @staticmethod
        def remote(directory):
            calls.append(directory)

            async def run():
                await release.wait()
                return [{"table": "market_bars", "exists": True, "files_after": 1}]

            return run()

    monkeypatch.setattr(maintenance, "maintenance_task", lambda: FakeTask)
    config = tmp_path / "maintenance.toml"
    config.write_text(MAINTENANCE_CONFIG)
    clock = FakeClock(datetime(2026, 11, 24, 22, 6, tzinfo=UTC))  # Tuesday 17:06 ET
    scheduler = make(data_dir, str(config), clock, FakeQueue())

    async def scenario():
        assert await scheduler.tick() == ["maintenance"]
        await asyncio.sleep(0)
        assert calls == [scheduler.data_dir]
        running = (await scheduler.stats())["jobs"][0]
        assert running["maintenance_running"] and running["last_request_ids"] == []
        clock.now += timedelta(days=1)  # the next night, this one still running: skipped
        assert await scheduler.tick() == []
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        return (await scheduler.stats())["jobs"][0]

    done = asyncio.run(scenario())
    assert not done["maintenance_running"] and done["skipped_pending"] == 1
    assert done["maintenance_result"]["tables"][0]["table"] == "market_bars"
    assert done["maintenance_result"]["error"] is None
