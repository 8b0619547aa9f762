"""Where work may run on a cluster: a local data root on several nodes is refused with one
line naming the fix; a lost gateway node is recognised (pure: node lists as Ray gives them)."""

from __future__ import annotations

import pytest

from v6ray.cli import status
from v6ray.errors import SplitDataRoot, V6RayError
from v6ray.service.placement import (
    GATEWAY_WAITING,
    WriterRotation,
    check_shared_data_root,
    gateway_waiting,
)


def node(alive=True, **resources):
    return {"NodeID": "n", "Alive": alive, "Resources": {"CPU": 1.0, **resources}}


@pytest.mark.parametrize("data_dir", ["./v6ray-data", "/srv/v6ray", "file:///srv/v6ray"])
def test_a_local_data_root_on_several_nodes_is_refused_naming_the_fix(data_dir):
    with pytest.raises(SplitDataRoot) as refused:
        check_shared_data_root(data_dir, [node(), node(v6ray_gateway=1.0), node(alive=False)])
    message = str(refused.value)
    assert isinstance(refused.value, V6RayError)  # the CLI's one-line user error
    assert "\n" not in message
    assert "2 nodes" in message and "local folder" in message
    assert "s3://" in message


def test_one_live_node_or_shared_storage_is_fine():
    check_shared_data_root("./v6ray-data", [node(), node(alive=False)])
    check_shared_data_root("s3://bucket/v6ray", [node(), node(), node()])
    check_shared_data_root("gs://bucket/v6ray", [node(), node()])


def test_gateway_waits_only_when_its_node_is_gone():
    assert gateway_waiting([node(), node(alive=False, v6ray_gateway=1.0)])
    assert not gateway_waiting([node(), node(v6ray_gateway=1.0)])
    # Restarted: the dead entry stays in Ray's node list beside the new live one.
    assert not gateway_waiting([node(alive=False, v6ray_gateway=1.0), node(v6ray_gateway=1.0)])
    assert not gateway_waiting([node()])  # one machine: the gateway is not pinned at all
    assert gateway_waiting([node(), node(alive=False)])  # Ray may drop a dead node's resources


def test_status_says_the_gateway_waits_and_counts_writer_conflicts():
    text = status.to_text(
        {"queue": {"depth": {"PENDING": 3}}, "gateway": {"state": GATEWAY_WAITING}}
    )
    assert "waiting for a node with v6ray_gateway" in text
    counters = {"writer_commits": 12, "rows_written": 340, "writer_conflicts": 5}
    text = status.to_text({"queue": {}, "gateway": {"state": "connected", "counters": counters}})
    assert "12 commits · 340 rows · 5 conflicts retried" in text


def test_writer_commits_take_turns_over_the_live_nodes_with_cpu():
    listed = [
        {"NodeID": "b", "Alive": True, "Resources": {"CPU": 1.0}},
        {"NodeID": "a", "Alive": True, "Resources": {"CPU": 2.0, "v6ray_gateway": 1.0}},
        {"NodeID": "dead", "Alive": False, "Resources": {"CPU": 1.0}},
        {"NodeID": "no-cpu", "Alive": True, "Resources": {"memory": 1e9}},
    ]
    now = [0.0]
    fetches = []
    rotation = WriterRotation(lambda: fetches.append(now[0]) or listed, refresh_seconds=10,
                              clock=lambda: now[0])
    assert rotation.stale and rotation.next_node() is None  # nothing known yet: Ray places it
    rotation.refresh()
    assert [rotation.next_node() for _ in range(5)] == ["a", "b", "a", "b", "a"]
    now[0] = 9.9
    assert not rotation.stale
    listed[2]["Alive"] = True  # a node joined: used from the next refresh on
    now[0] = 10.0
    assert rotation.stale
    rotation.refresh()
    assert {rotation.next_node() for _ in range(3)} == {"a", "b", "dead"}
    assert fetches == [0.0, 10.0]
