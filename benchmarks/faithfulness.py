"""Is the WHY trace faithful? Masking a sample's L3-kept nodes against masking as many random ones.

For each correctly classified test sample, the output change (total variation of the class
probabilities) when its L3-kept nodes are masked is compared with the mean change over ``--draws``
random node sets of the same size (:func:`nsm.analysis.faithfulness.masking_effect`). A faithful
trace moves the prediction more when its own nodes are masked.

    python benchmarks/faithfulness.py runs/validate/causal runs/validate/planning   # finished runs
    python benchmarks/faithfulness.py --small-causal --seeds 0-5                    # train, then measure
    python benchmarks/faithfulness.py --fidelity 100 runs/validate/causal           # and fidelity

``--fidelity N`` also measures the field's fidelity+ / fidelity− (``nsm.analysis.fidelity``, PyG's
``torch_geometric.explain`` metric) on the first N test samples, of the L3-kept nodes, of the
whole trace, of as many random nodes and of as many nodes as PyG's ``GNNExplainer`` ranks highest
(``--gnnexplainer-epochs``, 100 by default: ~4 s a causal sample on one thread).

``--small-causal`` trains, for each seed, the small causal model the README quotes (600 scenarios,
15 epochs at lr 3e-3, the quick profile otherwise; ~15 s each on one CPU thread) in a scratch
directory. This is a research measurement, not a test: its outcome differs between training seeds
and between hosts (CPU kernel sets), so the figures are recorded with their host and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

import torch

from nsm.analysis.faithfulness import masking_effect
from nsm.analysis.fidelity import fidelity_table
from nsm.config import make_run_config
from nsm.errors import NSMError
from nsm.host import describe_host, format_host
from nsm.evaluation.evaluator import load_run
from nsm.job import run_job


def seed_range(text: str) -> list[int]:
    """``"0-5"`` -> 0..5; ``"0,2,7"`` -> those."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-", 1))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def small_causal_run(seed: int, root: Path) -> Path:
    config = make_run_config("causal", "quick", epochs=15, lr=3e-3, seed=seed, data={"num_samples": 600},
                             run_dir=str(root / f"small-causal-{seed}"), data_root=str(root / "data"))
    run_job(config)
    return Path(config["run_dir"])


def measure(run_dir: Path, draws: int, fidelity_samples: int = 0, gnnexplainer_epochs: int = 100) -> dict:
    config, dataset, model = load_run(run_dir)
    effect = masking_effect(model, dataset, draws=draws, seed=0)
    # masking_effect keeps exactly the correctly classified samples: their share is the test accuracy.
    row = {"run": run_dir.name, "domain": config["domain"], "seed": config["seed"],
           "accuracy": effect["samples"] / effect["of"], **effect,
           "faithful": effect["kept_change"] > effect["random_change"]}
    if fidelity_samples:
        row["fidelity"] = fidelity_table(model, dataset, fidelity_samples, draws, gnnexplainer_epochs)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="*", type=Path, help="finished NSM run directories")
    parser.add_argument("--small-causal", action="store_true", help="train the small causal model per --seeds")
    parser.add_argument("--seeds", type=seed_range, default=[0, 1, 2, 3, 4, 5], help="e.g. 0-5 or 0,3")
    parser.add_argument("--draws", type=int, default=10, help="random node sets per sample")
    parser.add_argument("--fidelity", type=int, default=0, metavar="N", help="fidelity on the first N test samples")
    parser.add_argument("--gnnexplainer-epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.run_dirs and not args.small_causal:
        parser.error("give run directories, or --small-causal")
    torch.set_num_threads(args.threads)

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        runs = list(args.run_dirs)
        if args.small_causal:
            runs += [small_causal_run(seed, Path(scratch)) for seed in args.seeds]
        for run_dir in runs:
            try:
                rows.append(measure(run_dir, args.draws, args.fidelity, args.gnnexplainer_epochs))
            except NSMError as exc:
                parser.error(f"{run_dir}: {exc}")
    report = {"host": describe_host(), "date": datetime.date.today().isoformat(), "runs": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['date']}, {format_host(report['host'])}")
    print(f"{'run':<20}{'seed':>5}{'acc':>8}{'samples':>10}{'masked':>8}{'L3-kept':>9}{'random':>8}  faithful")
    for row in rows:
        print(f"{row['run']:<20}{row['seed']:>5}{row['accuracy']:>8.1%}{row['samples']:>6}/{row['of']:<4}"
              f"{row['nodes_masked']:>7.2f}{row['kept_change']:>9.3f}{row['random_change']:>8.3f}  "
              f"{'yes' if row['faithful'] else 'NO'}")
    print(f"faithful in {sum(row['faithful'] for row in rows)} of {len(rows)} runs")
    for row in rows:
        if "fidelity" in row:
            table = row["fidelity"]
            print(f"{row['run']} ({row['domain']}, seed {row['seed']}): fidelity over {table['samples']} test samples")
            print(f"    {'set':<14}{'nodes':>7}{'fid+':>7}{'fid-':>7}")
            for name, values in table["sets"].items():
                print(f"    {name:<14}{values['nodes']:>7.2f}{values['fidelity_plus']:>7.3f}{values['fidelity_minus']:>7.3f}")


if __name__ == "__main__":
    main()
