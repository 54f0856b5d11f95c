"""Would static shapes pay on CPU? The relational convolution in three formulations (issue 19).

A stack of ``--convs`` relational convolutions (width 48, planning's relations and bases, the
first from the 64 input features, the others residual) is trained on the same planning batches
(forward, backward of a sum, Adam), one formulation after another in alternating rounds:

* ``sparse``: the model's own :class:`~nsm.models.rgcn.ConfidenceRGCNConv` (tiles by relation,
  CSR products), eager: shapes change with every batch, so it cannot be compiled to one graph;
* ``dense``: one graph a row, ``x`` ``[B, n_max, C]`` and a normalised adjacency per directed
  relation ``[B, 2R, n_max, n_max]``; the bases mixed into the adjacency, then batched matmuls;
* ``padded``: the model's tiles with every batch padded to one budget of nodes, messages and
  tiles, the CSR products written as ``index_select`` and ``index_add``.

``dense`` and ``padded`` have static shapes, so each runs eager and under ``torch.compile``
(inductor). All three compute the same function with the same weights; the largest difference
of their outputs is printed first.

    python benchmarks/static_shapes.py [--batches 20] [--convs 6] [--rounds 3] [--no-compile] [--json]

Pure measurement: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader
from torch_geometric.utils import to_dense_batch

from nsm.config import DOMAINS
from nsm.data import load_dataset
from nsm.host import describe_host
from nsm.models.rgcn import TILE, ConfidenceRGCNConv, group_by_relation

HIDDEN = 48


class SparseStack(nn.Module):
    """The convolutions as the model runs them: one grouping of the edges, shared."""

    def __init__(self, convs: list[ConfidenceRGCNConv]):
        super().__init__()
        self.convs = nn.ModuleList(convs)

    def forward(self, batch: Batch) -> Tensor:
        tiles = group_by_relation(batch.edge_index, batch.edge_type, batch.edge_attr, batch.num_nodes,
                                  self.convs[0].num_relations)
        h = batch.x
        for i, conv in enumerate(self.convs):
            update = torch.relu(conv(h, batch.edge_index, batch.edge_type, batch.edge_attr, tiles))
            h = update if i == 0 else h + update
        return h


def residual_stack(convs: nn.ModuleList, h: Tensor, *graph: Tensor) -> Tensor:
    for i, conv in enumerate(convs):
        update = torch.relu(conv(h, *graph))
        h = update if i == 0 else h + update
    return h


class DenseConv(nn.Module):
    r""":math:`h' = \sum_b (\sum_r a_{rb} A_r) h V_b + W_0 h + b`, ``h`` ``[B, n, C_in]``, ``A`` ``[B, 2R, n, n]``."""

    def __init__(self, conv: ConfidenceRGCNConv):
        super().__init__()
        self.conv = conv

    def forward(self, h: Tensor, adjacency: Tensor) -> Tensor:
        mixed = torch.einsum("rk,brij->bkij", self.conv.coefficients, adjacency)  # [B, K, n, n]
        summed = mixed @ h.unsqueeze(1)  # [B, K, n, C_in]
        return torch.einsum("bkic,cko->bio", summed, self.conv.bases) + self.conv.root(h)


class PaddedConv(nn.Module):
    """The tiled convolution with the CSR products as ``index_select`` / ``index_add``."""

    def __init__(self, conv: ConfidenceRGCNConv):
        super().__init__()
        self.conv = conv

    def forward(self, h: Tensor, source: Tensor, slot: Tensor, weight: Tensor, tile_relation: Tensor,
                slot_target: Tensor) -> Tensor:
        conv = self.conv
        messages = h.index_select(0, source) * weight.unsqueeze(-1)
        summed = h.new_zeros(tile_relation.numel() * TILE, conv.in_channels).index_add(0, slot, messages)
        weights = conv.relation_weights().index_select(0, tile_relation)
        transformed = torch.bmm(summed.view(-1, TILE, conv.in_channels), weights).view(-1, conv.out_channels)
        return h.new_zeros(h.size(0), conv.out_channels).index_add(0, slot_target, transformed) + conv.root(h)


class StaticStack(nn.Module):
    def __init__(self, convs: list[nn.Module]):
        super().__init__()
        self.convs = nn.ModuleList(convs)

    def forward(self, x: Tensor, *graph: Tensor) -> Tensor:
        return residual_stack(self.convs, x, *graph)


def dense_inputs(batch: Batch, num_relations: int, max_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """``x`` ``[B, n, F]``, the adjacency ``[B, 2R, n, n]`` (entry ``c / |N_i^{r,d}|`` for a message
    ``j → i``) and the mask of real nodes ``[B, n]``."""
    x, mask = to_dense_batch(batch.x, batch.batch, max_num_nodes=max_nodes)
    local = torch.arange(batch.num_nodes) - batch.ptr[batch.batch]
    graph = batch.batch[batch.edge_index[0]]
    subject, obj = local[batch.edge_index[0]], local[batch.edge_index[1]]
    index = (torch.cat([graph, graph]), torch.cat([batch.edge_type, batch.edge_type + num_relations]),
             torch.cat([obj, subject]), torch.cat([subject, obj]))
    shape = (mask.size(0), 2 * num_relations, max_nodes, max_nodes)
    confidence = batch.edge_attr.float().repeat(2)
    adjacency = torch.zeros(shape).index_put_(index, confidence, accumulate=True)
    messages = torch.zeros(shape).index_put_(index, torch.ones_like(confidence), accumulate=True)
    return x, adjacency / messages.sum(-1, keepdim=True).clamp_min(1), mask


def padded_inputs(batch: Batch, num_relations: int, budget: dict[str, int]) -> tuple[Tensor, ...]:
    """The batch's tiles as index tensors, padded to ``budget``'s nodes, messages and tiles; padding
    messages weigh 0, padding slots sum into one spare node row (the last)."""
    tiles = group_by_relation(batch.edge_index, batch.edge_type, batch.edge_attr, batch.num_nodes, num_relations)
    gather = tiles.gather.to_sparse_coo().coalesce()
    (slot, source), weight = gather.indices(), gather.values()
    target, target_slot = tiles.scatter.to_sparse_coo().coalesce().indices()
    nodes, messages, num_tiles = budget["nodes"], budget["messages"], budget["tiles"]
    x = batch.x.new_zeros(nodes, batch.x.size(1))
    x[:batch.num_nodes] = batch.x

    def padded(values: Tensor, size: int, fill: float = 0) -> Tensor:
        return torch.cat([values, values.new_full((size - values.numel(),), fill)])

    slot_target = torch.full((tiles.gather.size(0),), nodes - 1, dtype=torch.long)
    slot_target[target_slot] = target
    return (x, padded(source, messages), padded(slot, messages), padded(weight, messages),
            padded(tiles.relation, num_tiles), padded(slot_target, num_tiles * TILE, nodes - 1))


def budget_of(batches: list[Batch], num_relations: int) -> dict[str, int]:
    """The largest batch's nodes (+1 spare row), messages and tiles."""
    sizes = [group_by_relation(b.edge_index, b.edge_type, b.edge_attr, b.num_nodes, num_relations)
             for b in batches]
    return {"nodes": max(b.num_nodes for b in batches) + 1,
            "messages": max(t.gather.values().numel() for t in sizes),
            "tiles": max(t.relation.numel() for t in sizes)}


