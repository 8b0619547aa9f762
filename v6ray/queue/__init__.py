"""The durable request queue: pure core, Delta journal, and the Ray actor around them."""
