"""Triples: your own labelled graphs of semantic triples, from JSON Lines (``--data PATH``).

    jsonl.py    the format, its checks (one line naming file and line per bad input), vocabularies
    dataset.py  LabelledTriplesDataset: the splits, cached beside the data's vocabulary
    export.py   a generated domain written in this format (nsm data --export-jsonl)

Unlike the generated domains it has no schema of its own: relations, node types and classes come
from the data, and the job sizes the model to them (``nsm.job.sized_to_data``).
"""

from nsm.data.domain import Domain
from nsm.data.triples import DomainSchema

DOMAIN = Domain(
    name="triples",
    question="your own labelled triple graphs (--data PATH, JSON Lines): which class is each graph?",
    # A placeholder: the data's vocabularies replace it (see LabelledTriplesDataset).
    schema=DomainSchema(name="triples", relations=(), node_types={}, num_relations=1),
    dataset="nsm.data.domains.triples.dataset:LabelledTriplesDataset",
    task_type="classification",
    num_bases=8,  # NSMModel's default; --set model_args.num_bases=N for your data
    pool_ratio=0.5,
    profile_data={"quick": {}, "dev": {}, "production": {}},
)
