"""The planning domain's vocabulary: relations, node types and their levels (see
:mod:`nsm.data.domains.planning.generator` for the graph they make)."""

from __future__ import annotations

from nsm.data.triples import DomainSchema

PLANNING_SCHEMA = DomainSchema(
    name="planning",
    relations=(
        "moves", "from", "to", "next", "before", "initially",          # L1
        "fact_block", "fact_support", "requires", "adds", "deletes",  # L2
        "subgoal_of",                                                  # L3
    ),
    node_types={
        "block": 1, "table": 1, "step": 1, "initial_state": 1,
        "on_fact": 2, "clear_fact": 2,
        "goal": 3,
    },
    num_relations=16,
    extra_features=("plan_position",),  # steps only: i / MAX_STEPS for the i-th step
)
