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
from torch import Tensor
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
        return (tuple(sorted((t.subject, t.predicate, t.object) for t in self.triples)), self.query)

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
    node_ids = {name: i for i, name in enumerate(sample.node_types)}
    extras = [[0.0] * len(schema.extra_features) for _ in node_ids]
    for name, values in sample.extras.items():
        if len(values) != len(schema.extra_features):
            raise ValueError(f"node {name!r} has {len(values)} extras, schema expects {len(schema.extra_features)}")
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
    return build_graph(schema, node_feature_dim, [schema.node_type_vocab.id(t) for t in sample.node_types.values()],
                       extras, edges, sample.label, query)


def samples_to_data(samples: list[Sample], schema: DomainSchema, node_feature_dim: int = 64) -> list[Data]:
    """:func:`sample_to_data` of every sample, built in one pass (a dataset's graphs)."""
    return columns_to_data(sample_columns(samples, schema), schema, node_feature_dim)


class Edges(NamedTuple):
    """A graph's triples as id lists: subject and object node, relation id, confidence, level."""

    source: list[int]
    target: list[int]
    relation: list[int]
    confidence: list[float]
    level: list[int]


class GraphColumns(NamedTuple):
    """Graphs given by ids, concatenated: each field holds every graph's rows, graph after graph.

    Built from samples (:func:`sample_columns`) or read back from a dataset's graph cache, and
    turned into ``Data`` by :func:`columns_to_data`. Node ids in ``edge_index`` and ``query`` are
    local to their graph. ``query`` is ``(head node, relation id, tail node)``, ``-1`` without one.
    """

    num_nodes: Tensor   # [G]
    node_type: Tensor   # [ΣN] node type ids
    extras: Tensor      # [ΣN, len(schema.extra_features)]
    num_edges: Tensor   # [G]
    edge_index: Tensor  # [2, ΣE]
    edge_type: Tensor   # [ΣE]
    edge_attr: Tensor   # [ΣE]
    edge_level: Tensor  # [ΣE]
    y: Tensor           # [G]
    query: Tensor       # [G, 3]


def sample_columns(samples: list[Sample], schema: DomainSchema) -> GraphColumns:
    """The ids of ``samples``' graphs; node ``i`` of a graph is its sample's ``i``-th ``node_types`` entry."""
    relation_ids, type_ids = schema.relation_vocab, schema.node_type_vocab
    num_extras = len(schema.extra_features)
    node_type: list[int] = []
    extras: list[list[float]] = []
    source: list[int] = []
    target: list[int] = []
    relation: list[int] = []
    confidence: list[float] = []
    level: list[int] = []
    queries: list[tuple[int, int, int]] = []
    for sample in samples:
        node_ids = {name: i for i, name in enumerate(sample.node_types)}
        node_type += [type_ids.id(t) for t in sample.node_types.values()]
        graph_extras = [[0.0] * num_extras for _ in node_ids]
        for name, values in sample.extras.items():
            if len(values) != num_extras:
                raise ValueError(f"node {name!r} has {len(values)} extras, schema expects {num_extras}")
            graph_extras[node_ids[name]] = list(values)
        extras += graph_extras
        try:
            source += [node_ids[t.subject] for t in sample.triples]
            target += [node_ids[t.object] for t in sample.triples]
        except KeyError as missing:
            raise ValueError(f"triple endpoint {missing} has no entry in node_types") from None
        relation += [relation_ids.id(t.predicate) for t in sample.triples]
        confidence += [t.confidence for t in sample.triples]
        level += [t.level for t in sample.triples]
        if sample.query is None:
            queries.append((-1, -1, -1))
        else:
            head, query_relation, tail = sample.query
            queries.append((node_ids[head], relation_ids.id(query_relation), node_ids[tail]))
    return GraphColumns(
        num_nodes=torch.tensor([len(s.node_types) for s in samples], dtype=torch.long),
        node_type=torch.tensor(node_type, dtype=torch.long),
        extras=torch.tensor(extras, dtype=torch.float).view(len(node_type), num_extras),
        num_edges=torch.tensor([len(s.triples) for s in samples], dtype=torch.long),
        edge_index=torch.tensor([source, target], dtype=torch.long).view(2, -1),
        edge_type=torch.tensor(relation, dtype=torch.long),
        edge_attr=torch.tensor(confidence, dtype=torch.float),
        edge_level=torch.tensor(level, dtype=torch.long),
        y=torch.tensor([s.label for s in samples], dtype=torch.long),
        query=torch.tensor(queries, dtype=torch.long).view(-1, 3),
    )


