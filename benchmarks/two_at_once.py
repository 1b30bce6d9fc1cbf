"""Benchmark: one training alone, then two at once — why `make test` runs two workers.

    python benchmarks/two_at_once.py [--epochs 4] [--dataset shapes]

Trains the shared recipe for ``--epochs`` epochs in a child process, alone, and prints its
training time and how many cores it kept busy (CPU seconds / wall seconds). Then starts two such
children at the same moment, twice: with TensorFlow's default threads (every core in each
process) and with each child's ops on its share of the cores (``TF_NUM_INTRAOP_THREADS``, as
``make test`` sets for its workers in ``conftest.py``). ``throughput`` compares whole
processes (start-up included): twice the time of the child alone, divided by the time the pair
took side by side. Above 1.0, two workers finish a test suite sooner than one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SUITE_RULES = Path(__file__).resolve().parents[1] / "conftest.py"

CHILD = """
import json, os, sys, tempfile, time
from pathlib import Path
import helpers  # noqa: F401
from helpers import data, training
dataset = data.load_dataset(sys.argv[1])
config = training.resolve_config(epochs=int(sys.argv[2]), patience=1000)
start, cpu = time.perf_counter(), os.times()
with tempfile.TemporaryDirectory() as run_dir:
    training.train(dataset, config, run_dir=Path(run_dir), verbose=0)
end = os.times()
print(json.dumps({"wall": time.perf_counter() - start,
                  "cpu": end.user - cpu.user + end.system - cpu.system}))
"""


def start(dataset: str, epochs: int, threads: int | None = None) -> subprocess.Popen:
    """A training child; ``threads``: its TensorFlow intra-op threads (None: the default)."""
    arguments = [sys.executable, "-c", CHILD, dataset, str(epochs)]
    environment = os.environ | ({"TF_NUM_INTRAOP_THREADS": str(threads)} if threads else {})
    return subprocess.Popen(arguments, stdout=subprocess.PIPE, text=True, env=environment)


def result(child: subprocess.Popen) -> dict[str, float]:
    output, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"a training child failed (exit {child.returncode})")
    return json.loads(output.strip().splitlines()[-1])


def suite_share(workers: int = 2) -> int:
    """The intra-op threads `make test` gives each of its ``workers`` (conftest.py)."""
    spec = importlib.util.spec_from_file_location("suite_rules", SUITE_RULES)
    rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rules)
    return rules.tensorflow_threads(rules.usable_cores(), workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    began = time.perf_counter()
    alone = result(start(args.dataset, args.epochs))
    alone_process = time.perf_counter() - began
    print(
        f"alone: {alone['wall']:.1f} s of training, "
        f"{alone['cpu'] / alone['wall']:.2f} cores busy on average"
    )
    share = suite_share()
    for label, threads in (("default threads", None), (f"{share} thread(s) each", share)):
        began = time.perf_counter()
        pair = [start(args.dataset, args.epochs, threads) for _ in range(2)]
        walls = [result(child)["wall"] for child in pair]
        both = time.perf_counter() - began
        print(
            f"two at once, {label}: {walls[0]:.1f} s and {walls[1]:.1f} s of training, "
            f"{both:.1f} s in all; throughput {2 * alone_process / both:.2f}x one after the other"
        )


if __name__ == "__main__":
    main()
