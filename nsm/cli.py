"""The ``nsm`` command line.

    nsm data      look at a domain's data (class balance, sizes, one sample as triples)
    nsm train     train one domain; resumes from RUN_DIR/latest.pt automatically
    nsm validate  train every domain in parallel processes and print a summary
    nsm eval      re-evaluate a run on its test split; a KG run with ranking metrics, on any graph
    nsm explain   one prediction with the hierarchy that produced it (text, JSON, image)
    nsm report    plots of training and a report.md for a run or a validate directory
    nsm cloud     the same jobs on Modal GPUs: plan, deploy, validate, train, train-all, sweep, status, attach,
                  cancel, download

Bad input gets one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from nsm.config import (
    DEFAULT_PROFILE, DOMAINS, INTEGER_SETTINGS, KGE_MODELS, MAX_EPOCHS, MODELS, PROFILES, RANKING_NEGATIVES, RANKINGS,
    assignment_layers, check_integer, check_number, make_run_config, parse_domains, read_settings_file, run_model,
)
from nsm.cloud.cli import add_cloud_parser, run_cloud
from nsm.data.domain import OOD_SPLIT, SPLITS
from nsm.data.domains import domain_questions, get_domain, trainable
from nsm.errors import NSMError
from nsm.rundir import BEST, CONFIG, LATEST, REPORT, RESULTS, SUMMARY, TENSORBOARD, format_summary


def _integer(name: str, least: int, most: int | None = None):
    """An argparse type: an integer from ``least`` to ``most`` (nsm.config.check_integer's rule)."""
    def parse(text: str) -> int:
        try:
            return check_integer(name, int(text), least, most)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        except NSMError as exc:  # argparse turns this into a usage error
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _run_integer(key: str):
    """An argparse type for an integer run setting, with the range validate_run_config holds it to."""
    return _integer(key, *INTEGER_SETTINGS[key])


def _run_number(key: str):
    """An argparse type for a number run setting, with the range validate_run_config holds it to."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            return check_number(key, value)
        except NSMError as exc:  # argparse turns this into a usage error
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def assignment(text: str) -> tuple[str, str]:
    """A ``--set`` item: ``key=value`` -> ``(key, value)``; the value is parsed and checked later."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. model_args.num_bases=4), got {text!r}")
    return key.strip(), value.strip()


