import pytest
import torch

from nsm.data import load_dataset
from nsm.data.base import TripleDataset, split_sizes
from nsm.data.graph import Sample, sample_to_data
from nsm.data.triples import DomainSchema, SemanticTriple, Vocabulary
from nsm.errors import NSMError

SCHEMA = DomainSchema(
    name="toy", relations=("likes", "part_of"), node_types={"item": 1, "group": 2, "goal": 3},
    num_relations=4, extra_features=("weight",),
)


def toy_sample(label: int = 1) -> Sample:
    return Sample(
        triples=[SemanticTriple("a", "likes", "b", 0.9, 1), SemanticTriple("b", "part_of", "g", 0.5, 2)],
        node_types={"a": "item", "b": "item", "g": "group"},
        label=label, reason="toy", extras={"a": (0.25,)},
    )


def test_triple_validation():
    with pytest.raises(ValueError, match="confidence"):
        SemanticTriple("a", "r", "b", 1.5)
    with pytest.raises(ValueError, match="level"):
        SemanticTriple("a", "r", "b", 0.5, 4)
    with pytest.raises(ValueError, match="subject"):
        SemanticTriple("", "r", "b")


def test_vocabulary_ids_are_stable_and_unknown_names_fail():
    vocab = Vocabulary(["x", "y"], kind="relation")
    assert vocab.id("y") == 1 and vocab.name(0) == "x" and len(vocab) == 2
    with pytest.raises(ValueError, match="unknown relation 'z'"):
        vocab.id("z")


def test_sample_to_data_fields():
    data = sample_to_data(toy_sample(), SCHEMA, node_feature_dim=16)
    assert data.x.shape == (3, 16)
    assert data.edge_index.tolist() == [[0, 1], [1, 2]]
    assert data.edge_type.tolist() == [0, 1]
    assert torch.allclose(data.edge_attr, torch.tensor([0.9, 0.5]))
    assert data.node_level.tolist() == [1, 1, 2]
    assert data.y.tolist() == [1]
    # type one-hot, level one-hot, extras; nothing identifies a node beyond that
    assert data.x[0, :7].tolist() == [1, 0, 0, 1, 0, 0, 0.25]
    assert torch.equal(data.x[1], data.x[1]) and data.x[1, :7].tolist() == [1, 0, 0, 1, 0, 0, 0]
    assert data.x[:, 7:].abs().sum() == 0


def test_record_round_trip():
    sample = toy_sample()
    assert Sample.from_record(sample.to_record()) == sample


def test_feature_dim_too_small():
    with pytest.raises(ValueError, match="too small"):
        sample_to_data(toy_sample(), SCHEMA, node_feature_dim=4)


def test_split_sizes_even_and_total():
    sizes = split_sizes(1000)
    assert all(v % 2 == 0 for v in sizes.values())
    assert sum(sizes.values()) <= 1000 and sizes["train"] > sizes["val"]


class ToyDataset(TripleDataset):
    schema = SCHEMA
    calls = 0

    def __init__(self, root, split, num=20, seed=0):
        super().__init__(root, split, seed=seed, num=num)

    def generate(self):
        type(self).calls += 1
        out = {}
        for split, n in split_sizes(self.params["num"]).items():
            out[split] = []
            for i in range(n):
                s = toy_sample(i % 2)
                s.triples = s.triples + [SemanticTriple("a", "likes", f"{split}{i}", 1.0, 1)]
                s.node_types = dict(s.node_types, **{f"{split}{i}": "item"})
                out[split].append(s)
        return out


def test_dataset_caches_by_parameters(tmp_path):
    ToyDataset.calls = 0
    train = ToyDataset(tmp_path, "train", num=20)
    data, label = train[0]
    assert label.dtype == torch.long and label.shape == (1,)
    ToyDataset(tmp_path, "test", num=20)
    assert ToyDataset.calls == 1  # second split served from the cache
    ToyDataset(tmp_path, "test", num=40)
    assert ToyDataset.calls == 2  # other parameters: never the old cache


@pytest.mark.parametrize("domain, params", [
    ("planning", {"num_samples": 40}), ("causal", {"num_samples": 40}),
    ("kg", {"num_entities": 60, "num_triples": 400, "num_samples": 40}),  # extras and queries
])
def test_cached_graphs_are_the_graphs_of_the_samples(domain, params, tmp_path):
    """A cached load builds its graphs from the graph cache alone; they are sample_to_data's."""
    load_dataset(domain, tmp_path, "train", **params)
    cached = load_dataset(domain, tmp_path, "test", **params)
    assert cached._samples is None  # no sample read to build the graphs
    assert cached.labels == [s.label for s in cached.samples]
    for graph, sample in zip(cached.graphs, cached.samples, strict=True):
        expected = sample_to_data(sample, cached.schema, 64)
        assert graph.keys() == expected.keys() and graph.num_nodes == expected.num_nodes
        for key in expected.keys():
            if torch.is_tensor(expected[key]):
                assert torch.equal(graph[key], expected[key]) and graph[key].dtype == expected[key].dtype, key


def test_dataset_bad_split(tmp_path):
    with pytest.raises(NSMError, match="unknown split"):
        ToyDataset(tmp_path, "dev")


def test_unwritable_cache_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(NSMError, match="cannot write the data cache"):
        ToyDataset(blocker, "train")
