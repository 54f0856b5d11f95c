"""One prediction with the hierarchy that produced it, as plain data and as text.

:func:`explain_sample` runs the model on one sample alone (so the batch-level reconstruction
errors the model reports are that sample's) and returns a JSON-able dict::

    domain, split, index (and model: its name, from explain_run)
    input       nodes [{name, type, level}] (position = node id), query, triples {"1": [...], ...}
    prediction  class, probabilities [C], correct
    oracle      label, reason
    levels      per abstract level (L2, then L3): num_nodes, kept [{name, type, level, score}]
                by decreasing score, num_edges, edges [{subject, relation, object, confidence}]
                by decreasing semiring confidence
    reconstruction_error  {"l1": ..., "l2": ...}: ‖WHAT(WHY(h)) − h‖ / ‖h‖ per level
    fidelity    of the L3-kept nodes and of as many random ones (mean of ``draws`` sets): fid+,
                fid−, the predicted class's probability without the set and with it alone
                (:mod:`nsm.analysis.fidelity`)

A kept node is named by its input node: a level's ``perm`` indexes the previous level's nodes,
so the perms are composed down to the input graph. A baseline model has no hierarchy: its
``levels`` and ``reconstruction_error`` are empty, its ``fidelity`` ``None``. :func:`limit` cuts the long lists for display
(their ``num_*`` counts stay whole) and :func:`format_explanation` renders the text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from nsm.analysis.fidelity import sample_fidelity
from nsm.analysis.trace import kept_node_ids, run_graphs
from nsm.data.base import TripleDataset
from nsm.data.triples import LEVELS
from nsm.errors import NSMError
from nsm.evaluation.evaluator import load_run
from nsm.rundir import SUMMARY

DIGITS = 4  # of the floats in an explanation: enough to compare, short enough to read


def _edge(subject: str, relation: str, obj: str, confidence: float) -> dict[str, Any]:
    return {"subject": subject, "relation": relation, "object": obj, "confidence": round(confidence, DIGITS)}


def explain_sample(model: nn.Module, dataset: TripleDataset, index: int) -> dict[str, Any]:
    """The explanation of sample ``index`` of ``dataset`` (see the module docstring)."""
    if not 0 <= index < len(dataset):
        raise NSMError(f"sample {index} does not exist; the {dataset.split} split has {len(dataset)} samples")
    sample, schema = dataset.samples[index], dataset.schema
    output = run_graphs(model, [dataset.graphs[index]])
    probabilities = output["logits"].float().softmax(-1)[0].tolist()
    predicted = max(range(len(probabilities)), key=probabilities.__getitem__)

    nodes = [{"name": name, "type": node_type, "level": schema.node_types[node_type]}
             for name, node_type in sample.node_types.items()]
    relations = schema.relation_vocab
    levels = []
    kept_ids = kept_node_ids(output["levels"])
    for number, (level, ids) in enumerate(zip(output["levels"], kept_ids), start=2):
        names = [nodes[i]["name"] for i in ids.tolist()]
        kept = [dict(nodes[i], score=round(s, DIGITS)) for i, s in zip(ids.tolist(), level["score"].tolist())]
        src, dst = level["edge_index"].tolist()
        edges = [_edge(names[s], relations.name(r), names[d], c)
                 for s, d, r, c in zip(src, dst, level["edge_type"].tolist(), level["edge_attr"].tolist())]
        edges.sort(key=lambda e: -e["confidence"])
        levels.append({"level": number, "num_nodes": len(kept), "kept": kept, "num_edges": len(edges), "edges": edges})
    return {
        "domain": schema.name,
        "split": dataset.split,
        "index": index,
        "input": {
            "nodes": nodes,
            "query": list(sample.query) if sample.query else None,
            "triples": {str(level): [_edge(t.subject, t.predicate, t.object, t.confidence)
                                     for t in sample.triples if t.level == level] for level in LEVELS},
        },
        "prediction": {"class": predicted, "probabilities": [round(p, DIGITS) for p in probabilities],
                       "correct": predicted == sample.label},
        "oracle": {"label": sample.label, "reason": sample.reason},
        "levels": levels,
        "reconstruction_error": {f"l{level}": round(output[f"recon_error_l{level}"].item(), DIGITS)
                                 for level in range(1, len(levels) + 1)},
        "fidelity": _rounded(sample_fidelity(model, dataset.graphs[index], kept_ids[-1].cpu())) if levels else None,
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, DIGITS) if isinstance(value, float) else value


def explain_run(run_dir: str | os.PathLike, index: int, split: str = "test",
                data_root: str | None = None) -> dict[str, Any]:
    """:func:`explain_sample` for a run directory's best checkpoint (else ``latest.pt``)."""
    if (Path(run_dir) / SUMMARY).exists():
        raise NSMError(f"{run_dir} is a validate directory; explain one of its domains, e.g. {Path(run_dir) / 'planning'}")
    config, dataset, model = load_run(run_dir, split, data_root=data_root)
    return dict(explain_sample(model, dataset, index), model=config["model"])