def _domain_list(text: str) -> list[str]:
    try:
        return parse_domains(text)
    except NSMError as exc:  # argparse turns this into a usage error
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    profiles = "; ".join(f"{name}: {p.description}" for name, p in PROFILES.items())
    parser.add_argument("--profile", choices=list(PROFILES), default=DEFAULT_PROFILE,
                        help=f"run size (default {DEFAULT_PROFILE}). {profiles}")
    parser.add_argument("--epochs", type=_run_integer("epochs"),
                        help=f"override the profile's epoch count (at most {MAX_EPOCHS:,})")
    parser.add_argument("--seed", type=_run_integer("seed"), help="seed of data generation and training (default 0)")
    parser.add_argument("--model", choices=MODELS,
                        help="nsm (default), a graph baseline (flat-rgcn, bag-mlp) or, with --kg-dir, a KG "
                             "embedding (complex, rotate: transductive, trained on train.txt's triples)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto: CUDA when available")
    parser.add_argument("--data-root", help="where generated datasets are cached (default data_cache)")
    parser.add_argument("--ood", action="store_true",
                        help="also evaluate the best checkpoint on the domain's out-of-distribution split, scaled "
                             "past training (planning: 6-8 blocks, 9-12 moves; causal: mechanism chains of 3; kg: "
                             "worlds and subgraphs twice as large): results.json's ood_metrics, the summary's "
                             "ood acc column")
    parser.add_argument("--wandb", action="store_true",
                        help="also log each epoch to Weights & Biases (pip install 'nsm[wandb]'): project "
                             "$WANDB_PROJECT or nsm, a run named after its run directory; WANDB_MODE=offline logs "
                             "without an account")
    tuning = parser.add_argument_group(
        "hyperparameters", "Precedence, lowest first: the profile, --config, --set, these flags. Every value is "
                           "checked before anything runs.")
    tuning.add_argument("--lr", type=_run_number("lr"), help="learning rate (default: the profile's)")
    tuning.add_argument("--batch-size", type=_run_integer("batch_size"), metavar="N", help="samples per training step")
    tuning.add_argument("--hidden", type=_run_integer("model_args.hidden"), metavar="N",
                        help="the model's width, model_args.hidden (default 48; a KG embedding's hidden_channels)")
    tuning.add_argument("--pool-ratio", type=_run_number("model_args.pool_ratio"), metavar="R",
                        help="share of nodes each pooling keeps, in (0, 1) (model_args.pool_ratio)")
    tuning.add_argument("--cycle-weight", type=_run_number("cycle_loss_weight"), metavar="W",
                        help="weight of the cycle (reconstruction) loss, cycle_loss_weight")
    tuning.add_argument("--saliency-weight", type=_run_number("saliency_loss_weight"), metavar="W",
                        help="weight of the saliency term, saliency_loss_weight (default 0: off): it trains "
                             "WHY to keep the nodes the prediction rests on, so that the trace `nsm explain` "
                             "shows is faithful; one more backward pass a step (1 measured in benchmarks/README.md)")
    tuning.add_argument("--num-levels", type=_run_integer("model_args.num_levels"), metavar="L",
                        help="levels of the hierarchy, 2 or 3 (model_args.num_levels)")
    tuning.add_argument("--set", type=assignment, action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="any other run setting, dotted for nested ones: --set model_args.num_bases=4 "
                             "--set temperature.final_temp=0.5 (a TOML value: 4, 1e-3, true, cpu or \"text\"); "
                             "repeatable, later ones win")
    tuning.add_argument("--config", metavar="FILE.toml",
                        help="run settings from a TOML file: top-level keys and [model_args], [data], [temperature] "
                             "tables")


SPLIT_CHOICES = (*SPLITS, OOD_SPLIT)
SPLIT_HELP = (f"{', '.join(SPLITS)}, or {OOD_SPLIT}: a generated domain's out-of-distribution test split, "
              "samples scaled past what training saw (see --ood)")

