"""IB's pacing in one place (pure: no I/O, every clock injected).

- ``ib_limits``: IB's published rules as data: 50 messages/s, market-data lines, every
  historical-data window, and the error codes IB answers when one is broken. The simulator
  enforces these numbers; the gateway stays inside them.
- ``costs``: what a request takes of those budgets (``Cost``); each request type's spec
  says what it costs, computed once when the request is made and kept on it.
- ``windows``: sliding windows over event times, and the message-rate rule at the socket.
- ``pacer``: the gateway's budgets over one clock (``PacingLimits`` from its settings).
- ``admission``: the ``Budget`` the gateway hands the queue at a claim (plain numbers) and
  the predicate the queue weighs each request's cost with.

The gateway's I/O side (``v6ray.gateway.permits``: waiting for a permit, then writing)
and ib_async's own throttle are driven by these numbers.
"""
