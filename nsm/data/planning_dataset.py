"""The seed's import path of the planning dataset (``from nsm.data.planning_dataset import
PlanningTripleDataset``); it lives in :mod:`nsm.data.domains.planning`."""

from nsm.data.domains.planning.dataset import PlanningTripleDataset

__all__ = ["PlanningTripleDataset"]
