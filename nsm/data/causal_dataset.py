"""The seed's import path of the causal dataset (``from nsm.data.causal_dataset import
CausalTripleDataset``); it lives in :mod:`nsm.data.domains.causal`."""

from nsm.data.domains.causal.dataset import CausalTripleDataset

__all__ = ["CausalTripleDataset"]
