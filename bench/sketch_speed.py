"""Cost of one ``add`` for the quantile sketch candidates, on the same waits.

python bench/sketch_speed.py        (needs ``pip install ddsketch`` for the comparison)
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.monitor.engine.sketch import bucket_of


def main() -> None:
    rng = random.Random(3)
    waits = [rng.expovariate(1 / 40) for _ in range(1_000_000)]
    counts: dict[int, int] = {}
    start = time.perf_counter()
    for w in waits:
        i = bucket_of(w)
        counts[i] = counts.get(i, 0) + 1
    ours = (time.perf_counter() - start) / len(waits) * 1e9
    print(f"| log-bucket dict (monitor/engine/sketch.py) | {ours:.0f} ns |")
    try:
        from ddsketch import DDSketch  # noqa: PLC0415
    except ImportError:
        print("| ddsketch.DDSketch | not installed |")
        return
    sketch = DDSketch(relative_accuracy=0.01)
    start = time.perf_counter()
    for w in waits:
        sketch.add(w)
    theirs = (time.perf_counter() - start) / len(waits) * 1e9
    print(f"| ddsketch.DDSketch(relative_accuracy=0.01).add | {theirs:.0f} ns |")


if __name__ == "__main__":
    main()
