"""The seed's own code paths: its dataset constructors, collate function and model configs."""

import pytest
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from nsm.data.domains import DOMAINS
from nsm.data.causal_dataset import CausalTripleDataset
from nsm.data.knowledge_graph_dataset import KnowledgeGraphTripleDataset
from nsm.data.planning_dataset import PlanningTripleDataset
from nsm.models import NSMModel


def seed_collate(batch_list):
    """The seed's collate_fn, verbatim in behaviour: item[1].item() and a dict of tensors."""
    data_list = [item[0] for item in batch_list]
    labels = torch.tensor([item[1].item() for item in batch_list], dtype=torch.long)
    batched = Batch.from_data_list(data_list)
    return {"x": batched.x, "edge_index": batched.edge_index, "edge_type": batched.edge_type,
            "edge_attr": getattr(batched, "edge_attr", None), "batch": batched.batch, "y": labels}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("seed_api")
    return {
        "planning": PlanningTripleDataset(root=root, split="train", num_problems=100, seed=42),
        "causal": CausalTripleDataset(root=root, split="train", num_scenarios=100, num_treatments=10,
                                      num_symptoms=8, seed=42),
        "kg": KnowledgeGraphTripleDataset(root=root, split="train", num_entities=100, num_triples=500, seed=42),
    }


@pytest.mark.parametrize("domain", ["planning", "causal", "kg"])
def test_seed_collate_and_model_config(datasets, domain):
    torch.manual_seed(0)
    settings = DOMAINS[domain]
    dataset = datasets[domain]
    assert dataset[0][0].x.size(1) == 64 and int(dataset[0][0].edge_type.max()) < settings.num_relations
    batch = next(iter(DataLoader(dataset, batch_size=8, shuffle=False, collate_fn=seed_collate)))
    model = NSMModel(node_features=64, num_relations=settings.num_relations, num_classes=2,
                     num_bases=settings.num_bases, pool_ratio=settings.pool_ratio,
                     task_type=settings.task_type, num_levels=3)
    labels = batch.pop("y")
    out = model(**batch)
    assert out["logits"].shape == (8, 2)
    assert torch.isfinite(out["cycle_loss"]) and out["cycle_loss"].dim() == 0
    assert set(labels.tolist()) <= {0, 1}


def test_seed_kg_construction_uses_the_query(datasets):
    """NSMModel(64, 66, 2, 12, 0.13, 'link_prediction', 3) on real KG samples, query ends included."""
    torch.manual_seed(0)
    model = NSMModel(node_features=64, num_relations=66, num_classes=2, num_bases=12, pool_ratio=0.13,
                     task_type="link_prediction", num_levels=3)
    batch = Batch.from_data_list([datasets["kg"][i][0] for i in range(16)])
    inputs = dict(x=batch.x, edge_index=batch.edge_index, edge_type=batch.edge_type, edge_attr=batch.edge_attr,
                  batch=batch.batch)
    with_query = model(**inputs, head_index=batch.head_index, tail_index=batch.tail_index,
                       query_relation=batch.query_relation)
    assert with_query["logits"].shape == (16, 2) and torch.isfinite(with_query["cycle_loss"])
    swapped = model(**inputs, head_index=batch.tail_index, tail_index=batch.head_index,
                    query_relation=batch.query_relation)
    assert not torch.allclose(with_query["logits"], swapped["logits"])  # the readout reads h and t
