"""One worker raylet of the test cluster, on 127.0.0.1, in a process of its own.

``python -m tests.cluster.worker_node --address 127.0.0.1:PORT --temp-dir DIR ...``

Why not ``ray start --address``: on Linux `ray start` adds a worker only with Ray's
multi-node switch on (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``), and with it on Ray rewrites
127.0.0.1 to the machine's network address, so the cluster would listen on the network.
This does what Ray's own multi-node test utility (``ray.cluster_utils.Cluster.add_node``)
does for a worker, with the switch off so every address stays loopback, but in its own
process group (killed as one node, as a crashed machine would be) and without writing
``/tmp/ray/ray_current_cluster`` (which a bare ``ray.init()`` elsewhere would join).
Prints "Ray runtime started" once the node is up, as `ray start` does, then blocks.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--temp-dir", required=True)
    parser.add_argument("--num-cpus", type=int, default=1)
    parser.add_argument("--object-store-memory", type=int, default=100 * 1024 * 1024)
    parser.add_argument("--dashboard-agent-listen-port", type=int, required=True)
    parser.add_argument("--resources", default="{}")
    args = parser.parse_args(argv)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray reads its constants

    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(
        gcs_address=args.address,
        node_ip_address="127.0.0.1",
        num_cpus=args.num_cpus,
        num_gpus=0,
        resources=json.loads(args.resources),
        object_store_memory=args.object_store_memory,
        temp_dir=args.temp_dir,
        min_worker_port=0,
        max_worker_port=0,
        node_manager_port=0,
        include_log_monitor=False,  # the head's log monitor serves this one machine
        dashboard_agent_listen_port=args.dashboard_agent_listen_port,
    )
    node = Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    print(f"Ray runtime started: node {node.node_id} at {node.node_ip_address}", flush=True)

    def stop(signum, frame):  # SIGTERM: stop this node's processes as `ray start` does
        node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        signal.pause()


if __name__ == "__main__":
    main(sys.argv[1:])
