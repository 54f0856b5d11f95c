"""Can labels be read off counts? Fit the bag-of-types baseline on every domain.

The baseline sees how many nodes of each type/level and edges of each relation a graph has, and
nothing about how they connect. Every domain's labels must need structure, so its test accuracy
must stay near chance (the project's bar: <= 65%).

    python benchmarks/label_leakage.py [--samples 3000] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile

from nsm.data import DATASET_SIZE_ARGUMENT, load_dataset
from nsm.config import DOMAINS
from nsm.training.leakage import bag_of_types_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3000, help="samples per domain (all splits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for domain in DOMAINS:
            size = {DATASET_SIZE_ARGUMENT[domain]: args.samples}
            train, test = (load_dataset(domain, root, split, seed=args.seed, **size) for split in ("train", "test"))
            results[domain] = bag_of_types_accuracy(train, test, seed=args.seed)
            results[domain].update(train_samples=len(train), test_samples=len(test))
            if not args.json:
                r = results[domain]
                print(f"{domain:<9} bag-of-types: train {r['train_accuracy']:.1%}, best test "
                      f"{r['best_test_accuracy']:.1%} ({r['train_samples']} train / {r['test_samples']} test)")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