DATA_HELP = ("triples only: your labelled triple graphs, a .jsonl file or a directory of them, one sample a line: "
             '{"triples": [[subject, predicate, object, confidence, level], ...], "label": 0, "id": ..., '
             '"node_types": {...}, "node_features": {...}, "split": "train"} (id, node_types, node_features and '
             'split optional)')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nsm", description="NSM: a hierarchical neurosymbolic model over graphs of semantic triples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with `nsm validate` (trains all three domains locally) or `nsm data --domain planning --stats`.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="look at a domain's data: --stats or --show N; export it as TSV or JSONL",
                               description="Print dataset statistics or one sample as readable triples. "
                                           "--export-tsv DIR writes a synthetic KG world (the profile's size) in the "
                                           "standard TSV layout (train.txt, valid.txt, test.txt) and a second world, "
                                           "whose entities are all different, as DIR_ind: GraIL's inductive pair, for "
                                           "`nsm train --kg-dir DIR` and `nsm eval --kg-dir DIR_ind`, or any other "
                                           "KG tool. --export-jsonl DIR writes a domain's three splits as "
                                           "labelled triple graphs in JSON Lines (DIR/<domain>.jsonl), the format "
                                           "of `--domain triples --data PATH`.")
    data.add_argument("--domain", required=True, choices=trainable(), help=domain_questions())
    data.add_argument("--split", choices=SPLIT_CHOICES, default="train", help=SPLIT_HELP)
    data.add_argument("--stats", action="store_true", help="class balance, graph sizes, relations, levels")
    data.add_argument("--show", type=int, metavar="N", help="print sample N as triples with label and reason")
    data.add_argument("--kg-dir", help="kg only: a directory with train.txt/valid.txt/test.txt (TSV)")
    data.add_argument("--data", metavar="PATH", help=DATA_HELP)
    data.add_argument("--json", action="store_true", help="--stats as JSON")
    data.add_argument("--export-tsv", metavar="DIR", help="kg only: write a synthetic KG to DIR and DIR_ind (TSV)")
    data.add_argument("--export-jsonl", metavar="DIR",
                      help="write the domain's train, val and test samples to DIR/<domain>.jsonl, each with its split")
    data.add_argument("--profile", choices=list(PROFILES), default=DEFAULT_PROFILE,
                      help=f"dataset size of this profile (default {DEFAULT_PROFILE})")
    data.add_argument("--seed", type=_run_integer("seed"), default=0)
    data.add_argument("--data-root", default="data_cache")

    train = commands.add_parser("train", help="train one domain (resumes automatically)",
                                description=f"Train one domain. If RUN_DIR/{LATEST} exists the run resumes "
                                            "from it exactly where it stopped; --no-resume starts over.")
    train.add_argument("--domain", required=True, choices=trainable(), help=domain_questions())
    _add_run_options(train)
    train.add_argument("--data", metavar="PATH", help=DATA_HELP)
    train.add_argument("--run-dir", help="where checkpoints and results go (default runs/<domain>)")
    train.add_argument("--checkpoint-every", type=_run_integer("checkpoint_every"),
                       help=f"epochs between {LATEST} writes")
    train.add_argument("--kg-dir", help="kg only: train on your own KG (train.txt/valid.txt/test.txt, TSV)")
    train.add_argument("--hops", type=_integer("--hops", 1),
                       help="kg only: radius of a query's enclosing subgraph (default 2)")
    train.add_argument("--max-entities", type=_integer("--max-entities", 2), metavar="N",
                       help="kg only: the most entities a subgraph keeps (default 24)")
    train.add_argument("--no-resume", action="store_true", help=f"ignore RUN_DIR/{LATEST} and start over")
    train.add_argument("--tensorboard", action="store_true", help=f"write TensorBoard scalars to RUN_DIR/{TENSORBOARD}")
    train.add_argument("--dry-run", action="store_true",
                       help=f"print the resolved run config as JSON (what RUN_DIR/{CONFIG} would hold) and exit "
                            "without training or writing anything")

    validate = commands.add_parser("validate", help="train all domains in parallel and print a summary",
                                   description="Train each domain in its own process; one failing domain never "
                                               f"stops the others. Writes DIR/<domain>/{RESULTS} and "
                                               f"DIR/{SUMMARY}; exit code 1 if any domain failed.")
    _add_run_options(validate)
    validate.add_argument("--run-dir", default="runs/validate", help="default runs/validate")
    validate.add_argument("--domains", type=_domain_list, default=list(DOMAINS),
                          help=f"comma-separated subset of {','.join(DOMAINS)}")
    validate.add_argument("--no-resume", action="store_true", help="start every domain over")

    evaluate = commands.add_parser(
        "eval", help="re-evaluate a run on its test split, or a KG run on another graph",
        description=f"Load RUN_DIR/{BEST} (else {LATEST}) and evaluate it on one split. A run trained with "
                    "--kg-dir is measured as link prediction is: accuracy, AUROC and AUC-PR of each query against "
                    "one corruption, and filtered MRR and Hits@1/3/10 of its head and tail among corruptions "
                    "(sampled: 49 per side, GraIL's protocol; full: every entity). --kg-dir OTHER evaluates it on "
                    "another graph in the same layout: OTHER/train.txt is the graph subgraphs are drawn from, the "
                    "split's file holds the queries; its entities may all be new (GraIL's inductive setting: "
                    "train on X, evaluate on X_ind), its relations must be among the run's.")
    evaluate.add_argument("--run-dir", required=True)
    evaluate.add_argument("--split", choices=SPLIT_CHOICES, default="test", help=SPLIT_HELP)
    evaluate.add_argument("--kg-dir", help="KG runs: evaluate on this graph (default: the run's own --kg-dir)")
    evaluate.add_argument("--ranking", choices=RANKINGS,
                          help="KG runs: sampled (default), full (every entity; slow on large graphs) or none")
    evaluate.add_argument("--negatives", type=_integer("--negatives", 1), default=RANKING_NEGATIVES,
                          help=f"KG runs, sampled ranking: corruptions per side (default {RANKING_NEGATIVES})")
    evaluate.add_argument("--max-queries", type=_integer("--max-queries", 1), metavar="N",
                          help="KG runs: rank N of the split's queries, drawn at random (seeded; default all)")
    evaluate.add_argument("--format", choices=("text", "json"), default="text", help="json: one JSON object")

    explain = commands.add_parser(
        "explain", help="one prediction with the hierarchy that produced it",
        description=f"Run a run's best checkpoint (else {LATEST}) on one sample and print its input triples by "
                    "level, the prediction and the oracle's label and reason, the WHY trace (nodes kept at L2 "
                    "and L3 with their scores, abstract edges with their relations and semiring confidences) "
                    "and the WHAT reconstruction error per level; then how far to trust the trace: the "
                    "fidelity of the L3-kept nodes (fid+: the prediction changes without them; fid-: they alone "
                    "do not keep it) beside random sets of as many nodes.")
    explain.add_argument("--run-dir", required=True, help="a run directory (one domain of a validate directory)")
    explain.add_argument("--split", choices=SPLIT_CHOICES, default="test", help=SPLIT_HELP)
    explain.add_argument("--index", type=int, required=True, help="the sample's position in the split")
    explain.add_argument("--format", choices=("text", "json"), default="text", help="json: the same as data")
    explain.add_argument("--top", type=_integer("K", 1), metavar="K",
                         help="show at most K triples per input level, kept nodes and edges per abstract level")
    explain.add_argument("--image", metavar="PATH",
                         help="also draw the three levels side by side into this file (e.g. out.png, out.svg)")
    explain.add_argument("--data-root", help="where the run's data is cached or regenerated "
                                             "(default: the run's own data_root)")

    report = commands.add_parser(
        "report", help=f"plots of training and a {REPORT}",
        description="Plot each run's losses, per-class validation accuracy, learning rate and temperature per "
                    f"epoch and write {REPORT} with the plots, the test metrics table and collapse warnings. "
                    "DIR is a run directory or a validate directory; only its JSON files and checkpoints are "
                    "read, so a run downloaded from the cloud works as well.")
    report.add_argument("dir", metavar="DIR")
    report.add_argument("--out", help=f"where the PNGs and {REPORT} go (default DIR)")
    add_cloud_parser(commands)
    return parser


