"""Training a KG embedding (:mod:`nsm.models.kge`) on a graph's triples: Adam on PyG's own loss,
which draws one corruption per true triple (see :meth:`KGEModel.random_sample`)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn.kge import KGEModel
from tqdm.auto import trange

from nsm.errors import NSMError
from nsm.models.kge import build_kge


def train_kge(name: str, triples: Tensor, num_entities: int, num_relations: int, *, epochs: int = 200,
              batch_size: int = 1024, lr: float = 0.01, hidden_channels: int = 100, seed: int = 0,
              device: str | torch.device = "cpu", progress: bool = False) -> KGEModel:
    """The KG embedding ``name`` trained for ``epochs`` passes over ``triples`` ``[N, 3]`` (long
    head id, relation id, tail id); the same for a seed on one host."""
    if triples.numel() == 0:
        raise NSMError(f"no triples to train {name} on")
    if triples.dim() != 2 or triples.size(1) != 3 or triples.dtype != torch.long:
        raise NSMError(f"triples must be a long tensor [N, 3] (head, relation, tail), not {triples.dtype} "
                       f"{list(triples.shape)}")
    entities, relations = triples[:, [0, 2]], triples[:, 1]
    if (entities.min() < 0 or entities.max() >= num_entities
            or relations.min() < 0 or relations.max() >= num_relations):
        raise NSMError(f"triple ids out of range: entities must be in [0, {num_entities}), relations in "
                       f"[0, {num_relations}); got entities {int(entities.min())}..{int(entities.max())}, "
                       f"relations {int(relations.min())}..{int(relations.max())}")

    torch.manual_seed(seed)  # the initial embeddings and the negative samples
    model = build_kge(name, num_entities, num_relations, hidden_channels).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    heads, relations, tails = triples.to(device).t()
    # The shuffle has its own generator, so the batches of a seed do not depend on the negatives drawn.
    loader = model.loader(heads, relations, tails, batch_size=batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(seed))

    model.train()
    for _ in trange(epochs, desc=f"training {name}", unit="epoch", disable=not progress):
        for h, r, t in loader:
            optimizer.zero_grad()
            loss = model.loss(h, r, t)
            loss.backward()
            optimizer.step()
    return model
