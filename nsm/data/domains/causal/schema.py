"""The causal domain's vocabulary: relations, node types and their levels (see
:mod:`nsm.data.domains.causal.generator` for the triples they make)."""

from __future__ import annotations

from nsm.data.triples import DomainSchema

CAUSAL_SCHEMA = DomainSchema(
    name="causal",
    relations=(
        "has_risk_factor", "has_condition", "base_rate", "co_occurs_with", "occurs_without",
        "prompts", "discourages", "activates", "inhibits", "increases", "reduces",
        "reverses", "blocks", "asks_about", "concerns",
    ),
    node_types={
        "patient": 1, "treatment": 1, "symptom": 1, "risk_factor": 1, "condition": 1,
        "mechanism": 2, "treatment_question": 3,
    },
    num_relations=20,
)
