"""From a run configuration (:mod:`nsm.config`) to the parts a run is made of: its device, seeded
random state, datasets, loaders and model. The job, the evaluator and the analysis tools build
them here, so a run is assembled the same way wherever it is trained or read back.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch_geometric.loader import DataLoader

from nsm.config import KGE_MODELS
from nsm.data import load_dataset
from nsm.errors import NSMError
from nsm.models import build_model


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise NSMError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_datasets(config: dict[str, Any], splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, Any]:
    """The run's datasets (generated once, then served from the data cache)."""
    extra = {"kg_dir": config["kg_dir"]} if config["domain"] == "kg" and config.get("kg_dir") else {}
    datasets = {
        split: load_dataset(config["domain"], config["data_root"], split, seed=config["seed"],
                            node_feature_dim=config["model_args"]["node_features"], **config["data"], **extra)
        for split in splits
    }
    if config["domain"] == "triples" and config.get("relations") is not None:
        check_vocabulary(config, next(iter(datasets.values())))
    return datasets


def check_vocabulary(config: dict[str, Any], dataset: Any) -> None:
    """A triples run's model knows the relations, node types, node features and classes of the data
    it was sized to."""
    found = {"relations": list(dataset.schema.relations), "node_types": dict(dataset.schema.node_types),
             "extra_features": list(dataset.schema.extra_features), "classes": list(dataset.classes)}
    for name, values in found.items():
        if config.get(name, []) != values:  # a run from before node features had none
            raise NSMError(f"{config['data']['data_path']} has other {name.replace('_', ' ')} than the run was "
                           f"trained on ({len(values)} now, {len(config[name])} then): the data changed since")


def build_loaders(config: dict[str, Any], datasets: dict[str, Any], device: torch.device) -> dict[str, DataLoader]:
    """DataLoaders: train shuffled with its own generator (saved in checkpoints for exact resume)."""
    workers = config["num_workers"]
    common = {"batch_size": config["batch_size"], "num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        common.update(persistent_workers=True, prefetch_factor=config.get("prefetch_factor", 2))
    return {
        split: DataLoader(dataset, shuffle=True, generator=torch.Generator().manual_seed(config["seed"]), **common)
        if split == "train" else DataLoader(dataset, shuffle=False, **common)
        for split, dataset in datasets.items()
    }


def build_model_for(config: dict[str, Any]) -> torch.nn.Module:
    """The run's model: the NSM or a graph baseline, or a KG embedding (``model_args`` sized to
    its files by the job)."""
    if config["model"] in KGE_MODELS:
        from nsm.models.kge import build_kge

        args = config["model_args"]
        return build_kge(config["model"], args["num_entities"], args["num_relations"], args["hidden_channels"])
    # A run saved before model_args had "hidden" (issue 19) was as wide as its node features.
    args = {"hidden": config["model_args"]["node_features"], **config["model_args"]}
    return build_model(config["model"], **args)
