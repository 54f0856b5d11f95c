r"""How the confidences of triples combine along a path and across parallel paths.

A path holds if all of its triples hold, so its confidence is the product of theirs (⊗, the
probabilistic semiring's). Parallel paths that support the same fact are merged by a *soft
maximum* ⊕_τ whose sharpness is the temperature τ:

.. math::
    c_1 \otimes c_2 = c_1 c_2, \qquad
    \bigoplus\nolimits_\tau (c_1, \dots, c_n) = \sum_k \operatorname{softmax}(c / \tau)_k \, c_k .

⊕_τ is a convex combination of its arguments, so merged confidences stay in [0, 1]; it tends to
their maximum (the Viterbi semiring's ⊕) as τ → 0 and to their mean as τ → ∞. One argument is
returned unchanged at every τ.
"""

from __future__ import annotations

from torch import Tensor
from torch_geometric.utils import scatter, softmax


def otimes(left: Tensor, right: Tensor) -> Tensor:
    """⊗: the confidence of two triples in sequence, elementwise ``left · right``."""
    return left * right


def soft_oplus(confidence: Tensor, group: Tensor, num_groups: int, temperature: float) -> Tensor:
    """⊕_τ within groups: ``confidence`` ``[M]`` with ``group`` ``[M]`` in ``[0, num_groups)`` → ``[num_groups]``."""
    # Computed in float32: under autocast a half-precision softmax would quantise τ's effect away.
    confidence = confidence.float()
    weight = softmax(confidence / temperature, group, num_nodes=num_groups)
    return scatter(weight * confidence, group, dim=0, dim_size=num_groups, reduce="sum")
