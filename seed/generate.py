"""Regenerate the synthetic demo data files in this folder.

    python seed/generate.py [--seed N]

The output is deterministic: the same seed gives byte-identical files. The data is invented.
"""

import argparse
from pathlib import Path

from registry.demo import DEFAULT_SEED, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    for path in generate(args.out, args.seed):
        print(path)


if __name__ == "__main__":
    main()
