"""Can labels be read off counts, or a KG query's distance? Fit baselines that must fail.

The bag-of-types baseline sees how many nodes of each type/level and edges of each relation a
graph has, and nothing about how they connect. Every domain's labels must need structure, so its
test accuracy must stay near chance (the project's bar: <= 65%).

With ``--kg-dir DIR`` (a KG in the TSV layout) the KG's samples also face the reachability and
distance baselines (``nsm.analysis.leakage.distance_baselines``): fitted on the training samples,
they must stay near chance on the binary test samples and must not beat chance (candidates in
random order) at sampled-protocol ranking.

    python benchmarks/label_leakage.py [--samples 3000] [--seed 0] [--kg-dir DIR] [--hops 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile

from nsm.config import DOMAINS
from nsm.data import load_dataset
from nsm.data.domains.kg.tsv import FileGraph
from nsm.analysis.leakage import bag_of_types_accuracy, distance_baselines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3000, help="samples per domain (all splits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kg-dir", help="also check this KG (TSV layout) with the distance baselines")
    parser.add_argument("--hops", type=int, default=2, help="--kg-dir: subgraph radius (default 2)")
    parser.add_argument("--max-entities", type=int, default=24, help="--kg-dir: subgraph size cap (default 24)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as root:
        jobs = {domain: {"num_samples": args.samples} for domain in DOMAINS}
        if args.kg_dir:
            jobs["kg-dir"] = {"num_samples": args.samples, "kg_dir": args.kg_dir, "hops": args.hops,
                              "max_entities": args.max_entities}
        for job, params in jobs.items():
            domain = "kg" if job == "kg-dir" else job
            train, test = (load_dataset(domain, root, split, seed=args.seed, **params) for split in ("train", "test"))
            results[job] = bag_of_types_accuracy(train, test, seed=args.seed)
            results[job].update(train_samples=len(train), test_samples=len(test))
            if not args.json:
                r = results[job]
                print(f"{job:<9} bag-of-types: train {r['train_accuracy']:.1%}, best test "
                      f"{r['best_test_accuracy']:.1%} ({r['train_samples']} train / {r['test_samples']} test)")
            if job == "kg-dir":
                graph = FileGraph(train.files, args.hops, random.Random(f"kg-files/{args.seed}"), args.max_entities)
                results[job]["distance_baselines"] = distance_baselines(train, test, graph, len(train.files.entities),
                                                                        seed=args.seed)
                if not args.json:
                    for name, r in results[job]["distance_baselines"].items():
                        print(f"{'':<9} {name}-only: test accuracy {r['test_accuracy']:.1%}; sampled ranking MRR "
                              f"{r['mrr']:.3f}, Hits@10 {r['hits_at_10']:.1%} (chance {r['chance_mrr']:.3f}, "
                              f"{r['chance_hits_at_10']:.1%})")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
