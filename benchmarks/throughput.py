"""Training and inference throughput (graphs/s) of a model, per domain and batch size.

Each domain's model is built from its settings in ``nsm.config`` (the seed's configurations:
64 node features, 3 levels; width 48) and trained with the real ``NSMTrainer`` on the domain's train split
through PyG's ``DataLoader``, so a figure includes batching, the loss, the backward pass, gradient
clipping and the optimiser step: what one epoch of ``nsm train`` costs. One warm-up epoch is run
first and not counted. Inference is ``NSMTrainer.evaluate`` over the same split.

``--profile-steps N`` also profiles N training steps at each batch size (``torch.profiler``) and
reports the share of a step each part takes: the forward pass by part (the relational
convolutions by role, grouping the edges by relation, top-k pooling with edge coarsening, the
couplings, the readout, the rest), the backward pass, the optimiser step, and the rest (losses,
clipping; the profiled batches are collated beforehand). The profiler's own cost per operation
weighs on the many small ones.

``--weights RUN_DIR`` starts from a trained run's ``best.pt`` (model and optimiser state) instead
of fresh weights: a trained model was slower (issue 19), because under Adam's L2 decay the weights
that only weight decay moved (those of always-zero input features) and their moments decayed into
subnormal floats, which CPU arithmetic handles slowly; the trainer's AdamW leaves them alone. Subnormals are flushed to zero, as in a training job
(:func:`nsm.job.flush_denormals`), unless ``--keep-denormals``.

    python benchmarks/throughput.py [--domains planning] [--batch-sizes 32,256] [--threads 1]
                                    [--samples 2000] [--epochs 2] [--device cpu] [--json]
                                    [--weights RUN_DIR] [--keep-denormals] [--profile-steps N]
                                    [--set model_args.hidden=32 ...]

Pure measurement: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import platform
import resource
import statistics
import sys
import time
from typing import Any

import torch
from torch.profiler import profile, record_function
from torch_geometric.loader import DataLoader

import nsm.models.flat_rgcn
import nsm.models.hierarchical
import nsm.models.rgcn
from nsm.cli import assignment
from nsm.config import DOMAINS, MODELS, assignment_layers, make_run_config
from nsm.data import load_dataset
from nsm.assemble import resolve_device
from nsm.job import flush_denormals, make_trainer
from nsm.models import build_model
from nsm.models.coupling import CouplingStack
from nsm.models.pooling import WhyPooling
from nsm.models.readout import GraphHead
from nsm.rundir import BEST
from nsm.training.checkpoint import load_checkpoint


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def subnormal_share(tensors) -> float:
    """The share of nonzero float32 values that are subnormal, read from their bits (with
    flush-denormal on, float comparisons would see them as zero)."""
    bits = [t.detach().float().contiguous().view(torch.int32) & 0x7FFFFFFF
            for t in tensors if torch.is_tensor(t) and t.is_floating_point()]
    nonzero = sum(int((b != 0).sum()) for b in bits)
    return sum(int(((b != 0) & (b < 0x00800000)).sum()) for b in bits) / max(nonzero, 1)


# The parts of a forward pass, labelled for the profiler: modules by name (the first pattern that
# a module's dotted name matches), and the functions and methods below.
CONVOLUTION_ROLES = (("concrete_convs.", "convolutions: concrete level"),
                     ("abstract_convs.", "convolutions: abstract levels"),
                     (".pool.score", "convolutions: WHY scoring"), (".unpool.", "convolutions: WHAT"),
                     ("convs.", "convolutions: flat R-GCN"))
GROUPING = "grouping edges by relation"
POOLING = "top-k pooling and edge coarsening"
COUPLINGS = "couplings (forward and inverse)"
READOUT = "readout"
FORWARD = "forward pass"


def label_forward_parts(model: torch.nn.Module) -> contextlib.ExitStack:
    """Wrap the model's parts in profiler labels until the returned stack closes."""
    stack = contextlib.ExitStack()

    def hook(module, label):
        def enter(*_):
            module._profile_label = record_function(label)
            module._profile_label.__enter__()

        def leave(*_):
            module._profile_label.__exit__(None, None, None)

        stack.callback(module.register_forward_pre_hook(enter).remove)
        stack.callback(module.register_forward_hook(leave).remove)

    for name, module in model.named_modules():
        if isinstance(module, nsm.models.rgcn.ConfidenceRGCNConv):
            hook(module, next(label for pattern, label in CONVOLUTION_ROLES if pattern in name))
        elif isinstance(module, WhyPooling):
            hook(module, POOLING)
        elif isinstance(module, CouplingStack):
            hook(module, COUPLINGS)
        elif isinstance(module, GraphHead):
            hook(module, READOUT)
    hook(model, FORWARD)

    def labelled(owner, attribute, label):
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            with record_function(label):
                return original(*args, **kwargs)

        setattr(owner, attribute, wrapper)
        stack.callback(setattr, owner, attribute, original)

    labelled(CouplingStack, "inverse", COUPLINGS)
    for module in (nsm.models.hierarchical, nsm.models.flat_rgcn):
        labelled(module, "group_by_relation", GROUPING)
    return stack


