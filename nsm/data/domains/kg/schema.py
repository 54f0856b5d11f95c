"""The synthetic knowledge graph's vocabulary: entity types, categories and relations.

A real KG in the TSV layout brings its own vocabulary (:attr:`~nsm.data.domains.kg.tsv.KGFiles.schema`).
"""

from __future__ import annotations

from nsm.data.domains.kg.rules import RULES, Composition
from nsm.data.triples import DomainSchema

NUM_RELATIONS = 66  # the synthetic world's relation budget; a real KG's is its own relations
EXTRA_FEATURES = ("dist_to_head", "dist_to_tail")

# --- the synthetic world's vocabulary ---------------------------------------------------------

# Entity type -> its category; categories may themselves have a parent category.
ENTITY_TYPES = {
    "person": "agent", "company": "organisation", "university": "organisation",
    "sports_team": "organisation", "city": "place", "country": "place", "language": "abstraction",
}
CATEGORY_PARENTS = {"organisation": "agent"}

QUERY_RELATIONS = tuple(rule.head for rule in RULES if isinstance(rule, Composition))
TYPE_RELATIONS = ("is_a", "subclass_of")

SYNTHETIC_SCHEMA = DomainSchema(
    name="kg",
    relations=tuple(dict.fromkeys(r for rule in RULES for r in (*rule.body_relations, *rule.head_relations)))
    + TYPE_RELATIONS,
    node_types={**{t: 1 for t in ENTITY_TYPES}, "entity_type": 2, "category": 3},
    num_relations=NUM_RELATIONS,
    extra_features=EXTRA_FEATURES,
)
