r"""Knowledge-graph embeddings from :mod:`torch_geometric.nn.kge`: the transductive baseline.

Each entity :math:`i` has a vector :math:`\mathbf{e}_i \in \mathbb{C}^d` (``hidden_channels`` =
:math:`d`, stored as real and imaginary parts), each relation :math:`r` a vector of its own, and a
triple :math:`(h, r, t)` gets a score, higher = more plausible:

* ComplEx (Trouillon et al. 2016), :math:`\mathbf{w}_r \in \mathbb{C}^d`, a bilinear form:

  .. math::
      \phi(h, r, t) = \operatorname{Re}\Big(\sum_{k=1}^{d} e_{h,k}\, w_{r,k}\, \overline{e_{t,k}}\Big),

  a logit (unbounded); the conjugate makes it asymmetric in :math:`h, t`, so it can model
  antisymmetric relations.

* RotatE (Sun et al. 2019), :math:`\boldsymbol{\theta}_r \in [0, 2\pi)^d`, a rotation of the head
  onto the tail:

  .. math::
      \phi(h, r, t) = \gamma - \big\| \mathbf{e}_h \circ e^{i \boldsymbol{\theta}_r} - \mathbf{e}_t \big\|_2,

  with :math:`\circ` the element-wise product, the norm over all :math:`2d` real coordinates and
  :math:`\gamma` the ``margin``.

Both train by PyG's ``loss``: binary cross-entropy on the logits :math:`\phi` of the true triples
against one corruption of each (its head or its tail replaced by a uniformly drawn entity).

Shapes: ``heads``, ``relations``, ``tails`` ``[N]`` (long ids in ``[0, num_entities)``,
``[0, num_relations)``) → scores ``[N]``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn.kge import ComplEx, KGEModel, RotatE

from nsm.config import KGE_MODELS
from nsm.errors import NSMError


def build_kge(name: str, num_entities: int, num_relations: int, hidden_channels: int = 100,
              margin: float = 9.0) -> KGEModel:
    """The KG embedding ``name`` (one of :data:`KGE_MODELS`); ``margin`` is RotatE's γ (ComplEx has none)."""
    if name == "complex":
        return ComplEx(num_entities, num_relations, hidden_channels)
    if name == "rotate":
        return RotatE(num_entities, num_relations, hidden_channels, margin=margin)
    raise NSMError(f"unknown KG embedding {name!r}; choose one of {', '.join(KGE_MODELS)}")


@torch.no_grad()
def kge_scores(model: KGEModel, heads: Tensor, relations: Tensor, tails: Tensor, batch_size: int = 65536) -> Tensor:
    """``[N]`` float32 scores on the CPU of the triples ``(heads[i], relations[i], tails[i])``,
    ``batch_size`` at a time on the model's device, in eval mode."""
    model.eval()
    device = model.node_emb.weight.device
    scores = [model(*(ids[start:start + batch_size].to(device) for ids in (heads, relations, tails))).float().cpu()
              for start in range(0, heads.numel(), batch_size)]
    return torch.cat(scores) if scores else torch.zeros(0)


__all__ = ["KGE_MODELS", "build_kge", "kge_scores"]