def step_shares(trainer, loader, task_type: str, steps: int) -> dict[str, float]:
    """Per part of a training step, its share of the profiled wall time (see the module docstring)."""
    batches = list(itertools.islice(loader, steps))
    with label_forward_parts(trainer.model), profile() as profiler:
        started = time.perf_counter()
        trainer.train_epoch(batches, 0, task_type)
        wall_us = (time.perf_counter() - started) * 1e6
    totals: dict[str, float] = {}
    for event in profiler.key_averages():
        if event.key.startswith("autograd::engine::evaluate_function"):
            name = "backward pass"
        elif event.key.startswith("Optimizer.step"):
            name = "optimiser step"
        else:
            name = event.key
        totals[name] = totals.get(name, 0.0) + event.cpu_time_total
    parts = [label for _, label in CONVOLUTION_ROLES] + [GROUPING, COUPLINGS, READOUT]
    shares = {part: totals[part] / wall_us for part in parts if part in totals}
    # WHY's scoring convolution runs inside the pooling module: count it once.
    if POOLING in totals:
        shares[POOLING] = (totals[POOLING] - totals.get("convolutions: WHY scoring", 0.0)) / wall_us
    shares["forward: the rest"] = totals[FORWARD] / wall_us - sum(shares.values())
    for name in ("backward pass", "optimiser step"):
        shares[name] = totals.get(name, 0.0) / wall_us
    shares["the rest of the step"] = 1 - sum(shares.values())
    return {part: round(share, 3) for part, share in shares.items()}


