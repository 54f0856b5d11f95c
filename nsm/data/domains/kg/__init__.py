"""Knowledge graphs for link prediction: a rule-based synthetic KG, real KGs read from TSV files,
and the GraIL-style enclosing subgraph around a query triple ``(h, r, t)``.

**Synthetic worlds.** A world has ``num_entities`` typed entities (people, cities, countries,
companies, universities, sports teams, languages). Its base facts are drawn at random, each
independently of the others (born_in, lives_in, works_for, families, ...; ``friend_of`` pairs fill
the world up to about ``num_triples`` facts), then closed under ``RULES``: inverses
(parent_of ⇔ child_of), symmetric relations (married_to, sibling_of), implications
(capital_of ⇒ located_in) and two-step compositions (born_in ∘ located_in ⇒ nationality, ...).
Each split draws worlds of its own, so test queries and their evidence are never in a train graph.

**Queries.** Positives are facts of the ``QUERY_RELATIONS`` (the compositions' heads), so each
is inferable from a two-fact rule body, which its subgraph always contains. No implication or
composition uses a query relation, so nothing but its inverse or symmetric twin is derived from a
query fact. A world hides all its queries and their twins from its graph: no query of any split
is ever an edge of an input graph. Negatives replace the head or the tail of a positive with an entity of
the same type, verified false in the closed world, and as hard as the world allows: near the
kept end, at the positive's h–t distance, and linked to it through entities like the positive's
rule body (see ``QueryGraph.corrupt``). Every rule-body relation has a look-alike of the same
signature that no rule uses with it (lives_in beside born_in, invests_in beside works_for, ...),
so a negative's ends are typically joined by a path of the body's shape that differs in one
relation: the classes differ in how facts connect, not in what or how many facts there are.

**Enclosing subgraph**, over instance facts with undirected distances:

* hidden first, for a positive and its negative alike: in a synthetic world every fact of ``r``
  (or a twin) at ``h`` or ``t``, so that the answer is never a lookup and neither end shows how
  many ``r`` facts it has; in a real KG only the query triple itself, as GraIL does (hiding more
  cuts the ends apart: on WN18RR it removes the reverse edge of most positives, and "the ends do
  not meet" then marks the positives);
* nodes: the entities within ``hops`` of both ``h`` and ``t`` (GraIL's intersection), widened to
  all those within ``hops - 1`` of either. The widening matters: with the intersection alone,
  whether ``h``'s born_in fact is in the graph at all would give a nationality query away; here
  every relation at either end is visible whatever the label;
* at most ``max_entities`` entities (default ``MAX_SUBGRAPH_ENTITIES``): those adjacent to both
  ends first (the middles of the rule bodies), then by distance to the nearer end, at random
  among equals.

Each entity is linked to its type node (``is_a``, level 2) and each type to its category
(``subclass_of``, level 3). Node features are the node's type and level plus GraIL's double-radius
labels ``dist_to_head`` and ``dist_to_tail``: the distance inside the subgraph divided by
``hops + 1`` and capped at 1, so 0 marks ``h`` (or ``t``) and 1 means farther than ``hops`` or
unreachable (as for type and category nodes). Every fact has confidence 1.

**Real KGs** (``train.txt``, ``valid.txt``, ``test.txt``: head, relation, tail separated by tabs,
the FB15k-237 / WN18RR layout) give the same samples with a single node type ``entity``: every
split's subgraphs come from the train graph, a split's positives are its file's triples and the
negatives corrupt them into triples listed in none of the three files. The oracle is the files.
A negative keeps the positive's head–tail distance (``QueryGraph.corrupt``), so neither whether
the ends meet nor how far apart they are tells the classes apart (``benchmarks/label_leakage.py``
checks both). The relation vocabulary is the files' own. A valid or test file that gives no
samples (all its triples in train.txt, say) is refused.

Files::

    rules.py        the rule language and its closure (the synthetic oracle)
    schema.py       the synthetic vocabulary: entity types, categories, relations
    world.py        synthetic worlds and their queries
    subgraph.py     the enclosing-subgraph extractor
    query_graph.py  a graph queries are asked against: subgraphs, negatives, samples
    generator.py    the synthetic samples (WorldGraph)
    tsv.py          real KGs in the TSV layout and their samples (FileGraph)
    export.py       a synthetic pair written in the TSV layout
    dataset.py      KnowledgeGraphTripleDataset
"""

from nsm.data.domain import Domain
from nsm.data.domains.kg.schema import SYNTHETIC_SCHEMA

DOMAIN = Domain(
    name="kg",
    question="does the query triple (h, r, t) hold?",
    schema=SYNTHETIC_SCHEMA,
    dataset="nsm.data.domains.kg.dataset:KnowledgeGraphTripleDataset",
    task_type="link_prediction",
    num_bases=12,
    pool_ratio=0.13,
    profile_data={"quick": {"num_entities": 60, "num_triples": 400, "num_samples": 120},
                  "dev": {"num_entities": 200, "num_triples": 2500, "num_samples": 10000},
                  "production": {"num_entities": 2000, "num_triples": 25000, "num_samples": 20000}},
    cost_per_sample=1.25,  # 136 s where planning took 108 s (2026-11-24)
    # A kg model's validation loss bottoms out early while it grows confident, and its ranking
    # keeps improving (synthetic TSV pair, dev, seed 0, 2026-12-01: best loss at epoch 2, test MRR
    # 0.184; epoch 10, loss 1.27, MRR 0.706).
    select_best_by="auroc",
)
