"""Causal: does the treatment really lower the symptom? The oracle computes the exact
interventional effect of a small structural causal model.

    schema.py     relations, node types and levels
    generator.py  scenarios (SCMs), the interventional oracle, the triples
    pairing.py    matched harmful/beneficial pairs: same bag of types, same observed rates
    dataset.py    CausalTripleDataset
"""

from nsm.data.domain import Domain
from nsm.data.domains.causal.schema import CAUSAL_SCHEMA

DOMAIN = Domain(
    name="causal",
    question="does the treatment really lower the symptom?",
    schema=CAUSAL_SCHEMA,
    dataset="nsm.data.domains.causal.dataset:CausalTripleDataset",
    task_type="classification",
    num_bases=5,
    pool_ratio=0.5,
    profile_data={"quick": {"num_samples": 120}, "dev": {"num_samples": 10000},
                  "production": {"num_samples": 20000}},
    cost_per_sample=0.5,  # 55 s where planning took 108 s (2026-11-24)
)
