"""What a request is: its types, its parameters and their rules, and the time range of a bar
request. Pure modules (no Ray, no IB connection) that the client, the queue, the gateway and
the scripts all read, so each rule is written once.

For now it holds ``durations``; the request types (``v6ray.model``) and the parameter rules
(``v6ray.parameters``) are to move in beside it.
"""
