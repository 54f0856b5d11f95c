r"""WHAT's reconstruction of the nodes WHY dropped, beside two predictors that learn nothing (issue 21).

At each level :math:`l` WHY keeps some nodes and drops the others (:math:`D`); WHAT returns the
kept ones exactly, so its error is all in the dropped ones:

.. math::
    e_l = \|\hat h_D - h_D\| / \|h_D\|

over the dropped nodes of the whole split (Frobenius norms, sums of squares added over batches).
The same error of two predictors that learn nothing, from the level's true features :math:`h`:

* **neighbour mean**: a dropped node is the mean of its neighbours' features at that level (an
  edge in either direction, any relation; without a neighbour, zeros);
* **type mean**: a dropped node is the mean features of the batch's nodes of its type at that
  level (a kept node has its type at the next level).

``recon_vs_baseline_l<k>`` is :math:`e_l` over the better of the two (absent where that one is
exact); issue 21's target is at most 0.5 at every level.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch_geometric.utils import scatter

PREDICTORS = ("what", "neighbour_mean", "type_mean")


def neighbour_mean(h: Tensor, edge_index: Tensor) -> Tensor:
    """``[N, C]``: each node's mean of its neighbours' rows of ``h`` (both directions), zeros if none."""
    source = torch.cat([edge_index[0], edge_index[1]])
    target = torch.cat([edge_index[1], edge_index[0]])
    return scatter(h.index_select(0, source), target, dim=0, dim_size=h.size(0), reduce="mean")


def type_mean(h: Tensor, node_type: Tensor) -> Tensor:
    """``[N, C]``: each node's mean of the rows of ``h`` of its type."""
    return scatter(h, node_type, dim=0, reduce="mean").index_select(0, node_type)


class ReconstructionTally:
    """Sums of squares of the dropped nodes' features and of each predictor's errors, per level,
    over the batches of a split (kept on the device: no host sync until :meth:`metrics`)."""

    def __init__(self) -> None:
        self.sums: dict[tuple[int, str], Tensor] = {}

    def _add(self, level: int, name: str, value: Tensor) -> None:
        self.sums[(level, name)] = self.sums.get((level, name), 0) + value

    def _error(self, level: int, name: str) -> float:
        """‖prediction − truth‖ / ‖truth‖ over the dropped nodes of the batches the predictor saw."""
        norm = float(self.sums[(level, f"{name} norm")])
        return (float(self.sums[(level, name)]) / norm) ** 0.5 if norm > 0 else math.nan

    def add(self, output: dict[str, Any], edge_index: Tensor, node_type: Tensor | None) -> None:
        """One batch: the model's ``output`` (its ``reconstruction`` and ``levels``), the concrete
        level's ``edge_index`` and node types (``None``: no type-mean predictor)."""
        for level, (pair, pooled) in enumerate(zip(output["reconstruction"], output["levels"]), start=1):
            target, predicted = pair["target"].float(), pair["predicted"].float()
            dropped = torch.ones(target.size(0), dtype=torch.bool, device=target.device)
            dropped[pooled["perm"]] = False
            truth = target[dropped]
            norm = truth.square().sum()
            predictions = {"what": predicted, "neighbour_mean": neighbour_mean(target, edge_index)}
            if node_type is not None:
                predictions["type_mean"] = type_mean(target, node_type)
            for name, prediction in predictions.items():
                self._add(level, name, (prediction[dropped] - truth).square().sum())
                self._add(level, f"{name} norm", norm)
            edge_index = pooled["edge_index"]
            node_type = None if node_type is None else node_type[pooled["perm"]]

    def metrics(self) -> dict[str, float]:
        """Per level ``k``: ``recon_dropped_l<k>`` (WHAT's error on the dropped nodes), the
        predictors' ``recon_neighbour_mean_l<k>`` and ``recon_type_mean_l<k>``, and
        ``recon_vs_baseline_l<k>``, WHAT's over the better predictor's."""
        out: dict[str, float] = {}
        for level in sorted({level for level, _ in self.sums}):
            errors = {name: self._error(level, name) for name in PREDICTORS if (level, name) in self.sums}
            if math.isnan(errors["what"]):  # nothing dropped at this level, in the whole split
                continue
            out[f"recon_dropped_l{level}"] = errors.pop("what")
            out.update({f"recon_{name}_l{level}": error for name, error in errors.items()})
            best = min(errors.values())
            if best > 0:
                out[f"recon_vs_baseline_l{level}"] = out[f"recon_dropped_l{level}"] / best
        return out
