"""A generated domain written as labelled triple graphs in JSON Lines (``nsm data --export-jsonl``).

Every sample of the three splits becomes one line (see :mod:`nsm.data.domains.triples.jsonl`)
with its ``split``, so ``--domain triples --data DIR/<domain>.jsonl`` trains on exactly the same
samples. What the format has no field for is carried by triples or dropped:

* a link-prediction query ``(h, r, t)`` (kg) becomes the level-3 triple ``(h, query:r, t)``:
  both a true query and its corruption have one, so it tells which pair is asked, not the answer;
* a domain's per-node extras (planning's step positions, kg's distances to the query's ends)
  are the nodes' ``node_features``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nsm.atomic import atomic_write
from nsm.data import load_dataset
from nsm.data.base import SPLITS
from nsm.data.graph import Sample


def sample_record(sample: Sample, sample_id: str, split: str) -> dict[str, Any]:
    triples = [list(triple.as_tuple()) for triple in sample.triples]
    if sample.query is not None:
        head, relation, tail = sample.query
        triples.append([head, f"query:{relation}", tail, 1.0, 3])
    record = {"id": sample_id, "split": split, "label": sample.label, "triples": triples,
              "node_types": sample.node_types}
    if sample.extras:
        record["node_features"] = {name: list(values) for name, values in sample.extras.items()}
    return record


def export_jsonl(domain: str, out_dir: str | Path, data_root: str | Path, seed: int,
                 params: dict[str, Any]) -> tuple[Path, dict[str, int]]:
    """Write ``domain``'s splits (``params``: its dataset's arguments) to ``out_dir/<domain>.jsonl``;
    returns the file and the samples per split."""
    path = Path(out_dir) / f"{domain}.jsonl"
    counts = {}
    with atomic_write(path, "w") as out:
        for split in SPLITS:
            samples = load_dataset(domain, data_root, split, seed=seed, **params).samples
            for i, sample in enumerate(samples):
                out.write(json.dumps(sample_record(sample, f"{split}-{i}", split)) + "\n")
            counts[split] = len(samples)
    return path, counts
