r"""Invertible affine couplings (RealNVP, Dinh et al. 2017) over node features.

One coupling splits the features of every node into a conditioning part :math:`x_a` and a
transformed part :math:`x_b` and computes

.. math::
    y_a = x_a, \qquad y_b = x_b \odot \exp(s(x_a)) + t(x_a), \qquad s = \tanh(\hat s),

whose exact inverse is :math:`x_b = (y_b - t(y_a)) \odot \exp(-s(y_a))`. :math:`\hat s, t` come
from one MLP on :math:`x_a`; bounding the log-scale by tanh keeps both directions well
conditioned (also in half precision). A :class:`CouplingStack` alternates which part is
transformed, so every feature is changed.

Shapes: ``[*, channels] → [*, channels]`` in both directions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AffineCoupling(nn.Module):
    """One affine coupling; ``swap`` transforms the first part instead of the second."""

    def __init__(self, channels: int, hidden: int | None = None, swap: bool = False):
        super().__init__()
        if channels < 2:
            raise ValueError(f"an affine coupling needs at least 2 channels, got {channels}")
        first = channels // 2
        self.sizes = [first, channels - first]
        self.swap = swap
        conditioning, transformed = self.sizes[::-1] if swap else self.sizes
        hidden = hidden or channels
        self.net = nn.Sequential(nn.Linear(conditioning, hidden), nn.ReLU(), nn.Linear(hidden, 2 * transformed))
        # Start as the identity (Glow's zero initialisation): training begins from WHY = plain pooling.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        first, second = x.split(self.sizes, dim=-1)
        return (second, first) if self.swap else (first, second)

    def _join(self, conditioning: Tensor, transformed: Tensor) -> Tensor:
        parts = (transformed, conditioning) if self.swap else (conditioning, transformed)
        return torch.cat(parts, dim=-1)

    def _scale_shift(self, conditioning: Tensor) -> tuple[Tensor, Tensor]:
        log_scale, shift = self.net(conditioning).chunk(2, dim=-1)
        return torch.tanh(log_scale), shift

    def forward(self, x: Tensor) -> Tensor:
        conditioning, transformed = self._split(x)
        log_scale, shift = self._scale_shift(conditioning)
        return self._join(conditioning, transformed * log_scale.exp() + shift)

    def inverse(self, y: Tensor) -> Tensor:
        conditioning, transformed = self._split(y)
        log_scale, shift = self._scale_shift(conditioning)
        return self._join(conditioning, (transformed - shift) * (-log_scale).exp())


class CouplingStack(nn.Module):
    """``num_layers`` couplings with alternating halves; ``inverse`` undoes ``forward`` exactly."""

    def __init__(self, channels: int, num_layers: int = 2, hidden: int | None = None):
        super().__init__()
        self.layers = nn.ModuleList(AffineCoupling(channels, hidden, swap=i % 2 == 1) for i in range(num_layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def inverse(self, y: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y
