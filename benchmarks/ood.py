"""Does the hierarchy generalise further than a flat graph network? In and out of distribution.

Trains the NSM, the flat R-GCN and the bag-of-types MLP on each domain's training data for each
seed (``nsm train --ood``: the same job, run in parallel processes by the local runner), then
sets their test accuracy beside their accuracy on the domain's out-of-distribution split: samples
scaled past what training saw (planning: 6–8 blocks and 9–12 moves, against 3–5 and 2–8; causal:
mechanism paths 3 deep, against 1–2; kg: worlds and subgraphs twice as large). Prints the mean
and the spread (max − min) over the seeds of each, and NSM − flat R-GCN out of distribution.

    python benchmarks/ood.py                                  # dev, seeds 0-2, every domain and model
    python benchmarks/ood.py --profile quick --seeds 0 --domains planning     # a smoke run
    python benchmarks/ood.py --models nsm --set model_args.readout=top --root runs/ood-top

Runs go to ``--root`` (default runs/ood), one directory per domain, model and seed, and resume
there: a finished run is evaluated again, not trained again. This is a research measurement, not
a test: the figures depend on the seeds and the host, and are recorded with both.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
from pathlib import Path

from faithfulness import seed_range  # benchmarks/ is on sys.path when a script in it runs
from nsm.cli import assignment
from nsm.config import GRAPH_MODELS, assignment_layers, make_run_config, parse_domains
from nsm.data.domains import DOMAINS
from nsm.host import describe_host, format_host
from nsm.runners.local import run_domains


def job_name(domain: str, model: str, seed: int) -> str:
    return f"{domain}-{model}-s{seed}"


def summarise(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "spread": max(values) - min(values), "runs": values}


def table(summary: dict, domains: list[str], models: list[str], seeds: list[int]) -> dict:
    """``{domain: {model: {"test": ..., "ood": ...}}}``, each a :func:`summarise` of accuracies in points."""
    rows: dict = {}
    for domain in domains:
        for model in models:
            results = [summary[job_name(domain, model, seed)] for seed in seeds]
            if any(r.get("status") != "success" for r in results):
                rows.setdefault(domain, {})[model] = {"failed": [r.get("error") for r in results
                                                                 if r.get("status") != "success"]}
                continue
            rows.setdefault(domain, {})[model] = {
                split: summarise([100 * r[key]["accuracy"] for r in results])
                for split, key in (("test", "test_metrics"), ("ood", "ood_metrics"))}
    return rows


def format_table(rows: dict) -> str:
    lines = ["| domain | model | test acc (spread) | OOD acc (spread) |", "|---|---|---|---|"]
    for domain, models in rows.items():
        for model, row in models.items():
            if "failed" in row:
                lines.append(f"| {domain} | {model} | FAILED: {row['failed'][0]} | |")
                continue
            lines.append(f"| {domain} | {model} | " + " | ".join(
                f"{row[split]['mean']:.1f} ({row[split]['spread']:.1f})" for split in ("test", "ood")) + " |")
        nsm, flat = models.get("nsm", {}), models.get("flat-rgcn", {})
        if "ood" in nsm and "ood" in flat:
            lines.append(f"| {domain} | NSM − flat | {nsm['test']['mean'] - flat['test']['mean']:+.1f} | "
                         f"{nsm['ood']['mean'] - flat['ood']['mean']:+.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="dev")
    parser.add_argument("--seeds", type=seed_range, default=[0, 1, 2], help="e.g. 0-2 (default) or 0,3")
    parser.add_argument("--domains", type=parse_domains, default=list(DOMAINS))
    parser.add_argument("--models", type=lambda text: text.split(","), default=list(GRAPH_MODELS),
                        help=f"comma-separated, of {','.join(GRAPH_MODELS)} (default all)")
    parser.add_argument("--set", type=assignment, action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="a run setting for every run, as nsm train --set takes it (repeatable)")
    parser.add_argument("--root", default="runs/ood", help="where the runs go (default runs/ood)")
    parser.add_argument("--data-root", default="data_cache")
    parser.add_argument("--json", action="store_true", help="also write ROOT/ood.json")
    args = parser.parse_args()
    if not set(args.models) <= set(GRAPH_MODELS):
        parser.error(f"--models takes {', '.join(GRAPH_MODELS)}")
    root = Path(args.root)
    settings = assignment_layers(args.settings)
    configs = {job_name(domain, model, seed): make_run_config(
        domain, args.profile, settings, model=model, seed=seed, ood=True,
        run_dir=str(root / job_name(domain, model, seed)), data_root=args.data_root)
        for domain in args.domains for model in args.models for seed in args.seeds}
    summary = run_domains(configs, root)
    rows = table(summary, args.domains, args.models, args.seeds)
    report = {"host": describe_host(), "date": datetime.date.today().isoformat(), "profile": args.profile,
              "seeds": args.seeds, "settings": dict(args.settings), "ood_shift": {domain: summary[job_name(domain, args.models[0], args.seeds[0])]
                                                 .get("ood_shift") for domain in args.domains},
              "accuracy": rows}
    print(f"{report['date']}, {format_host(report['host'])}, profile {args.profile}, seeds "
          f"{','.join(map(str, args.seeds))}" + "".join(f", {key}={value}" for key, value in args.settings))
    for domain, shift in report["ood_shift"].items():
        print(f"{domain} out of distribution: {shift}")
    print(format_table(rows))
    if args.json:
        (root / "ood.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
