"""``python -m v6ray.sim``: the simulator CLI."""

import sys

from v6ray.sim.cli import main

sys.exit(main())
