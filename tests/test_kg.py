import random
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from nsm.data.base import split_sizes
from nsm.data.graph import sample_to_data
from nsm.data.domains.kg.generator import WorldGraph, synthetic_samples
from nsm.data.domains.kg.rules import (
    RULES, Composition, Implication, Inverse, KnowledgeGraph, Symmetric, derivation, twin_relations,
)
from nsm.data.domains.kg.schema import QUERY_RELATIONS, SYNTHETIC_SCHEMA
from nsm.data.domains.kg.tsv import FileGraph, read_kg_dir
from nsm.data.domains.kg.world import generate_world, world_queries
from nsm.data.knowledge_graph_dataset import KnowledgeGraphTripleDataset
from nsm.errors import NSMError
from nsm.analysis.leakage import bag_of_types_accuracy

TINY_KG = Path(__file__).parent / "data" / "tiny_kg"
SMALL = dict(num_entities=60, num_triples=400, num_samples=200)
SPLITS = ("train", "val", "test")


# --- rules and their closure --------------------------------------------------------------------

def test_rule_closure_on_a_hand_made_kg():
    names = ["ann", "bob", "cid", "dee", "eve", "rome", "italy", "acme"]
    ann, bob, cid, dee, eve, rome, italy, acme = range(len(names))
    base = [(ann, "parent_of", bob), (bob, "parent_of", cid), (bob, "parent_of", eve), (bob, "married_to", dee),
            (ann, "born_in", rome), (rome, "capital_of", italy), (acme, "founded_by", dee),
            (bob, "works_for", acme)]
    kg = KnowledgeGraph(facts=base)
    assert (bob, "child_of", ann) in kg                                   # inverse
    assert (dee, "married_to", bob) in kg                                 # symmetric
    assert (ann, "grandparent_of", cid) in kg                             # composition
    assert (cid, "sibling_of", eve) in kg and (eve, "sibling_of", cid) in kg
    assert (cid, "sibling_of", cid) not in kg                             # nobody is their own sibling
    assert (ann, "parent_in_law_of", dee) in kg
    # capital_of ⇒ located_in, which then completes born_in ∘ located_in ⇒ nationality
    assert (rome, "located_in", italy) in kg and (ann, "nationality", italy) in kg
    # founded_by ⇔ founder_of ⇒ works_for, then works_for ∘ employs ⇒ colleague_of
    assert (dee, "works_for", acme) in kg and (bob, "colleague_of", dee) in kg
    assert (cid, "grandparent_of", ann) not in kg and (ann, "nationality", rome) not in kg
    assert KnowledgeGraph(facts=reversed(base)).facts == kg.facts         # order does not matter
    assert derivation((ann, "nationality", italy), kg, names) == \
        "born_in(ann, rome) ∧ located_in(rome, italy) ⇒ nationality(ann, italy)"
    assert derivation((cid, "nationality", italy), kg, names) is None


def test_generated_world_is_closed_under_every_rule():
    facts = generate_world(random.Random(3), 60, 400, "w").kg.facts
    tails = defaultdict(set)
    for h, r, t in facts:
        tails[r, h].add(t)
    for rule in RULES:
        for h, r, t in facts:
            if isinstance(rule, Inverse) and r in rule.head_relations:
                assert (t, rule.inverse if r == rule.relation else rule.relation, h) in facts
            elif isinstance(rule, Symmetric) and r == rule.relation:
                assert (t, r, h) in facts
            elif isinstance(rule, Implication) and r == rule.body:
                assert (h, rule.head, t) in facts
            elif isinstance(rule, Composition) and r == rule.first:
                assert all((h, rule.head, z) in facts for z in tails[rule.second, t] if z != h)


def test_nothing_but_its_twin_is_derived_from_a_query_fact():
    hidden = {twin for relation in QUERY_RELATIONS for twin in twin_relations(relation)}
    deriving = [rule for rule in RULES if isinstance(rule, (Implication, Composition))]
    assert all(not hidden & set(rule.body_relations) for rule in deriving)


def test_relations_fit_the_budget():
    assert 20 <= len(SYNTHETIC_SCHEMA.relations) <= SYNTHETIC_SCHEMA.num_relations == 66


# --- samples of one world, checked against the world's closure -----------------------------------

@pytest.fixture(scope="module")
def world_and_samples():
    rng = random.Random("test_kg")
    world = generate_world(rng, 80, 700, "w")
    queries = world_queries(world, 80, rng)
    samples = WorldGraph(world, queries, 2, rng).samples(queries, rng, taken=set())
    return world, samples


def ids(world, triple):
    head, relation, tail = triple
    return world.names.index(head), relation, world.names.index(tail)


