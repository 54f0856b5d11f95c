"""The seed's import path of the knowledge-graph dataset (``from nsm.data.knowledge_graph_dataset
import KnowledgeGraphTripleDataset``); it lives in :mod:`nsm.data.domains.kg`."""

from nsm.data.domains.kg.dataset import KnowledgeGraphTripleDataset

__all__ = ["KnowledgeGraphTripleDataset"]
