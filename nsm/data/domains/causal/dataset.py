"""The causal domain as a dataset: is the treatment beneficial for the symptom?

See :mod:`nsm.data.domains.causal.generator` for the scenarios, the interventional oracle and the
triples, and :mod:`nsm.data.domains.causal.pairing` for why scenarios come in matched pairs.
"""

from __future__ import annotations

import os

from nsm.checks import require_positive
from nsm.data.base import OOD_SPLIT, TripleDataset, sample_count, split_sizes
from nsm.data.domains.causal.generator import IN_DISTRIBUTION, OUT_OF_DISTRIBUTION, scenario_sample
from nsm.data.domains.causal.pairing import generate_causal_scenarios
from nsm.data.domains.causal.schema import CAUSAL_SCHEMA
from nsm.data.graph import Sample


class CausalTripleDataset(TripleDataset):
    """Treatment-effect questions over small SCMs with confounders and contraindications.

    ``num_samples`` is the total over the three splits (70/15/15; ``num_scenarios`` is the seed's
    name for it); ``num_treatments`` and ``num_symptoms`` size the pools of names the scenarios
    draw their treatment and symptom from.
    """

    schema = CAUSAL_SCHEMA
    generator_version = 2
    ood_shift = f"{OUT_OF_DISTRIBUTION} (training: {IN_DISTRIBUTION})"

    def __init__(self, root: str | os.PathLike, split: str = "train", num_samples: int | None = None,
                 num_treatments: int = 10, num_symptoms: int = 8, seed: int = 0, node_feature_dim: int = 64, *,
                 num_scenarios: int | None = None):
        num_samples = sample_count(1000, num_samples=num_samples, num_scenarios=num_scenarios)
        require_positive(num_treatments=num_treatments, num_symptoms=num_symptoms)
        super().__init__(root, split, seed=seed, node_feature_dim=node_feature_dim, num_samples=num_samples,
                         num_treatments=num_treatments, num_symptoms=num_symptoms)

    def generate(self) -> dict[str, list[Sample]]:
        scenarios = generate_causal_scenarios(split_sizes(self.params["num_samples"]),
                                              self.params["num_treatments"], self.params["num_symptoms"], self.seed)
        return {split: [scenario_sample(*labelled) for labelled in labelled_scenarios]
                for split, labelled_scenarios in scenarios.items()}

    def generate_ood(self) -> list[Sample]:
        scenarios = generate_causal_scenarios({OOD_SPLIT: self.ood_size()}, self.params["num_treatments"],
                                              self.params["num_symptoms"], f"causal/ood/{self.seed}",
                                              OUT_OF_DISTRIBUTION)
        return [scenario_sample(*labelled) for labelled in scenarios[OOD_SPLIT]]
