import pytest
import ray

from tests.cluster.conftest import node_ids

pytestmark = pytest.mark.cluster


def test_three_nodes(ray_nodes):
    ids = node_ids(ray_nodes)
    print(ids, ray.nodes())
    assert set(ids) == {"head", "gateway", "writer"}

    @ray.remote(num_cpus=0.25, scheduling_strategy="SPREAD")
    def where():
        import time
        time.sleep(0.5)
        return ray.get_runtime_context().get_node_id()

    seen = set(ray.get([where.remote() for _ in range(12)]))
    print(seen)
    assert len(seen) >= 2