def test_positives_hold_by_a_rule_body_in_the_subgraph_and_hide_the_answer(world_and_samples):
    world, samples = world_and_samples
    positives = samples[::2]
    assert positives and all(s.label == 1 for s in positives)
    for sample in positives:
        head, relation, tail = sample.query
        edges = {(t.subject, t.predicate, t.object) for t in sample.triples}
        assert ids(world, sample.query) in world.kg
        assert not any(r in twin_relations(relation) and {head, tail} & {s, o} for s, r, o in edges)
        bodies = [rule for rule in RULES if isinstance(rule, Composition) and rule.head == relation]
        assert any((head, rule.first, m) in edges and (m, rule.second, tail) in edges
                   for rule in bodies for m in sample.node_types)
        assert sample.reason.startswith("holds: ") and f"⇒ {relation}({head}, {tail})" in sample.reason


def test_negatives_are_false_type_consistent_and_near(world_and_samples):
    world, samples = world_and_samples
    near = 0
    for positive, negative in zip(samples[::2], samples[1::2]):
        assert negative.label == 0 and negative.reason.startswith("false: corrupted ")
        assert ids(world, negative.query) not in world.kg
        head, relation, tail = negative.query
        assert relation == positive.query[1]
        (replaced, new), = [(old, new) for old, new in zip(positive.query[::2], (head, tail)) if old != new]
        assert world.types[world.names.index(new)] == world.types[world.names.index(replaced)]
        assert not any(t.predicate == relation and {head, tail} & {t.subject, t.object} for t in negative.triples)
        near += negative.extras[tail][0] < 1.0  # the tail is within `hops` of the head
    assert near >= 0.9 * len(samples) / 2


def test_one_hop_subgraphs_still_hold_every_rule_body():
    rng = random.Random("one hop")
    world = generate_world(rng, 60, 400, "w")
    queries = world_queries(world, 30, rng)
    samples = WorldGraph(world, queries, 1, rng).samples(queries, rng, taken=set())
    # The oracle refuses a positive whose rule body is not in its subgraph.
    assert len(samples) == 2 * len(queries) and sum(s.label for s in samples) == len(queries)


def test_no_query_is_an_edge_of_any_graph(world_and_samples):
    _, samples = world_and_samples
    queries = {s.query for s in samples if s.label == 1}
    queries |= {(t, r, h) for h, r, t in queries}  # symmetric query relations: their twin too
    assert all((t.subject, t.predicate, t.object) not in queries for s in samples for t in s.triples)


# --- the dataset --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("kg_cache")
    return {split: KnowledgeGraphTripleDataset(root, split, **SMALL) for split in SPLITS}


def test_splits_are_balanced_and_disjoint(synthetic):
    keys = {}
    for split, dataset in synthetic.items():
        assert len(dataset) > 0 and dataset.labels.count(1) == dataset.labels.count(0)
        keys[split] = {s.key() for s in dataset.samples}
        assert not {s.query for s in dataset.samples} & {s.query for o in SPLITS if o != split
                                                         for s in synthetic[o].samples}
    assert not (keys["train"] & keys["val"] or keys["train"] & keys["test"] or keys["val"] & keys["test"])


def test_test_queries_never_appear_as_edges_in_any_split(synthetic):
    test_queries = {s.query for s in synthetic["test"].samples}
    test_queries |= {(t, r, h) for h, r, t in test_queries}
    for dataset in synthetic.values():
        edges = {(t.subject, t.predicate, t.object) for s in dataset.samples for t in s.triples}
        assert not edges & test_queries


def test_items_carry_the_query_and_the_feature_layout(synthetic):
    dataset = synthetic["train"]
    data, label = dataset[0]
    assert label.dtype == torch.long and label.shape == (1,) and torch.equal(label, data.y)
    assert data.x.shape[1] == 64
    assert data.head_index.shape == data.tail_index.shape == data.query_relation.shape == (1,)
    head_col = len(SYNTHETIC_SCHEMA.node_types) + 3
    for data, _ in (dataset[i] for i in range(len(dataset))):
        assert int(data.edge_type.max()) < 66 and set(data.node_level.tolist()) == {1, 2, 3}
        assert 10 <= data.num_nodes <= 60
        # double-radius labels: distance 0 marks the head and the tail, and nothing else
        assert data.x[data.head_index, head_col].item() == 0 and data.x[data.tail_index, head_col + 1].item() == 0
        assert int((data.x[:, head_col] == 0).sum()) == int((data.x[:, head_col + 1] == 0).sum()) == 1
    assert dataset.samples[0].query[1] == SYNTHETIC_SCHEMA.relations[int(dataset[0][0].query_relation)]


