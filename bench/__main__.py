"""Run every StreamFlow benchmark: `uv run python -m bench [--quick]`.

Prints each figure with the input size and the machine's size, and ratios against the reference
implementation measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os

from bench import evaluation_bench, rouge_bench


def _machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small inputs, for a smoke run.")
    args = parser.parse_args()
    print(f"machine: {_machine()}")
    rouge = rouge_bench.run(n_pairs=300 if args.quick else 2000)
    print(json.dumps({"rouge": rouge}, indent=2))
    evaluation = evaluation_bench.run(n_examples=2_000 if args.quick else 100_000)
    print(json.dumps({"evaluation": evaluation}, indent=2))


if __name__ == "__main__":
    main()
