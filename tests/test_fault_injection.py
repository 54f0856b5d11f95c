"""kill -9 at seeded points of real `nsm train` runs; each run, started again with the same command,
must end exactly as the uninterrupted run did: the same results.json, history and weights, and no
temporary file left behind.

The points (nsm.faults.POINTS) cover data generation (each split's cache file, before and after
its rename), mid-epoch (after an optimiser step), validation and the final test evaluation (after
a batch), each step of a checkpoint write (before the rename, after latest.pt became previous.pt,
after the rename) and the writes of config.json, history.json and results.json. The runs use torch's default
thread count, as `nsm train` does. Each run is `nsm.cli.main(["train", ...])` in a process of its
own, forked from a server that has imported NSM already (multiprocessing's forkserver): a fresh
interpreter each time would spend most of the suite's minutes importing torch. Run directly (``python tests/test_fault_injection.py``) it
prints the counts the README reports.
"""

import json
import multiprocessing
import os
import random
import signal
import sys
from pathlib import Path

import pytest
import torch

from nsm import faults
from nsm.atomic import TEMP_PREFIX
from nsm.cli import main
from nsm.faults import POINTS

# Not `rounding`: bit-exact by construction on any kernels, and too long to run twice.
pytestmark = pytest.mark.slow

DOMAINS = ("planning", "causal")
EPOCHS = 3
# How often a quick run of EPOCHS epochs passes each point (120 samples: 84 train = 3 batches of 32,
# 18 val and 18 test = 1 batch each; each split's samples and graphs cached; best.pt at least once
# and latest.pt every epoch; the previous.pt rename from the second latest.pt on; config.json,
# history.json, then results.json).
PASSES = {"data.before-replace": 6, "data.after-replace": 6, "train.step": 3 * EPOCHS, "eval.batch": EPOCHS + 1,
          "checkpoint.before-replace": EPOCHS + 1, "checkpoint.after-keep-previous": EPOCHS - 1,
          "checkpoint.after-replace": EPOCHS + 1, "json.before-replace": 3, "json.after-replace": 3}
POINTS_PER_DOMAIN = 12
TIMING_KEYS = ("time_s", "graphs_per_s")


def draw_points(seed: int = 15, per_domain: int = POINTS_PER_DOMAIN) -> list[tuple[str, str, int]]:
    """(domain, point, n), all different: per domain every point once, and the final evaluation's
    batch (the last of ``eval.batch``), the rest drawn at random."""
    rng = random.Random(seed)
    drawn = []
    final_evaluation = ("eval.batch", PASSES["eval.batch"])
    for domain in DOMAINS:
        chosen = [(point, rng.randint(1, PASSES[point])) for point in POINTS]
        chosen += [final_evaluation] if final_evaluation not in chosen else []
        rest = [(point, n) for point in POINTS for n in range(1, PASSES[point] + 1) if (point, n) not in chosen]
        drawn += [(domain, point, n) for point, n in chosen + rng.sample(rest, per_domain - len(chosen))]
    return drawn


def _train_process(argv: list[str], fault: str | None, log: str) -> None:
    """The body of one run's process: its output to ``log``, its fault armed, then `nsm train`."""
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    faults.arm(fault)
    sys.exit(main(argv))


def train(run_dir: Path, domain: str, fault: str | None = None) -> tuple[int, str]:
    """`nsm train` of ``domain`` (quick, EPOCHS epochs) in ``run_dir``: (exit code, its output);
    the exit code is -9 for a process the fault killed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    argv = ["train", "--domain", domain, "--profile", "quick", "--epochs", str(EPOCHS), "--run-dir", str(run_dir),
            "--data-root", str(run_dir / "data")]
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["nsm.cli", "nsm.job"])
    process = context.Process(target=_train_process, args=(argv, fault, str(log)))
    process.start()
    process.join(timeout=600)
    return process.exitcode, log.read_text()


def outcome(run_dir: Path) -> dict:
    """What a run leaves that must not depend on a crash: results, history (timings aside), weights."""
    results = json.loads((run_dir / "results.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    for epoch in history["train"]:
        for key in TIMING_KEYS:
            epoch.pop(key)
    weights = {name: torch.load(run_dir / name, weights_only=True)["model_state_dict"]
               for name in ("best.pt", "latest.pt")}
    return {"results": {key: results[key] for key in ("status", "epochs_run", "best_val_loss", "dataset_sizes",
                                                      "test_metrics")},
            "history": history, "weights": weights}


def same(a: dict, b: dict) -> bool:
    return a["results"] == b["results"] and a["history"] == b["history"] and all(
        a["weights"][name].keys() == b["weights"][name].keys()
        and all(torch.equal(a["weights"][name][key], b["weights"][name][key]) for key in a["weights"][name])
        for name in a["weights"])


def run_points(root: Path, points: list[tuple[str, str, int]]) -> dict[str, list]:
    """Kill a run at each point, start it again, compare with the uninterrupted run."""
    references = {}
    for domain in sorted({domain for domain, _, _ in points}):
        code, output = train(root / f"{domain}-reference", domain)
        assert code == 0, output
        references[domain] = outcome(root / f"{domain}-reference")
    counts = {"identical": [], "different": [], "lost": []}
    for domain, point, n in points:
        run_dir = root / f"{domain}-{point}-{n}"
        code, output = train(run_dir, domain, f"{point}:{n}")
        assert code == -signal.SIGKILL, f"{point}:{n} was never reached: {output[-2000:]}"
        code, output = train(run_dir, domain)
        if code != 0:
            counts["lost"].append((domain, point, n, output.strip().splitlines()[-1:]))
        else:
            clean = not any(run_dir.rglob(f"{TEMP_PREFIX}*"))
            identical = clean and same(outcome(run_dir), references[domain])
            counts["identical" if identical else "different"].append((domain, point, n))
    return counts


def test_a_run_killed_anywhere_ends_as_the_uninterrupted_one(tmp_path):
    points = draw_points()
    assert len(points) >= 20 and {point for _, point, _ in points} == set(POINTS)
    assert all((domain, "eval.batch", PASSES["eval.batch"]) in points for domain in DOMAINS)
    counts = run_points(tmp_path, points)
    assert counts["lost"] == [] and counts["different"] == []
    assert len(counts["identical"]) == len(points)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        tried = draw_points()
        result = run_points(Path(root), tried)
    print(f"points tried {len(tried)}, identical {len(result['identical'])}, different {len(result['different'])}, "
          f"lost {len(result['lost'])}")
    for kind in ("different", "lost"):
        for item in result[kind]:
            print(kind, *item)