def cmd_data(args) -> int:
    from nsm.data import load_dataset

    _check_data_options(args)
    if args.export_tsv:
        return export_tsv(args)
    own_data = {"data_path": _data_path(args.data)} if args.data else {}
    params = make_run_config(args.domain, args.profile, data=own_data)["data"]  # the domain's sizes at that profile
    if args.kg_dir:
        params["kg_dir"] = args.kg_dir
    if args.export_jsonl:
        return export_jsonl(args, params)
    if not args.stats and args.show is None:
        raise NSMError("nsm data needs --stats, --show N, --export-tsv DIR or --export-jsonl DIR")
    dataset = load_dataset(args.domain, args.data_root, args.split, seed=args.seed, **params)
    if args.show is not None:
        description = dataset.describe(args.show)  # first: a sample that does not exist prints nothing
        print(f"{args.domain} {args.split} sample {args.show} of {len(dataset)}")
        print(description)
    if args.stats:
        stats = dataset.stats()
        if args.json:
            print(json.dumps(stats, indent=2))
        else:
            print(format_stats(stats))
    return 0


def _check_data_options(args) -> None:
    if args.kg_dir and args.domain != "kg":
        raise NSMError("--kg-dir only applies to --domain kg")
    if (args.domain == "triples") != bool(args.data):
        raise NSMError("--data PATH only applies to --domain triples" if args.data else
                       "--domain triples reads your own labelled triple graphs: give --data PATH (a .jsonl file "
                       "or a directory of them)")


