"""Link prediction on a knowledge graph in the TSV layout, measured as the field measures it.

A graph directory holds ``train.txt`` (the context graph every subgraph is drawn from) and the
query files ``valid.txt`` / ``test.txt``. For the queries of one split:

* ``accuracy``, ``auroc``, ``auc_pr``: each query against one filtered corruption of a random side
  (GraIL's classification protocol);
* ``mrr``, ``hits@1``, ``hits@3``, ``hits@10``: each query's rank against corruptions of its head
  and of its tail, ``sampled`` (49 per side) or ``full`` (see :mod:`nsm.evaluation.ranking`).

The graph may be the one a run was trained on (transductive) or another one in the same layout
whose entities the run has never seen (GraIL's inductive setting: train on ``X``, evaluate on
``X_ind``). The NSM transfers because a node's features say what it is (type, level, distances to
the query's ends), never which entity it is; its relations must be among the run's.

:func:`subgraph_scorer` scores triples with the NSM (or a graph baseline) over their enclosing
subgraphs; any other ``score(facts) -> Tensor`` (a KG embedding) is ranked the same way.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torch_geometric.data import Batch
from tqdm.auto import tqdm

from nsm.config import KGE_MODELS, RANKING_NEGATIVES, RANKINGS
from nsm.data.domains.kg.query_graph import QueryGraph
from nsm.data.domains.kg.subgraph import MAX_SUBGRAPH_ENTITIES
from nsm.data.domains.kg.tsv import SPLIT_FILES, FileGraph, KGFiles, read_kg_dir
from nsm.data.triples import DomainSchema
from nsm.errors import NSMError
from nsm.evaluation.evaluator import load_trained, positive_scores
from nsm.evaluation.metrics import compute_classification_metrics
from nsm.evaluation.ranking import CandidatePool, Fact, Scorer, random_negatives, rank_queries
from nsm.rundir import BEST
from nsm.training.batches import unpack_batch


class _QueryGraphs(Dataset):
    """The enclosing-subgraph graphs of ``facts``, one item each (extracted in loader workers)."""

    def __init__(self, graph: QueryGraph, facts: list[Fact], schema: DomainSchema, node_feature_dim: int):
        self.graph, self.facts, self.schema, self.node_feature_dim = graph, facts, schema, node_feature_dim

    def __len__(self) -> int:
        return len(self.facts)

    def __getitem__(self, index: int):
        return self.graph.query_graph(self.facts[index], self.schema, self.node_feature_dim)


def subgraph_scorer(model: torch.nn.Module, graph: QueryGraph, schema: DomainSchema, node_feature_dim: int,
                    batch_size: int = 256, workers: int = 0, description: str = "scoring") -> Scorer:
    """``score(facts) -> [len(facts)]`` log-odds that each triple holds, from its enclosing
    subgraph in ``graph``, batched; ``workers`` processes extract subgraphs while the model runs.
    A progress bar on a terminal."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def score(facts: list[Fact]) -> torch.Tensor:
        model.eval()
        loader = DataLoader(_QueryGraphs(graph, facts, schema, node_feature_dim), batch_size=batch_size,
                            num_workers=workers, collate_fn=Batch.from_data_list)
        scores = []
        with tqdm(total=len(facts), desc=description, unit="triple", disable=None, leave=False) as bar:
            for batch in loader:
                inputs, _ = unpack_batch(batch, device)
                scores.append(positive_scores(model(**inputs)["logits"]).cpu())
                bar.update(batch.num_graphs)
        return torch.cat(scores) if scores else torch.zeros(0)

    return score


def link_prediction_metrics(score: Scorer, queries: list[Fact], pool: CandidatePool, ranking: str = "sampled",
                            negatives: int = RANKING_NEGATIVES, seed: int = 0,
                            calibrated: bool = True) -> dict[str, Any]:
    """The module docstring's metrics for ``queries``. ``calibrated``: scores are log-odds (the
    NSM's), so ``accuracy`` at 0 means something; a KG embedding's are not, and get none."""
    if ranking not in RANKINGS:
        raise NSMError(f"unknown ranking {ranking!r}; choose one of {', '.join(RANKINGS)}")
    if not queries:
        raise NSMError("there are no queries to evaluate")
    score = _remembered(score)  # the queries are scored for AUC-PR, then ranked: one subgraph each
    paired = [(query, negative) for query, negative in zip(queries, random_negatives(queries, pool, seed))
              if negative is not None]
    scores = score([fact for pair in paired for fact in pair])
    binary = compute_classification_metrics(scores, torch.tensor([1, 0] * len(paired)), "link_prediction")
    metrics: dict[str, Any] = {key: binary[key] for key in ("accuracy", "auroc", "auc_pr") if calibrated or key != "accuracy"}
    if ranking != "none":
        metrics.update(rank_queries(queries, score, pool, ranking, negatives, seed))
    else:
        metrics.update(protocol="none", queries=len(queries))
    return metrics


def _remembered(score: Scorer) -> Scorer:
    """``score`` that scores each triple once, however often it is asked."""
    known: dict[Fact, float] = {}

    def remembered(facts: list[Fact]) -> torch.Tensor:
        new = [fact for fact in dict.fromkeys(facts) if fact not in known]
        known.update(zip(new, score(new).tolist()))
        return torch.tensor([known[fact] for fact in facts])

    return remembered


