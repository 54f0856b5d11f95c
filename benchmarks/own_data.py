"""How long does your own data take to load? (The target: 100,000 samples load and cache in well under a minute.)

Writes N random labelled triple graphs as JSON Lines (``--triples`` per graph, about
``--triples`` / 2 nodes of a few types, labels 0/1, no ``split``: the seeded 70/15/15 split
applies), then times, into a fresh data cache: the first load of all three splits (reading and
checking every line, splitting, caching, building the graphs) and a second, cached load.

    python benchmarks/own_data.py [--samples 100000] [--triples 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from nsm.data import load_dataset
from nsm.data.base import SPLITS
from nsm.data.domains.triples.jsonl import forget_read


def write_samples(path: Path, samples: int, triples: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    relations = [f"rel{i}" for i in range(8)]
    types = ["entity", "event", "goal"]
    nodes = max(2, triples // 2)
    with open(path, "w") as out:
        for i in range(samples):
            names = [f"n{j}" for j in range(nodes)]
            edges = [[rng.choice(names), rng.choice(relations), rng.choice(names), round(rng.random(), 3),
                      rng.choice((1, 1, 2, 3))] for _ in range(triples)]
            used = {name for s, _, o, _, _ in edges for name in (s, o)}
            record = {"id": i, "label": rng.randrange(2), "triples": edges,
                      "node_types": {name: types[int(name[1:]) % 3] for name in names if name in used}}
            out.write(json.dumps(record) + "\n")


def load_all(root: Path, path: Path) -> int:
    return sum(len(load_dataset("triples", root, split, data_path=str(path))) for split in SPLITS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--triples", type=int, default=30, help="triples per graph")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "samples.jsonl"
        write_samples(path, args.samples, args.triples)
        root = Path(scratch) / "cache"
        start = time.perf_counter()
        total = load_all(root, path)
        first = time.perf_counter() - start
        forget_read()  # a new process: nothing read in memory
        start = time.perf_counter()
        load_all(root, path)
        cached = time.perf_counter() - start
        result = {"samples": total, "triples_per_graph": args.triples, "file_mib": round(path.stat().st_size / 2**20, 1),
                  "first_load_s": round(first, 1), "cached_load_s": round(cached, 1)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{total} samples, {args.triples} triples each ({result['file_mib']} MiB): first load (read, check, "
              f"split, cache, graphs) {first:.1f} s, cached load {cached:.1f} s")


if __name__ == "__main__":
    main()