def test_generation_is_deterministic_for_a_seed(synthetic):
    sizes = (SMALL["num_samples"], SMALL["num_entities"], SMALL["num_triples"], 2)
    again = synthetic_samples(*sizes, seed=0)
    assert [s.to_record() for s in again["val"]] == [s.to_record() for s in synthetic["val"].samples]
    other = synthetic_samples(*sizes, seed=1)
    assert [s.to_record() for s in other["val"]] != [s.to_record() for s in again["val"]]


@pytest.mark.parametrize("arguments, message", [
    (dict(num_entities=10), "num_entities must be at least"),
    (dict(num_samples=0), "num_samples must be a positive integer"),
    (dict(hops=0), "hops must be a positive integer"),
    (dict(seed=-1), "seed must be an integer from 0 to"),
])
def test_bad_parameters(tmp_path, arguments, message):
    with pytest.raises(NSMError, match=message):
        KnowledgeGraphTripleDataset(tmp_path, "train", **{**SMALL, **arguments})


# --- real knowledge graphs ----------------------------------------------------------------------

def read_triples(path: Path) -> set[tuple[str, str, str]]:
    return {tuple(line.split("\t")) for line in path.read_text().splitlines()}


def test_tiny_kg_builds_every_split(tmp_path):
    files = {split: read_triples(TINY_KG / name)
             for split, name in zip(SPLITS, ("train.txt", "valid.txt", "test.txt"))}
    known = set().union(*files.values())
    caps = split_sizes(400)  # every valid/test triple is a query; the larger train file is capped
    assert caps["val"] // 2 >= len(files["val"]) and caps["train"] // 2 < len(files["train"])
    for split in SPLITS:
        dataset = KnowledgeGraphTripleDataset(tmp_path, split, num_samples=400, kg_dir=TINY_KG)
        assert len(dataset) == 2 * min(len(files[split]), caps[split] // 2)
        assert {s.query for s in dataset.samples if s.label == 1} <= files[split]
        assert all(s.query not in known for s in dataset.samples if s.label == 0)
        for sample in dataset.samples:
            assert set(sample.node_types.values()) == {"entity"}
            edges = {(t.subject, t.predicate, t.object) for t in sample.triples}
            assert edges <= files["train"] and sample.query not in edges
        data, label = dataset[0]
        assert data.x.shape[1] == 64 and int(data.edge_type.max()) < 66 and label.shape == (1,)


@pytest.fixture
def kg_copy(tmp_path):
    return Path(shutil.copytree(TINY_KG, tmp_path / "tiny_kg"))


def test_malformed_kg_dirs_are_refused_with_file_and_line(tmp_path, kg_copy):
    def refused(match: str) -> None:
        with pytest.raises(NSMError, match=match):
            KnowledgeGraphTripleDataset(tmp_path / "cache", "train", kg_dir=kg_copy)

    train = (kg_copy / "train.txt").read_text().splitlines()
    test = (kg_copy / "test.txt").read_text().splitlines()
    known_entity = train[0].split("\t")[2]
    (kg_copy / "test.txt").write_text("\n".join(test + [f"nobody\tnationality\t{known_entity}"]) + "\n")
    refused(rf"test\.txt line {len(test) + 1}: entity 'nobody' does not occur in .*train\.txt")
    (kg_copy / "test.txt").unlink()
    refused(r"cannot read .*test\.txt")
    (kg_copy / "train.txt").write_text("\n".join(train[:2] + ["person_01\tborn_in"] + train[3:]))
    refused(r"train\.txt line 3: expected 3 non-empty tab-separated fields")
    (kg_copy / "train.txt").write_text("")
    refused(r"train\.txt is empty")
    with pytest.raises(NSMError, match="does not exist"):
        KnowledgeGraphTripleDataset(tmp_path / "cache", "train", kg_dir=tmp_path / "missing")


def test_test_triples_also_in_train_are_not_test_queries(tmp_path, kg_copy):
    duplicate = (kg_copy / "test.txt").read_text().splitlines()[0]
    with open(kg_copy / "train.txt", "a") as train:
        train.write(duplicate + "\n")
    dataset = KnowledgeGraphTripleDataset(tmp_path, "test", num_samples=400, kg_dir=kg_copy)
    assert tuple(duplicate.split("\t")) not in {s.query for s in dataset.samples}
    assert len(dataset) == 2 * (len(read_triples(TINY_KG / "test.txt")) - 1)


def test_edited_kg_files_are_not_served_from_a_stale_cache(tmp_path, kg_copy, monkeypatch):
    generated = []
    original = KnowledgeGraphTripleDataset.generate
    monkeypatch.setattr(KnowledgeGraphTripleDataset, "generate",
                        lambda self: generated.append(1) or original(self))
    def build(split: str) -> KnowledgeGraphTripleDataset:
        return KnowledgeGraphTripleDataset(tmp_path, split, num_samples=400, kg_dir=kg_copy)

    first = build("test")
    build("val")
    assert len(generated) == 1  # unchanged files: the cache serves the second split
    # Same size, new content: two lines swap places, and the samples follow the file.
    lines = (kg_copy / "test.txt").read_text().splitlines()
    (kg_copy / "test.txt").write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    swapped = build("test")
    assert len(generated) == 2 and swapped.samples[0].query == first.samples[2].query
    (kg_copy / "test.txt").write_text("\n".join(lines[:-1]) + "\n")
    assert len(build("test")) == len(first) - 2


# --- label leakage ------------------------------------------------------------------------------

@pytest.mark.rounding
@pytest.mark.slow
def test_bag_of_types_stays_near_chance(tmp_path):
    train, test = (KnowledgeGraphTripleDataset(tmp_path, split, num_samples=2000) for split in ("train", "test"))
    result = bag_of_types_accuracy(train, test)
    print(f"kg bag-of-types: train {result['train_accuracy']:.3f}, best test {result['best_test_accuracy']:.3f}")
    assert result["best_test_accuracy"] <= 0.65


def test_ranking_graph_of_a_triple_is_its_sample_graph(tmp_path):
    """FileGraph.query_graph (the fast path ranking takes) builds exactly sample_to_data(query_sample)."""
    files = read_kg_dir(TINY_KG)
    graph = FileGraph(files, 2, random.Random(0))
    facts = list(files.triples["test"])[:5] + list(files.triples["train"])[:5] + [(0, "nationality", 7)]
    for fact in facts:
        fast, slow = graph.query_graph(fact, files.schema, 64), sample_to_data(graph.query_sample(fact), files.schema, 64)
        assert fast.keys() == slow.keys()
        assert all(torch.equal(fast[key], slow[key]) for key in slow.keys() if torch.is_tensor(slow[key]))
        assert int(fast.y) == int(fact in graph.known)


def test_a_real_kg_subgraph_hides_only_the_query_triple(tmp_path):
    """GraIL's rule: a train positive loses its own edge, nothing else (its reverse edge stays)."""
    train = TINY_KG / "train.txt"
    lines = train.read_text().splitlines()
    head, relation, tail = lines[0].split("\t")
    kg = tmp_path / "kg"
    shutil.copytree(TINY_KG, kg)
    (kg / "train.txt").write_text("\n".join(lines + [f"{tail}\t{relation}\t{head}"]) + "\n")
    files = read_kg_dir(kg)
    ids = {name: i for i, name in enumerate(files.entities)}
    graph = FileGraph(files, 2, random.Random(0))
    query = (ids[head], relation, ids[tail])
    sample = graph.query_sample(query)
    edges = {(t.subject, t.predicate, t.object) for t in sample.triples}
    assert (head, relation, tail) not in edges and (tail, relation, head) in edges
    assert sample.label == 1


def test_relation_vocabulary_comes_from_the_files(tmp_path):
    kg = tmp_path / "many"
    kg.mkdir()
    # 180 relations (FB15k-237-sized): a chain a0 -r0-> a1 -r1-> ... with a parallel second chain.
    train = [f"a{i}\tr{i % 180}\ta{i + 1}" for i in range(400)] + [f"a{i}\tr{(i + 7) % 180}\ta{i + 2}" for i in range(398)]
    (kg / "train.txt").write_text("\n".join(train) + "\n")
    (kg / "valid.txt").write_text("a0\tr1\ta3\na5\tr2\ta9\n")
    (kg / "test.txt").write_text("a1\tr3\ta4\na6\tr4\ta8\n")
    files = read_kg_dir(kg)
    assert len(files.relations) == 180 and files.schema.num_relations == 180
    assert files.relations[:3] == ["r0", "r1", "r2"]  # in order of first appearance in train.txt
    # Evaluated with a run's vocabulary: the run's ids, any subset of its names, a new name refused.
    fixed = read_kg_dir(kg, relations=[f"r{i}" for i in reversed(range(200))])
    assert fixed.relations[0] == "r199" and fixed.schema.num_relations == 200
    with pytest.raises(NSMError, match=r"train\.txt line 1: relation 'r0' is not one of the 2 relations the model "
                                       r"was trained on \(x, y\)"):
        read_kg_dir(kg, relations=["x", "y"])
