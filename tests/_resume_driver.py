"""A tiny but complete training run, for the trainer and exact-resume tests.

Run as a script it does what a real job does after a restart — build everything, ``resume``,
``train`` — and then writes the final weights and history, so a test can SIGKILL it mid-training,
start it again and compare with an uninterrupted run::

    python tests/_resume_driver.py --checkpoint-dir DIR --out FILE.pt --epochs 8
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GraphConv, global_mean_pool

from nsm.models.confidence.temperature import TemperatureScheduler
from nsm.training import NSMTrainer

NODE_FEATURES = 3
TIMING_KEYS = ("time_s", "graphs_per_s")


class TinyGraphModel(nn.Module):
    """Two ``GraphConv`` layers with dropout and mean pooling; returns the trainer's dict.

    ``logits = head(mean_pool(h)) / temperature`` ``[B, num_classes]``; ``cycle_loss`` is the MSE of
    decoding ``x`` back from ``h``, and ``recon_error_l1`` its normalised error ‖x̂ − x‖ / ‖x‖.
    """

    def __init__(self, node_features: int = NODE_FEATURES, num_classes: int = 2, hidden: int = 16,
                 dropout: float = 0.3):
        super().__init__()
        self.num_classes = num_classes
        self.temperature = 1.0
        self.dropout = dropout
        self.conv1 = GraphConv(node_features, hidden)
        self.conv2 = GraphConv(hidden, hidden)
        self.decoder = nn.Linear(hidden, node_features)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, edge_type, edge_attr=None, batch=None, **_):
        h = F.relu(self.conv1(x, edge_index, edge_weight=edge_attr))
        h = F.dropout(h, self.dropout, self.training)
        h = F.relu(self.conv2(h, edge_index, edge_weight=edge_attr))
        x_hat = self.decoder(h)
        logits = self.head(global_mean_pool(h, batch)) / self.temperature
        return {"logits": logits, "cycle_loss": F.mse_loss(x_hat, x),
                "recon_error_l1": (x_hat - x).norm() / x.norm()}


def annealing() -> TemperatureScheduler:
    """Temperature 1 for one epoch, then ×0.8 per epoch down to 0.5: 1, 1, 0.8, 0.64, 0.512, 0.5, ..."""
    return TemperatureScheduler(initial_temp=1.0, final_temp=0.5, decay_rate=0.8, warmup_epochs=1)


def make_graphs(num_graphs: int, seed: int = 0) -> list[tuple[Data, torch.Tensor]]:
    """``(Data, label [1])`` items like our datasets': random graphs of 4–9 nodes with three one-hot
    types; label 1 iff some type-0 node has an edge to a type-1 node (a structural rule)."""
    generator = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(num_graphs):
        num_nodes = int(torch.randint(4, 10, (1,), generator=generator))
        node_type = torch.randint(0, NODE_FEATURES, (num_nodes,), generator=generator)
        edge_index = torch.randint(0, num_nodes, (2, num_nodes + 2), generator=generator)
        label = ((node_type[edge_index[0]] == 0) & (node_type[edge_index[1]] == 1)).any().long().view(1)
        items.append((Data(x=F.one_hot(node_type, NODE_FEATURES).float(), edge_index=edge_index,
                           edge_type=torch.zeros(edge_index.size(1), dtype=torch.long),
                           edge_attr=torch.rand(edge_index.size(1), generator=generator), y=label), label))
    return items


def build_run(checkpoint_dir, seed: int = 0, loader_generator: bool = True, num_graphs: int = 96,
              **trainer_kwargs) -> tuple[NSMTrainer, DataLoader, DataLoader]:
    """A trainer over the tiny model with dropout, a shuffled loader, an LR and a temperature
    scheduler. ``seed`` seeds the model's initialisation and the shuffling."""
    torch.manual_seed(seed)
    train_items, val_items = make_graphs(num_graphs, seed=1), make_graphs(num_graphs // 4, seed=2)
    generator = torch.Generator().manual_seed(seed) if loader_generator else None
    train_loader = DataLoader(train_items, batch_size=16, shuffle=True, generator=generator)
    val_loader = DataLoader(val_items, batch_size=16)
    model = TinyGraphModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = NSMTrainer(
        model=model, optimizer=optimizer, device="cpu", cycle_loss_weight=0.05, gradient_clip=1.0,
        temp_scheduler=annealing(), checkpoint_dir=checkpoint_dir, log_interval=10,
        use_wandb=False, use_tensorboard=False,
        lr_scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.7), **trainer_kwargs,
    )
    return trainer, train_loader, val_loader


def without_timings(history: dict) -> dict:
    """History minus wall-clock fields, the only part two identical runs may differ in."""
    return {split: [{k: v for k, v in epoch.items() if k not in TIMING_KEYS} for epoch in epochs]
            for split, epochs in history.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--out", required=True, help="where the final weights and history go")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in tests/conftest.py
    trainer, train_loader, val_loader = build_run(args.checkpoint_dir)
    print(f"start epoch {trainer.resume(args.checkpoint_dir)}", flush=True)
    history = trainer.train(train_loader, val_loader, epochs=args.epochs, task_type="classification")
    torch.save({"weights": trainer.model.state_dict(), "history": without_timings(history)}, args.out)


if __name__ == "__main__":
    main()
