from nsm.data.triples import DomainSchema

REACH_SCHEMA = DomainSchema(
    name="toy",
    relations=("points_to", "member_of", "asked_of"),
    node_types={"start": 1, "goal": 1, "item": 1, "group": 2, "question": 3},
    num_relations=4,
)