def _data_path(text: str) -> str:
    """--data as an absolute path: a run's config finds its data from any directory."""
    return str(Path(text).expanduser().resolve())


def export_jsonl(args, params: dict) -> int:
    from nsm.data.domains.triples.export import export_jsonl as write_jsonl

    path, counts = write_jsonl(args.domain, args.export_jsonl, args.data_root, args.seed, params)
    print(f"{path}: " + ", ".join(f"{split} {count} samples" for split, count in counts.items()))
    return 0


def export_tsv(args) -> int:
    from nsm.data.domains.kg.export import export_synthetic_kg

    if args.domain != "kg" or args.kg_dir:
        raise NSMError("--export-tsv writes the synthetic KG: use it with --domain kg and without --kg-dir")
    size = get_domain("kg").profile_data[args.profile]
    for path in export_synthetic_kg(args.export_tsv, size["num_entities"], size["num_triples"], args.seed):
        lines = {name: sum(1 for _ in open(path / name, encoding="utf-8")) for name in ("train.txt", "valid.txt",
                                                                                           "test.txt")}
        print(f"{path}: " + ", ".join(f"{name} {count} triples" for name, count in lines.items()))
    return 0


def format_stats(stats: dict) -> str:
    counts = stats["class_counts"]
    total = max(1, stats["samples"])
    balance = ", ".join(f"{label}: {n} ({n / total:.1%})" for label, n in counts.items())
    relations = ", ".join(f"{name} {n}" for name, n in stats["relations"].items())
    return "\n".join([
        f"domain {stats['domain']}, split {stats['split']}: {stats['samples']} samples",
        f"classes: {balance}",
        "nodes per graph: min {min:.0f}, mean {mean}, max {max:.0f}".format(**stats["nodes"]),
        "edges per graph: min {min:.0f}, mean {mean}, max {max:.0f}".format(**stats["edges"]),
        f"node levels: {stats['node_levels']}",
        f"triple levels: {stats['triple_levels']}",
        f"relations ({stats['relations_used']} used): {relations}",
    ])


def _settings(args) -> list[tuple[str, dict]]:
    """The layers of settings below the flags: the --config file's, then each --set, in order."""
    layers = []
    if args.config:
        layers.append((args.config, read_settings_file(args.config)))
    return layers + assignment_layers(args.settings)


def _run_config(args, domain: str, run_dir: str, settings: list[tuple[str, dict]]) -> dict:
    # Options a command lacks, or left unset, are None: make_run_config keeps the lower layers' value.
    model = run_model(args.model, settings)
    hidden = "hidden_channels" if model in KGE_MODELS else "hidden"
    return make_run_config(
        domain, args.profile, settings, epochs=args.epochs, seed=args.seed, model=args.model, device=args.device,
        data_root=args.data_root, run_dir=run_dir, resume=False if args.no_resume else None,
        kg_dir=getattr(args, "kg_dir", None), checkpoint_every=getattr(args, "checkpoint_every", None),
        tensorboard=getattr(args, "tensorboard", False) or None,
        wandb=args.wandb or None, ood=args.ood or None,
        lr=args.lr, batch_size=args.batch_size, cycle_loss_weight=args.cycle_weight,
        saliency_loss_weight=args.saliency_weight,
        data={"hops": getattr(args, "hops", None), "max_entities": getattr(args, "max_entities", None),
              "data_path": _data_path(args.data) if getattr(args, "data", None) else None},
        model_args={hidden: args.hidden, "pool_ratio": args.pool_ratio, "num_levels": args.num_levels},
    )


