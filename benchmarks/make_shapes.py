"""Benchmark: how fast `helpers.shapes.make_shapes` makes pairs (goal: >= 200 pairs/s at 128x128).

python benchmarks/make_shapes.py [--pairs 600] [--image-size 128]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from helpers import shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates = []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            start = time.perf_counter()
            shapes.make_shapes(
                Path(folder) / f"shapes_{repeat}",
                split_sizes={"train": args.pairs},
                image_size=args.image_size,
            )
            rates.append(args.pairs / (time.perf_counter() - start))
    rates.sort()
    median = rates[len(rates) // 2]
    print(
        f"make_shapes: {args.pairs} pairs at {args.image_size}x{args.image_size} on "
        f"{os.cpu_count()} cores: median {median:,.0f} pairs/s "
        f"(min {rates[0]:,.0f}, max {rates[-1]:,.0f}; goal >= 200) -> "
        f"{'OK' if median >= 200 else 'BELOW GOAL'}"
    )


if __name__ == "__main__":
    main()