def limit(explanation: dict[str, Any], top: int | None) -> dict[str, Any]:
    """A copy with at most ``top`` input triples per level, kept nodes and edges per abstract level."""
    if top is None:
        return explanation
    input_ = explanation["input"]
    return dict(
        explanation,
        input=dict(input_, num_triples={level: len(t) for level, t in input_["triples"].items()},
                   triples={level: t[:top] for level, t in input_["triples"].items()}),
        levels=[dict(level, kept=level["kept"][:top], edges=level["edges"][:top]) for level in explanation["levels"]],
    )


def _edge_line(edge: dict[str, Any]) -> str:
    return f"    {edge['subject']} --{edge['relation']}--> {edge['object']}  [conf {edge['confidence']:.2f}]"


def _more(shown: int, total: int) -> list[str]:
    return [f"    ... {total - shown} more (--top)"] if total > shown else []


def format_explanation(explanation: dict[str, Any]) -> str:
    """The explanation as text a researcher reads top to bottom: input, prediction, WHY, WHAT."""
    e = explanation
    lines = [f"{e['domain']} {e['split']} sample {e['index']}" + (f" ({e['model']} model)" if "model" in e else "")]
    if e["input"]["query"]:
        lines.append("query: ({}, {}, {})".format(*e["input"]["query"]))
    counts = e["input"].get("num_triples", {})
    for level, triples in e["input"]["triples"].items():
        total = counts.get(level, len(triples))
        if total:
            lines.append(f"input L{level} ({total} triples):")
            lines += [_edge_line(t) for t in triples] + _more(len(triples), total)

    prediction, oracle = e["prediction"], e["oracle"]
    probabilities = ", ".join(f"class {k}: {p:.3f}" for k, p in enumerate(prediction["probabilities"]))
    lines += [
        f"prediction: class {prediction['class']} (p = {prediction['probabilities'][prediction['class']]:.3f}; "
        f"{probabilities}) — {'correct' if prediction['correct'] else 'WRONG'}",
        f"oracle: label {oracle['label']} — {oracle['reason']}",
    ]
    if not e["levels"]:
        lines.append(f"no hierarchy: the {e.get('model', 'model')} model has no WHY/WHAT levels to show")
        return "\n".join(lines)

    num_below = len(e["input"]["nodes"])
    for level in e["levels"]:
        below = "L1 (the input graph)" if level["level"] == 2 else f"L{level['level'] - 1}"
        lines.append(f"WHY {below} -> L{level['level']}: kept {level['num_nodes']} of {num_below} nodes")
        lines += [f"    {n['name']} ({n['type']}, L{n['level']})  score {n['score']:+.3f}" for n in level["kept"]]
        lines += _more(len(level["kept"]), level["num_nodes"])
        lines.append(f"  abstract edges at L{level['level']} ({level['num_edges']})" + (":" if level["num_edges"] else ""))
        lines += [_edge_line(edge) for edge in level["edges"]] + _more(len(level["edges"]), level["num_edges"])
        num_below = level["num_nodes"]
    errors = ", ".join(f"L{key[1:]} {value:.3f}" for key, value in e["reconstruction_error"].items())
    lines.append(f"WHAT reconstruction error (‖WHAT(WHY(h)) − h‖ / ‖h‖): {errors}")
    fid = e["fidelity"]
    lines.append(f"How far to trust the trace — fidelity (fid+ 1: the prediction changes without the set; fid− 0: "
                 f"the set alone keeps it; p: class {prediction['class']}'s probability):")
    for name, result in ((f"the {fid['nodes']} L3-kept nodes", fid["l3_kept"]),
                         (f"{fid['nodes']} random nodes (mean of {fid['draws']} sets)", fid["random"])):
        lines.append(f"    {name}: fid+ {result['fidelity_plus']:.2f}, fid− {result['fidelity_minus']:.2f}; "
                     f"p {result['probability']:.3f} -> {result['probability_without']:.3f} without them, "
                     f"{result['probability_only']:.3f} with them alone")
    return "\n".join(lines)
