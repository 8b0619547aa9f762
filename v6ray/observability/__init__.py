"""Everything v6ray shows about itself: Ray metrics, request logs, actor info.

* ``catalog``: every metric v6ray exports (name, kind, tags), as data;
* ``metrics``: the recorder the actors call (Ray's ``ray.util.metrics``, or memory in tests);
* ``requests``: the queue's state changes turned into log lines and metrics;
* ``gateway``: the gateway's stats turned into gauges and counters, published periodically;
* ``logs``: Ray's worker logging configuration for v6ray, and the masking of account ids;
* ``actors``: node, pid, restarts and uptime of v6ray's actors (``ray.util.state``).
"""
