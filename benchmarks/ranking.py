"""How long full filtered ranking takes: every test triple's head and tail against every entity.

The target (issue 16): UMLS-sized test files, 661 triples × 2 sides × 135 entities, about 180k
subgraphs, in minutes on 2 cores. UMLS itself is not shipped; this builds a synthetic KG of the same
size (``nsm.data.domains.kg.export``: 135 entities, ~5-6k train triples) and ranks its test file with an
NSM of the kg domain's shape. Its weights do not matter for speed, so it is left untrained.

    python benchmarks/ranking.py [--entities 135] [--triples 6000] [--queries 661] [--workers 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch

from nsm.assemble import build_model_for
from nsm.config import make_run_config
from nsm.data.domains.kg.tsv import FileGraph, read_kg_dir
from nsm.data.domains.kg.export import export_synthetic_kg
from nsm.evaluation.link_prediction import split_queries, subgraph_scorer
from nsm.evaluation.ranking import CandidatePool, rank_queries
from nsm.host import describe_host


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=135)
    parser.add_argument("--triples", type=int, default=6000)
    parser.add_argument("--queries", type=int, default=661, help="test triples to rank (at most the file's)")
    parser.add_argument("--workers", type=int, default=1, help="subgraph extraction processes beside the model's")
    parser.add_argument("--protocol", choices=("full", "sampled"), default="full")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as root:
        kg_dir, _ = export_synthetic_kg(Path(root) / "kg", args.entities, args.triples, seed=0,
                                        queries=4 * args.queries)
        files = read_kg_dir(kg_dir)
        queries = split_queries(files, "test", args.queries)
        config = make_run_config("kg", "dev", kg_dir=str(kg_dir))
        model = build_model_for(dict(config, model_args=dict(config["model_args"], num_relations=len(files.relations))))
        graph = FileGraph(files, 2, random.Random("kg-files/0"))
        score = subgraph_scorer(model, graph, files.schema, config["model_args"]["node_features"], workers=args.workers)
        started = time.perf_counter()
        metrics = rank_queries(queries, score, CandidatePool(range(len(files.entities)), graph.known), args.protocol)
        seconds = time.perf_counter() - started
    result = {"entities": len(files.entities), "train_triples": len(files.triples["train"]), "queries": len(queries),
              "protocol": args.protocol, "scored_triples": metrics["scored_triples"], "seconds": round(seconds, 1),
              "triples_per_s": round(metrics["scored_triples"] / seconds), "workers": args.workers,
              "threads": torch.get_num_threads(), "cores": os.cpu_count(), "host": describe_host()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['protocol']} ranking of {result['queries']} queries over {result['entities']} entities "
              f"({result['train_triples']} train triples): {result['scored_triples']} subgraphs in "
              f"{result['seconds']} s, {result['triples_per_s']}/s ({args.workers} extraction worker(s), "
              f"{result['threads']} threads, {result['cores']} cores)")


if __name__ == "__main__":
    main()
