"""From a sample's triples to a PyG ``Data`` graph.

Every node is described only by what it *is* — its type, its level and a domain's numeric extras
(e.g. a knowledge-graph node's distances to the query head and tail) — never by its identity, so a
model cannot memorise labels per entity; it has to read the graph's structure.

Feature layout of ``x`` (``[num_nodes, node_feature_dim]``)::

    [ one-hot node type | one-hot level (L1, L2, L3) | extras | zero padding ]

Fields of the returned ``Data``:

=================  ===============  ==========================================================
``x``              ``[N, F]``       node features as above
``edge_index``     ``[2, E]``       subject → object of each triple
``edge_type``      ``[E]``          relation id (position in ``schema.relations``)
``edge_attr``      ``[E]``          the triple's confidence in [0, 1]
``edge_level``     ``[E]``          the triple's level (1..3)
``node_level``     ``[N]``          the node type's level (1..3)
``node_type``      ``[N]``          node type id
``y``              ``[1]``          the oracle's label
``head_index``     ``[1]``          link prediction only: the query's head node
``tail_index``     ``[1]``          link prediction only: the query's tail node
``query_relation`` ``[1]``          link prediction only: the query's relation id
=================  ===============  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch_geometric.data import Data

from nsm.data.triples import LEVELS, DomainSchema, SemanticTriple


@dataclass
class Sample:
    """One labelled example: the input triples plus what the oracle said about them.

    ``node_types`` names the type of every node (insertion order fixes node ids); ``extras``
    gives a node's values for ``schema.extra_features`` (missing nodes get zeros); ``query`` is
    ``(head, relation, tail)`` for link prediction. ``label`` and ``reason`` are the oracle's
    answer and its explanation: they never enter the graph.
    """

    triples: list[SemanticTriple]
    node_types: dict[str, str]
    label: int
    reason: str
    extras: dict[str, tuple[float, ...]] = field(default_factory=dict)
    query: tuple[str, str, str] | None = None

    def key(self) -> tuple:
        """Canonical content of the input, used to keep splits disjoint."""
        return (tuple(sorted(t.as_tuple()[:3] for t in self.triples)), self.query)

    def to_record(self) -> dict:
        return {
            "triples": [list(t.as_tuple()) for t in self.triples],
            "node_types": self.node_types,
            "label": self.label,
            "reason": self.reason,
            "extras": {k: list(v) for k, v in self.extras.items()},
            "query": list(self.query) if self.query else None,
        }

    @classmethod
    def from_record(cls, record: dict) -> "Sample":
        return cls(
            triples=[SemanticTriple(s, p, o, c, l) for s, p, o, c, l in record["triples"]],
            node_types=record["node_types"],
            label=record["label"],
            reason=record["reason"],
            extras={k: tuple(v) for k, v in record["extras"].items()},
            query=tuple(record["query"]) if record["query"] else None,
        )

    def describe(self) -> str:
        """The sample as readable triples grouped by level, with the oracle's label and reason."""
        lines = []
        if self.query:
            lines.append(f"query: ({self.query[0]}, {self.query[1]}, {self.query[2]})")
        for level in LEVELS:
            level_triples = [t for t in self.triples if t.level == level]
            if level_triples:
                lines.append(f"L{level} ({len(level_triples)} triples):")
                lines.extend(
                    f"  {t.subject} --{t.predicate}--> {t.object}  [conf {t.confidence:.2f}]"
                    for t in level_triples
                )
        lines.append(f"label: {self.label}")
        lines.append(f"reason: {self.reason}")
        return "\n".join(lines)


def sample_to_data(sample: Sample, schema: DomainSchema, node_feature_dim: int = 64) -> Data:
    """Build the graph of ``sample`` (see the module docstring for the fields and shapes)."""
    relation_ids = schema.relation_vocab
    type_ids = schema.node_type_vocab
    node_ids = {name: i for i, name in enumerate(sample.node_types)}
    num_extras = len(schema.extra_features)
    extras = [[0.0] * num_extras for _ in node_ids]
    for name, values in sample.extras.items():
        if len(values) != num_extras:
            raise ValueError(f"node {name!r} has {len(values)} extras, schema expects {num_extras}")
        extras[node_ids[name]] = list(values)
    try:
        edges = Edges([node_ids[t.subject] for t in sample.triples], [node_ids[t.object] for t in sample.triples],
                      [relation_ids.id(t.predicate) for t in sample.triples],
                      [t.confidence for t in sample.triples], [t.level for t in sample.triples])
    except KeyError as missing:
        raise ValueError(f"triple endpoint {missing} has no entry in node_types") from None
    query = None
    if sample.query is not None:
        head, relation, tail = sample.query
        query = (node_ids[head], relation_ids.id(relation), node_ids[tail])
    return build_graph(schema, node_feature_dim, [type_ids.id(t) for t in sample.node_types.values()],
                       extras, edges, sample.label, query)


class Edges(NamedTuple):
    """A graph's triples as id lists: subject and object node, relation id, confidence, level."""

    source: list[int]
    target: list[int]
    relation: list[int]
    confidence: list[float]
    level: list[int]


def build_graph(schema: DomainSchema, node_feature_dim: int, node_type: list[int], extras: list[list[float]],
                edges: Edges, label: int, query: tuple[int, int, int] | None = None) -> Data:
    """The ``Data`` of a graph given by ids (node ``i`` has type id ``node_type[i]`` and the
    domain's ``extras[i]``; ``query`` is ``(head node, relation id, tail node)``): what
    :func:`sample_to_data` builds from names, and a domain's fast path builds directly."""
    if node_feature_dim < schema.min_feature_dim:
        raise ValueError(
            f"node_feature_dim={node_feature_dim} is too small for the {schema.name} domain, "
            f"which needs at least {schema.min_feature_dim} columns"
        )
    num_types = len(schema.node_types)
    type_levels = list(schema.node_types.values())
    node_type_tensor = torch.tensor(node_type, dtype=torch.long)
    node_level = torch.tensor([type_levels[t] for t in node_type], dtype=torch.long)
    num_nodes = len(node_type)
    x = torch.zeros(num_nodes, node_feature_dim)
    rows = torch.arange(num_nodes)
    x[rows, node_type_tensor] = 1.0
    x[rows, num_types + node_level - 1] = 1.0
    if schema.extra_features:
        start = num_types + len(LEVELS)
        x[:, start:start + len(schema.extra_features)] = torch.tensor(extras, dtype=torch.float).view(num_nodes, -1)
    data = Data(
        x=x,
        edge_index=torch.tensor([edges.source, edges.target], dtype=torch.long).view(2, -1),
        edge_type=torch.tensor(edges.relation, dtype=torch.long),
        edge_attr=torch.tensor(edges.confidence, dtype=torch.float),
        edge_level=torch.tensor(edges.level, dtype=torch.long),
        node_level=node_level,
        node_type=node_type_tensor,
        y=torch.tensor([label], dtype=torch.long),
        num_nodes=num_nodes,
    )
    if query is not None:
        data.head_index = torch.tensor([query[0]])
        data.tail_index = torch.tensor([query[2]])
        data.query_relation = torch.tensor([query[1]])
    return data
