"""Does a long history slow v6ray down? Small vs large history, measured side by side.

    PYTHONPATH=. python bench/growth.py [--quick] [--only SECTION ...]

Each section builds the same live work on top of a small and a large history, measures
the same operation on both in one run (alternating, median of a few rounds) and prints
small, large and their ratio next to the goal (the ratio a cost that follows the live
work, not the history, stays within). Not a test.

Sections are listed in ``SECTIONS``: a new one is a module in bench/ with a function
``run(quick: bool) -> list[growth_measure.Measurement]`` and a line there.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

BENCH = str(Path(__file__).resolve().parent)
REPO = str(Path(BENCH).parent)
sys.path[:0] = [REPO, BENCH]  # run from a checkout: this tree's v6ray and the sections
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))

from growth_measure import Measurement  # noqa: E402

# Section name -> the bench/ module measuring it: ``run(quick: bool) -> list[Measurement]``.
SECTIONS: dict[str, str] = {
    "queue": "growth_queue",  # queue restart and journal compaction over 10k vs 1M requests
    "merge": "growth_merge",  # one 390-bar market_bars MERGE into 10k vs 5M rows
}


def report(section: str, measurements: list[Measurement], seconds: float) -> bool:
    """Print a section's table; True when every ratio with a goal meets it."""
    print(f"\n[{section}] ({seconds:.0f} s)")
    ok = True
    for m in measurements:
        verdict = ""
        if m.goal_ratio is not None:
            met = m.ratio <= m.goal_ratio
            ok &= met
            verdict = f"goal <= {m.goal_ratio:g}: {'met' if met else 'MISSED'}"
        print(
            f"  {m.name}: {m.small:,.3f} {m.unit} vs {m.large:,.3f} {m.unit} "
            f"-> ratio {m.ratio:.2f}  {verdict}"
        )
        if m.note:
            print(f"      {m.note}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller histories (a smoke run, not the figures)"
    )
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), default=None)
    args = parser.parse_args(argv)
    print(f"v6ray growth benchmark: {os.cpu_count()} cores, one run, small vs large history")
    all_met = True
    for name in args.only or list(SECTIONS):
        started = time.monotonic()
        measurements = importlib.import_module(SECTIONS[name]).run(args.quick)
        all_met &= report(name, measurements, time.monotonic() - started)
    print(f"\nall goals met: {'yes' if all_met else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