def build_graph(schema: DomainSchema, node_feature_dim: int, node_type: list[int], extras: list[list[float]],
                edges: Edges, label: int, query: tuple[int, int, int] | None = None) -> Data:
    """The ``Data`` of one graph given by ids (node ``i`` has type id ``node_type[i]`` and the
    domain's ``extras[i]``; ``query`` is ``(head node, relation id, tail node)``): a domain's fast
    path to one graph (ranking builds ~10^5 of them), where a dataset uses :func:`columns_to_data`."""
    node_type_tensor = torch.tensor(node_type, dtype=torch.long)
    x, node_level = node_features(schema, node_feature_dim, node_type_tensor, extras)
    return graph_data(x, node_level, node_type_tensor,
                      torch.tensor([edges.source, edges.target], dtype=torch.long).view(2, -1),
                      torch.tensor(edges.relation, dtype=torch.long), torch.tensor(edges.confidence, dtype=torch.float),
                      torch.tensor(edges.level, dtype=torch.long), torch.tensor([label], dtype=torch.long), query)


def columns_to_data(columns: GraphColumns, schema: DomainSchema, node_feature_dim: int) -> list[Data]:
    """One ``Data`` per graph of ``columns``: the features of every graph built at once, then
    split, so that a graph's tensors are views of the columns' (the module docstring's fields)."""
    x, node_level = node_features(schema, node_feature_dim, columns.node_type, columns.extras)
    nodes, edges = columns.num_nodes.tolist(), columns.num_edges.tolist()
    per_node = zip(x.split(nodes), node_level.split(nodes), columns.node_type.split(nodes))
    per_edge = zip(columns.edge_index.split(edges, dim=1), columns.edge_type.split(edges),
                   columns.edge_attr.split(edges), columns.edge_level.split(edges))
    return [graph_data(graph_x, level, node_type, edge_index, relation, confidence, edge_level, y,
                       query if query[0] >= 0 else None)
            for (graph_x, level, node_type), (edge_index, relation, confidence, edge_level), y, query
            in zip(per_node, per_edge, columns.y.view(-1, 1), columns.query.tolist())]


def node_features(schema: DomainSchema, node_feature_dim: int, node_type: Tensor,
                  extras: Tensor | list[list[float]]) -> tuple[Tensor, Tensor]:
    """``x`` ``[N, node_feature_dim]`` (the module docstring's layout) and ``node_level`` ``[N]``
    of nodes with type ids ``node_type`` ``[N]`` and the domain's ``extras`` ``[N, X]``."""
    if node_feature_dim < schema.min_feature_dim:
        raise ValueError(
            f"node_feature_dim={node_feature_dim} is too small for the {schema.name} domain, "
            f"which needs at least {schema.min_feature_dim} columns"
        )
    num_types = len(schema.node_types)
    node_level = torch.tensor(list(schema.node_types.values()), dtype=torch.long)[node_type]
    num_nodes = node_type.numel()
    x = torch.zeros(num_nodes, node_feature_dim)
    rows = torch.arange(num_nodes)
    x[rows, node_type] = 1.0
    x[rows, num_types + node_level - 1] = 1.0
    if schema.extra_features:
        start = num_types + len(LEVELS)
        x[:, start:start + len(schema.extra_features)] = torch.as_tensor(extras, dtype=torch.float).view(num_nodes, -1)
    return x, node_level


def graph_data(x: Tensor, node_level: Tensor, node_type: Tensor, edge_index: Tensor, edge_type: Tensor,
               edge_attr: Tensor, edge_level: Tensor, y: Tensor, query: tuple[int, int, int] | None) -> Data:
    data = Data(x=x, edge_index=edge_index, edge_type=edge_type, edge_attr=edge_attr, edge_level=edge_level,
                node_level=node_level, node_type=node_type, y=y, num_nodes=x.size(0))
    if query is not None:
        data.head_index = torch.tensor([query[0]])
        data.tail_index = torch.tensor([query[2]])
        data.query_relation = torch.tensor([query[1]])
    return data
