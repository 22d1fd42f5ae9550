"""Cost of one ``staffing`` call (the per-queue, per-tick Erlang C readout) at 10, 100, 1,000
and 10,000 Erlangs, 80% within 20 s, AHT 200 s.

python bench/erlang_speed.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.monitor.engine.erlang import staffing

AHT = 200.0


def per_call_us(rate: float, agents_now: int, reps: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            staffing(rate, AHT, agents_now, 20.0, 0.8)
        best = min(best, (time.perf_counter() - start) / reps * 1e6)
    return best


def main() -> None:
    print("| traffic (Erlangs) | required | agents now | us per staffing() |")
    print("|---:|---:|---:|---:|")
    for erlangs in (10, 100, 1000, 10_000):
        rate = erlangs / AHT
        need = int(staffing(rate, AHT, 0, 20.0, 0.8).required)
        reps = max(20, 200_000 // (erlangs + 10))
        for agents_now, label in (
            (need, f"{need} (= required)"),
            (erlangs, f"{erlangs} (overload)"),
        ):
            print(
                f"| {erlangs:,} | {need:,} | {label} | {per_call_us(rate, agents_now, reps):.1f} |"
            )


if __name__ == "__main__":
    main()
