"""Five nodes and four random ``points_to`` edges; label 1 iff ``start`` reaches ``goal``."""

import random

from nsm.data.base import SPLITS, split_sizes
from nsm.data.graph import Sample
from nsm.data.triples import SemanticTriple

NODES = ("start", "goal", "a", "b", "c")


def reaches(edges: list[tuple[str, str]], source: str = "start", target: str = "goal") -> bool:
    """The oracle: a walk along the edges from ``source`` to ``target``."""
    seen, frontier = {source}, [source]
    while frontier:
        node = frontier.pop()
        for head, tail in edges:
            if head == node and tail not in seen:
                seen.add(tail)
                frontier.append(tail)
    return target in seen


def random_sample(rng: random.Random) -> Sample:
    edges = rng.sample([(h, t) for h in NODES for t in NODES if h != t], 4)
    triples = [SemanticTriple(h, "points_to", t, 1.0, 1) for h, t in edges]
    triples += [SemanticTriple(node, "member_of", "group", 1.0, 2) for node in NODES]
    triples.append(SemanticTriple("group", "asked_of", "question", 1.0, 3))
    node_types = {"start": "start", "goal": "goal", "a": "item", "b": "item", "c": "item", "group": "group",
                  "question": "question"}
    label = int(reaches(edges))
    return Sample(triples, node_types, label, "start reaches goal" if label else "goal is out of reach")


def generate_splits(num_samples: int, seed: int) -> dict[str, list[Sample]]:
    """Each split half of each label, no graph twice."""
    rng = random.Random(seed)
    seen: set[tuple] = set()
    splits = {}
    for split in SPLITS:
        wanted = split_sizes(num_samples)[split] // 2
        by_label: dict[int, list[Sample]] = {0: [], 1: []}
        while min(len(samples) for samples in by_label.values()) < wanted:
            sample = random_sample(rng)
            if sample.key() not in seen and len(by_label[sample.label]) < wanted:
                seen.add(sample.key())
                by_label[sample.label].append(sample)
        splits[split] = by_label[0] + by_label[1]
        rng.shuffle(splits[split])
    return splits