def cmd_train(args) -> int:
    from nsm.job import run_job, sized_to_data

    if (args.kg_dir or args.hops or args.max_entities) and args.domain != "kg":
        raise NSMError("--kg-dir, --hops and --max-entities only apply to --domain kg")
    if args.data and args.domain != "triples":
        raise NSMError("--data PATH only applies to --domain triples")
    config = _run_config(args, args.domain, args.run_dir or f"runs/{args.domain}", _settings(args))
    if args.dry_run:
        # As the job will run it: a --kg-dir or triples run sized to its files' vocabulary (read, not cached).
        print(json.dumps(sized_to_data(config), indent=2))
        return 0
    with logging_redirect_tqdm():  # the epoch lines go above the progress bar, not through it
        results = run_job(config)
    print(format_summary({args.domain: results}))
    print(f"results: {Path(config['run_dir']) / RESULTS}")
    return 0


def cmd_validate(args) -> int:
    from nsm.runners.local import run_domains

    root = Path(args.run_dir)
    settings = _settings(args)
    configs = {domain: _run_config(args, domain, str(root / domain), settings) for domain in args.domains}
    summary = run_domains(configs, root)
    print(format_summary(summary))
    print(f"summary: {root / SUMMARY}")
    return 0 if all(r["status"] == "success" for r in summary.values()) else 1


def cmd_eval(args) -> int:
    from nsm.assemble import build_datasets
    from nsm.evaluation.evaluator import evaluate_split, load_trained
    from nsm.evaluation.link_prediction import evaluate_trained_on_kg

    config, model = load_trained(args.run_dir)
    if config.get("relations") is not None:
        metrics = evaluate_trained_on_kg(config, model, args.kg_dir, args.split, args.ranking or "sampled",
                                         args.negatives, args.max_queries)
    elif args.kg_dir is not None or args.ranking is not None or args.max_queries is not None:
        raise NSMError(f"--kg-dir, --ranking and --max-queries need a run trained on a KG in the TSV layout (nsm train --domain kg "
                       f"--kg-dir DIR); {args.run_dir} was trained on the generated {config['domain']} data")
    else:
        metrics = evaluate_split(config, model, build_datasets(config, (args.split,))[args.split])
    if args.format == "json":
        print(json.dumps(metrics, indent=2, default=str))
    else:
        print("\n".join(f"{key}: {_shown(value)}" for key, value in metrics.items()))
    return 0


def _shown(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def configure_logging() -> None:
    """Show the trainer's progress lines (first-batch shapes, one line per epoch) on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)


def cmd_explain(args) -> int:
    from nsm.analysis.draw import draw_explanation, image_path
    from nsm.analysis.explain import explain_run, format_explanation, limit

    image = None if args.image is None else image_path(args.image)  # refused before the model runs
    explanation = explain_run(args.run_dir, args.index, args.split, data_root=args.data_root)
    shown = limit(explanation, args.top)
    print(json.dumps(shown, indent=2, ensure_ascii=False) if args.format == "json" else format_explanation(shown))
    if image is not None:
        path = draw_explanation(explanation, image)
        print(f"image: {path}", file=sys.stderr if args.format == "json" else sys.stdout)
    return 0


def cmd_report(args) -> int:
    from nsm.analysis.report import write_report

    print(f"report: {write_report(args.dir, args.out)}")
    return 0


COMMANDS = {"data": cmd_data, "train": cmd_train, "validate": cmd_validate, "eval": cmd_eval,
            "explain": cmd_explain, "report": cmd_report,
            "cloud": run_cloud}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return COMMANDS[args.command](args)
    except NSMError as exc:  # named like argparse's errors: "nsm cloud sweep: error: ..."
        command = " ".join(filter(None, (args.command, getattr(args, "cloud_command", None))))
        print(f"nsm {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted — run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
