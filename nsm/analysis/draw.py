"""A picture of one explanation: the three levels side by side.

Panel L1 is the input graph, L2 and L3 the abstract graphs WHY built. Every node keeps the place
a spring layout of the input graph gives it, so a node is found at the same spot in each panel;
nodes kept at the next level are highlighted, and an edge's width grows with its (semiring)
confidence. Parallel edges from one node to another are drawn as one, labelled with all their
relations and as wide as the most confident; the two directions between two nodes are two arcs. Uses matplotlib's object API (no pyplot, no global backend).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import networkx as nx

from nsm.errors import NSMError

KEPT_COLOUR, DROPPED_COLOUR = "tab:orange", "lightgrey"
MAX_EDGE_LABELS = 25  # beyond this, relation labels hide the graph
# Edges bend to their left, so u -> v and v -> u (a 2-hop abstract edge often has a twin) stay apart.
CURVE = "arc3,rad=0.12"


def _graph(nodes: list[str], edges: list[dict[str, Any]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for edge in edges:
        u, v = edge["subject"], edge["object"]
        if graph.has_edge(u, v):
            data = graph.edges[u, v]
            data["relations"].append(edge["relation"])
            data["confidence"] = max(data["confidence"], edge["confidence"])
        else:
            graph.add_edge(u, v, relations=[edge["relation"]], confidence=edge["confidence"])
    return graph


def image_path(path: str | os.PathLike) -> Path:
    """``path`` as the image file to write: in an existing directory, with a suffix matplotlib writes.

    (Given a name without one, matplotlib would append ``.png`` and write a file of another name:
    ``/tmp`` became ``/tmp.png``.)
    """
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.is_dir():
        raise NSMError(f"{path} is a directory; give the image's file name, e.g. {path / 'explanation.png'}")
    if path.suffix[1:].lower() not in formats:
        raise NSMError(f"cannot tell the image format of {path}; end it in one of "
                       f"{', '.join('.' + name for name in sorted(formats))}")
    if not path.parent.is_dir():
        raise NSMError(f"cannot write image {path}: no directory {path.parent}")
    return path


def draw_explanation(explanation: dict[str, Any], path: str | os.PathLike, seed: int = 0) -> Path:
    """Draw ``explanation`` (from :func:`~nsm.analysis.explain.explain_sample`, not cut by ``limit``)
    into the image file ``path`` (format from its suffix, e.g. ``.png``, see :func:`image_path`);
    return the path."""
    from matplotlib.figure import Figure

    path = image_path(path)
    if not explanation["levels"]:
        raise NSMError(f"the {explanation.get('model', 'model')} model has no hierarchy to draw")
    e = explanation
    input_edges = [edge for triples in e["input"]["triples"].values() for edge in triples]
    panels = [("L1: input graph", [n["name"] for n in e["input"]["nodes"]], input_edges)]
    panels += [(f"L{level['level']}: kept by WHY", [n["name"] for n in level["kept"]], level["edges"])
               for level in e["levels"]]
    graphs = [_graph(nodes, edges) for _, nodes, edges in panels]
    positions = nx.spring_layout(graphs[0].to_undirected(), seed=seed)

    figure = Figure(figsize=(6.5 * len(panels), 6.5), layout="constrained")
    axes = figure.subplots(1, len(panels))
    for i, (ax, (title, _, edges), graph) in enumerate(zip(axes, panels, graphs)):
        kept_next = set(graphs[i + 1]) if i + 1 < len(graphs) else set(graph)
        colours = [KEPT_COLOUR if node in kept_next else DROPPED_COLOUR for node in graph]
        widths = [0.4 + 2.6 * confidence for _, _, confidence in graph.edges(data="confidence")]
        nx.draw_networkx_nodes(graph, positions, ax=ax, node_color=colours, node_size=120, edgecolors="black",
                               linewidths=0.5)
        nx.draw_networkx_edges(graph, positions, ax=ax, width=widths, alpha=0.6, arrowsize=8, node_size=120,
                               connectionstyle=CURVE)
        nx.draw_networkx_labels(graph, positions, ax=ax, font_size=6)
        if graph.number_of_edges() <= MAX_EDGE_LABELS:
            labels = {(u, v): ", ".join(relations) for u, v, relations in graph.edges(data="relations")}
            nx.draw_networkx_edge_labels(graph, positions, edge_labels=labels, ax=ax, font_size=5, node_size=120,
                                         connectionstyle=CURVE)
        ax.set_title(f"{title} ({graph.number_of_nodes()} nodes, {len(edges)} edges)")
        ax.axis("off")
    prediction, oracle = e["prediction"], e["oracle"]
    figure.suptitle(f"{e['domain']} {e['split']} sample {e['index']}: predicted class {prediction['class']} "
                    f"(p = {prediction['probabilities'][prediction['class']]:.2f}), oracle label {oracle['label']}. "
                    f"Highlighted: kept at the next level; edge width: confidence")
    try:
        figure.savefig(path, dpi=130)
    except (OSError, ValueError, RuntimeError) as exc:  # unwritable place; a tool the format needs (.pgf: LaTeX)
        raise NSMError(f"cannot write image {path}: {exc}") from None
    return path
