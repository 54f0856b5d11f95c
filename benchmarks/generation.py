"""How long does generating a domain's samples take? (The target: 10,000 samples <= 20 s.)

Generation runs into a fresh temporary cache, so every figure is a cold build (samples,
oracle labels, graphs); a second, cached load is timed too.

    python benchmarks/generation.py [--samples 10000] [--domains planning,causal,kg] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from nsm.config import DOMAINS
from nsm.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for domain in args.domains.split(","):
        size = {"num_samples": args.samples}
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            train = load_dataset(domain, root, "train", seed=args.seed, **size)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            total = sum(len(load_dataset(domain, root, split, seed=args.seed, **size)) for split in ("train", "val", "test"))
            cached = time.perf_counter() - start
        results[domain] = {"samples": total, "generate_s": round(cold, 2), "cached_load_all_splits_s": round(cached, 2),
                           "train_samples": len(train)}
        if not args.json:
            print(f"{domain:<9} {total} samples: generated in {cold:.1f} s, all splits from cache in {cached:.1f} s")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