def train_rate(model: nn.Module, inputs: list[tuple], graphs: int) -> float:
    """Graphs a second of forward, backward (of the sum) and Adam over ``inputs``."""
    optimiser = torch.optim.Adam(model.parameters())
    start = time.perf_counter()
    for args in inputs:
        optimiser.zero_grad()
        model(*args).sum().backward()
        optimiser.step()
    return graphs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--convs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", default="data_cache")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    settings = DOMAINS["planning"]
    dataset = load_dataset("planning", args.data_root, "train", seed=0, node_feature_dim=settings.node_features,
                           num_samples=2000)
    graphs = [dataset[i][0] for i in range(args.batches * args.batch_size)]
    batches = list(DataLoader(graphs, batch_size=args.batch_size))
    num_relations, num_bases = dataset.num_relations, settings.num_bases
    features = batches[0].x.size(1)
    convs = [ConfidenceRGCNConv(features if i == 0 else HIDDEN, HIDDEN, num_relations, num_bases)
             for i in range(args.convs)]
    max_nodes = max(int(torch.bincount(b.batch).max()) for b in batches)
    budget = budget_of(batches, num_relations)

    variants: dict[str, tuple[nn.Module, list[tuple]]] = {
        "sparse": (SparseStack(copy.deepcopy(convs)), [(b,) for b in batches])}
    dense = [dense_inputs(b, num_relations, max_nodes) for b in batches]
    padded = [padded_inputs(b, num_relations, budget) for b in batches]
    for name, wrap, inputs in (("dense", DenseConv, [d[:2] for d in dense]), ("padded", PaddedConv, padded)):
        variants[name] = (StaticStack([wrap(c) for c in copy.deepcopy(convs)]), inputs)
        if not args.no_compile:
            variants[f"{name} compiled"] = (torch.compile(StaticStack([wrap(c) for c in copy.deepcopy(convs)])),
                                            inputs)

    # The same function: outputs of the real nodes, against the sparse stack's.
    with torch.no_grad():
        reference = variants["sparse"][0](batches[0])
        outputs = {"dense": variants["dense"][0](*dense[0][:2])[dense[0][2]],
                   "padded": variants["padded"][0](*padded[0])[:batches[0].num_nodes]}
    differences = {name: float((out - reference).abs().max()) for name, out in outputs.items()}

    compile_s = {}
    for name, (model, inputs) in variants.items():  # warm-up; the compiled ones compile here
        start = time.perf_counter()
        model(*inputs[0]).sum().backward()
        compile_s[name] = time.perf_counter() - start
    graph_count = args.batches * args.batch_size
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (model, inputs) in variants.items():
            rates[name].append(train_rate(model, inputs, graph_count))
    report = {"host": describe_host(), "threads": args.threads, "convs": args.convs, "batch_size": args.batch_size,
              "batches": args.batches, "max_nodes": max_nodes, "budget": budget,
              "max_difference_from_sparse": differences, "first_step_s": compile_s, "train_graphs_per_s": rates}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"planning, batch {args.batch_size}, {args.convs} convolutions, {args.threads} thread(s); "
          f"dense pads to {max_nodes} nodes a graph, padded to {budget}")
    print("largest difference from sparse: " + ", ".join(f"{n} {d:.1e}" for n, d in differences.items()))
    for name, values in rates.items():
        print(f"{name:>16}: {' / '.join(f'{v:,.0f}' for v in values)} graphs/s (first step {compile_s[name]:.1f} s)")


if __name__ == "__main__":
    main()
