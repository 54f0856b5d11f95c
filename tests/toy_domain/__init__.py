"""A fourth domain, added the way a user adds one: this folder, and one ``register(DOMAIN)``.

    schema.py     relations, node types and levels
    generator.py  random little graphs, and the oracle: does ``start`` reach ``goal``?
    dataset.py    ReachTripleDataset
"""

from nsm.data.domain import Domain
from toy_domain.schema import REACH_SCHEMA

DOMAIN = Domain(
    name="toy",
    question="does the start node reach the goal node along points_to edges?",
    schema=REACH_SCHEMA,
    dataset="toy_domain.dataset:ReachTripleDataset",
    task_type="classification",
    num_bases=2,
    pool_ratio=0.5,
    profile_data={"quick": {"num_samples": 80}},
    cost_per_sample=0.1,
)