def measure(domain: str, model_name: str, batch_size: int, dataset, device: torch.device, epochs: int,
            run_dir: str, weights: str | None = None, profile_steps: int = 0,
            settings: list[tuple[str, dict[str, Any]]] = ()) -> dict:
    torch.manual_seed(0)
    config = make_run_config(domain, "dev", settings, model=model_name, batch_size=batch_size,
                             run_dir=run_dir, checkpoint_every=10**6)
    model = build_model(model_name, **config["model_args"]).to(device)
    trainer = make_trainer(config, model, device)
    trainer.progress = None
    row = {}
    if weights:  # the trained run's weights and Adam moments (its configuration must build this model)
        state = load_checkpoint(f"{weights}/{BEST}")
        model.load_state_dict(state["model_state_dict"])
        trainer.optimizer.load_state_dict(state["optimizer_state_dict"])
        row["subnormal_weights"] = round(subnormal_share(model.state_dict().values()), 4)
        row["subnormal_adam_state"] = round(subnormal_share(
            value for moments in trainer.optimizer.state.values() for value in moments.values()), 4)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0),
                        pin_memory=device.type == "cuda")
    task_type = config["model_args"]["task_type"]
    train_rates = []
    for epoch in range(epochs + 1):  # epoch 0 warms up (allocator, lazy init) and is not counted
        # One training epoch exactly as NSMTrainer.train runs it, without validation and checkpoints.
        metrics = trainer.train_epoch(loader, epoch, task_type)
        if epoch:
            train_rates.append(metrics["graphs_per_s"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.evaluate(loader, task_type, compute_metrics=None)
    if device.type == "cuda":
        torch.cuda.synchronize()
    inference = len(dataset) / (time.perf_counter() - start)
    if profile_steps:
        row["step_shares"] = step_shares(trainer, loader, task_type, profile_steps)
    return {"train_graphs_per_s": round(statistics.median(train_rates), 1),
            "inference_graphs_per_s": round(inference, 1), **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--batch-sizes", default="32,256")
    parser.add_argument("--model", choices=MODELS, default="nsm")
    parser.add_argument("--samples", type=int, default=2000, help="dataset size; the train split is 70%% of it")
    parser.add_argument("--epochs", type=int, default=2, help="timed training epochs (after one warm-up epoch)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--data-root", default="data_cache")
    parser.add_argument("--run-dir", default="/tmp/nsm-throughput", help="scratch directory for checkpoints")
    parser.add_argument("--weights", metavar="RUN_DIR", help="start from this run's best.pt (e.g. runs/validate/planning)")
    parser.add_argument("--keep-denormals", action="store_true",
                        help="do not flush subnormal floats to zero (a training job flushes them)")
    parser.add_argument("--profile-steps", type=int, default=0, metavar="N",
                        help="also profile N training steps per batch size: each part's share of a step")
    parser.add_argument("--set", type=assignment, action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="a run setting, as for nsm train (model_args.hidden=32, model_args.concrete_convs=1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # Before torch's thread pool starts, so that its threads inherit the mode (as in a job).
    flushing = contextlib.nullcontext() if args.keep_denormals else flush_denormals()
    with flushing:
        run(args)


def run(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                          "torch": torch.__version__, "threads": torch.get_num_threads(),
                          "flush_denormal": not args.keep_denormals},
              "weights": args.weights or "fresh",
              "model": args.model, "settings": [f"{key}={text}" for key, text in args.settings],
              "results": {}}
    settings = assignment_layers(args.settings)
    for domain in args.domains.split(","):
        dataset = load_dataset(domain, args.data_root, "train", seed=0,
                               node_feature_dim=DOMAINS[domain].node_features,
                               num_samples=args.samples)
        nodes = [g.num_nodes for g in dataset.graphs]
        edges = [g.num_edges for g in dataset.graphs]
        sizes = {"graphs": len(dataset), "mean_nodes": round(statistics.mean(nodes), 1),
                 "mean_edges": round(statistics.mean(edges), 1)}
        rows = {}
        for batch_size in map(int, args.batch_sizes.split(",")):
            rows[batch_size] = measure(domain, args.model, batch_size, dataset, device, args.epochs,
                                       f"{args.run_dir}/{domain}-{batch_size}", args.weights, args.profile_steps,
                                       settings)
            if not args.json:
                print(f"{domain:<9} {sizes['mean_nodes']:>5} nodes {sizes['mean_edges']:>6} edges  batch {batch_size:>4}: "
                      f"train {rows[batch_size]['train_graphs_per_s']:>8.1f} graphs/s, "
                      f"inference {rows[batch_size]['inference_graphs_per_s']:>8.1f} graphs/s", flush=True)
                for part, share in rows[batch_size].get("step_shares", {}).items():
                    print(f"    {share:>6.1%}  {part}")
        report["results"][domain] = {"graph_sizes": sizes, "batch": rows}
    report["peak_rss_mib"] = round(peak_rss_mib(), 1)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.model} on {report['machine']['device']}, {report['machine']['threads']} torch thread(s), "
              f"peak RSS {report['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
