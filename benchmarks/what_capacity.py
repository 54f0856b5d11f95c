"""How low can WHAT's reconstruction error go on a trained run? Train WHAT alone and see.

Loads a run (``best.pt``), freezes every weight but WHAT's unpooling networks at each level, and
trains those on the cycle loss alone, on the first ``--train-graphs`` training graphs, with Adam
and a cosine schedule; prints the test split's reconstruction errors before and after each epoch.
With ``--convs``/``--width`` WHAT is replaced by a fresh one of that shape: if a larger WHAT,
trained to convergence on fixed features, stays above a target, the limit is what WHAT is given,
not how it was trained.

    python benchmarks/what_capacity.py runs/validate/planning [--convs 3 --width 256] [--epochs 12]
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.data import Subset
from torch_geometric.loader import DataLoader

from nsm.errors import NSMError
from nsm.assemble import build_datasets, build_loaders
from nsm.evaluation.evaluator import load_run
from nsm.job import make_trainer
from nsm.models import NSMModel
from nsm.models.pooling import WhatUnpooling
from nsm.training.batches import unpack_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--convs", type=int, help="a fresh WHAT with this many convolutions (>= 2)")
    parser.add_argument("--width", type=int, help="a fresh WHAT this wide (default: the model's width)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, help="default: 3e-3 for a fresh WHAT, 1e-3 to go on training the run's")
    parser.add_argument("--train-graphs", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.convs is not None and args.convs < 2:
        parser.error("--convs must be at least 2 (one spreads the kept features, one predicts)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    try:
        config, test_set, model = load_run(args.run_dir)
    except NSMError as exc:
        parser.error(str(exc))
    if not isinstance(model, NSMModel):
        parser.error(f"{args.run_dir} is a {config['model']} run: only the NSM has a WHAT")
    device = next(model.parameters()).device
    fresh = args.convs is not None or args.width is not None
    if fresh:
        settings = config["model_args"]
        for layer in model.hierarchy:
            layer.unpool = WhatUnpooling(layer.unpool.predict.out_channels, settings["num_relations"],
                                         settings["num_bases"], hidden=args.width, convs=args.convs or 2).to(device)
    model.requires_grad_(False)
    what = model.reconstruction_parameters()
    for parameter in what:
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(what, lr=args.lr or (3e-3 if fresh else 1e-3))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    train_set = build_datasets(config, ("train",))["train"]
    train = DataLoader(Subset(train_set, range(min(args.train_graphs, len(train_set)))),
                       batch_size=config["batch_size"], shuffle=True)
    test = build_loaders(config, {"test": test_set}, device)["test"]
    evaluator = make_trainer(config, model, device)

    def test_errors() -> dict[str, float]:
        metrics = evaluator.evaluate(test, config["model_args"]["task_type"], compute_metrics=None)
        return {key: round(value, 4) for key, value in metrics.items() if key.startswith("recon_error")}

    history = [{"epoch": 0, **test_errors()}]
    print(history[-1], flush=True)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch in train:
            loss = model(**unpack_batch(batch, device)[0])["cycle_loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        history.append({"epoch": epoch, **test_errors()})
        print(history[-1], flush=True)
    if args.json:
        print(json.dumps({"run_dir": args.run_dir, "convs": args.convs, "width": args.width, "fresh": fresh,
                          "history": history}))


if __name__ == "__main__":
    main()
