"""One module per request type, each defining ``SPEC`` (a ``RequestSpec``); the module's
name is the type's ``request_type`` value. ``v6ray.requests.registry`` finds them."""