def split_queries(files: KGFiles, split: str, most: int | None = None, seed: int = 0) -> list[Fact]:
    """``files.queries(split)``, or ``most`` of them drawn at random (seeded) from a larger file."""
    queries = files.queries(split)
    if most is not None and len(queries) > most:
        queries = random.Random(f"queries/{seed}").sample(queries, most)
    return queries


def kge_scorer(model: torch.nn.Module, relations: list[str]) -> Scorer:
    """``score(facts)`` of a KG embedding (higher = more plausible; not log-odds)."""
    from nsm.models.kge import kge_scores

    relation_ids = {name: i for i, name in enumerate(relations)}

    def score(facts: list[Fact]) -> torch.Tensor:  # kge_scores moves the ids to the model's device
        heads, names, tails = zip(*facts) if facts else ((), (), ())
        return kge_scores(model, torch.tensor(heads), torch.tensor([relation_ids[name] for name in names]),
                          torch.tensor(tails))

    return score


def run_scorer(config: dict[str, Any], model: torch.nn.Module, files: KGFiles) -> tuple[Scorer, set[Fact], bool]:
    """The scorer of a trained run over ``files``, the graph's true triples, and whether its
    scores are log-odds."""
    if config["model"] in KGE_MODELS:
        if files.entities != config["entities"]:
            raise NSMError(f"{config['model']} learned one embedding per entity of {config['kg_dir']}: it is "
                           f"transductive and cannot score {files.directory}, whose entities differ (an inductive "
                           f"graph needs the NSM or a graph baseline)")
        return kge_scorer(model, files.relations), files.known, False
    graph = context_graph(files, config["data"], config["seed"])
    return subgraph_scorer(model, graph, files.schema, config["model_args"]["node_features"]), graph.known, True


def context_graph(files: KGFiles, data: dict[str, Any], seed: int) -> FileGraph:
    """The graph a run's subgraphs are drawn from, with the tie-breaking of its dataset."""
    return FileGraph(files, data.get("hops", 2), random.Random(f"kg-files/{seed}"),
                     data.get("max_entities", MAX_SUBGRAPH_ENTITIES))


def kg_metrics(config: dict[str, Any], model: torch.nn.Module, files: KGFiles, split: str = "test",
               ranking: str = "sampled", negatives: int = RANKING_NEGATIVES,
               max_queries: int | None = None) -> dict[str, Any]:
    """A trained run's metrics (the module docstring's) on the queries of ``split`` of ``files``,
    read with the run's relation vocabulary: what the job's test pass and ``nsm eval`` report."""
    queries = split_queries(files, split, max_queries, config["seed"])
    score, known, calibrated = run_scorer(config, model, files)
    return link_prediction_metrics(score, queries, CandidatePool(range(len(files.entities)), known),
                                   ranking, negatives, config["seed"], calibrated)


def evaluate_kg_dir(run_dir: str | os.PathLike, kg_dir: str | os.PathLike | None = None, split: str = "test",
                    ranking: str = "sampled", negatives: int = RANKING_NEGATIVES, checkpoint: str = BEST,
                    max_queries: int | None = None) -> dict[str, Any]:
    """Evaluate run ``run_dir`` on the queries of ``split`` of ``kg_dir`` (default: the run's own
    ``--kg-dir``)."""
    return evaluate_trained_on_kg(*load_trained(run_dir, checkpoint), kg_dir, split, ranking, negatives, max_queries)


def evaluate_trained_on_kg(config: dict[str, Any], model: torch.nn.Module, kg_dir: str | os.PathLike | None = None,
                           split: str = "test", ranking: str = "sampled", negatives: int = RANKING_NEGATIVES,
                           max_queries: int | None = None) -> dict[str, Any]:
    """:func:`kg_metrics` of a loaded run on ``kg_dir``, with the graph named and how many of its
    entities the run was trained on."""
    relations = config.get("relations")
    if config["domain"] != "kg" or relations is None:
        raise NSMError(f"{config['run_dir']} was not trained on a knowledge graph in the TSV layout (nsm train "
                       f"--domain kg --kg-dir DIR): its graphs have other node types, so it cannot read one")
    if split not in SPLIT_FILES:
        raise NSMError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_FILES)}")
    own = kg_dir is None or Path(kg_dir) == Path(config["kg_dir"])
    kg_dir = Path(config["kg_dir"] if kg_dir is None else kg_dir)
    files = read_kg_dir(kg_dir, relations=relations)
    metrics = kg_metrics(config, model, files, split, ranking, negatives, max_queries)
    return {**metrics, "graph": str(kg_dir), "split": split, "entities": len(files.entities),
            "entities_seen_in_training": len(files.entities) if own else _entities_seen(files, config)}


def _entities_seen(files: KGFiles, config: dict[str, Any]) -> int | None:
    """How many of ``files``' entities the run's own train graph has (0: inductive); None when
    that graph is not here (a run trained elsewhere)."""
    try:
        trained = read_kg_dir(config["kg_dir"])
    except NSMError:
        return None
    return len(set(files.entities) & set(trained.entities))
