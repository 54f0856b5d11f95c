"""``nsm cloud ...``: the Modal app's entry points, with the cost plan first, and the way back.

    nsm cloud plan       GPU, timeout, attempts, GPU-hours and cost of each job (no Modal account needed)
    nsm cloud validate   every domain, spawned at once          (modal run -m nsm.cloud.app::validate_all)
    nsm cloud train      one domain                              (::train)
    nsm cloud train-all  every domain through one .map           (::train_all)
    nsm cloud sweep      seeds or hyperparameters through .map  (::sweep)
    nsm cloud download   copy a run's directory from the checkpoint volume

The launching commands print the plan, run ``modal run`` with the profile in the environment (the
app reads it at import) and exit 1 when a job failed, like ``nsm validate``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from nsm.cloud.jobs import cloud_run_config, config_differences, default_run_name, point_label, sweep_points
from nsm.cloud.plan import format_plan, gpu_choices
from nsm.config import CLOUD, CLOUD_PROFILES, DEFAULT_PROFILE, DOMAINS, parse_domains
from nsm.data.domains import domain_questions
from nsm.errors import NSMError
from nsm.rundir import SUMMARY, read_summary

NEEDS_MODAL = "the cloud commands need Modal: pip install -e .[cloud], then `modal setup` once"


def _run_name(text: str) -> str:
    """A run's name is one directory under the volume's mount: '../x' would train outside the volume."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", text):
        raise argparse.ArgumentTypeError(f"a run is named by one directory on the volume, like 'dev' or 'lr-study' "
                                         f"(letters, digits, '.', '_', '-'), got {text!r}")
    return text


def add_cloud_parser(commands: argparse._SubParsersAction) -> None:
    cloud = commands.add_parser(
        "cloud", help="run on Modal GPUs: plan, validate, train, train-all, sweep, download",
        description="Run NSM's jobs on Modal GPUs (the same job function as locally). Setup: "
                    "pip install -e .[cloud]; modal setup. `nsm cloud plan` shows what a run costs first.",
    )
    actions = cloud.add_subparsers(dest="cloud_command", required=True, metavar="ACTION")
    profiles = "; ".join(f"{name}: {', '.join(gpu_choices(p))}, "
                         f"{p.timeout_minutes:g} min per attempt, {p.retries} retries"
                         for name, p in CLOUD_PROFILES.items())

    def add_profile(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--profile", choices=list(CLOUD_PROFILES), default=DEFAULT_PROFILE,
                            help=f"run size and GPU settings, nsm/config.py (default {DEFAULT_PROFILE}). {profiles}")
        parser.add_argument("--keep-warm", action="store_true",
                            help="keep one container up while the app runs (min_containers=1): instant starts "
                                 "during a development sprint, billed even when idle (see the plan)")

    def add_launch(parser: argparse.ArgumentParser, entry: str) -> None:
        parser.set_defaults(entry=entry)
        parser.epilog = (f"Prints the plan, then runs `modal run -m nsm.cloud.app::{entry}`; writes "
                         f"{CLOUD.local_dir}/RUN/{SUMMARY} and exits 1 if a job failed.")
        add_profile(parser)
        parser.add_argument("--run", type=_run_name,
                            help="the run's name: its directory on the volume. The same name continues the run; "
                                 "a new one starts afresh (default: a new run, the profile and the UTC time, e.g. dev-20260101-120000)")
        parser.add_argument("--interactive", action="store_true",
                            help="modal run -i: this terminal is attached to the containers, so a breakpoint() "
                                 "or modal.interact() in the code opens a live shell there")

    plan = actions.add_parser("plan", help="cost and GPU-hours of each job, before spending anything",
                              description="Print each job's GPU type, timeout per attempt, attempts, expected "
                                          "and worst-case GPU-hours and cost, from nsm/config.py.")
    add_profile(plan)
    plan.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated jobs to plan (default all)")

    def add_domains_launcher(name: str, entry: str, help_text: str) -> None:
        parser = actions.add_parser(name, help=help_text, description=f"{help_text[0].upper()}{help_text[1:]}.")
        add_launch(parser, entry)
        parser.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated subset (default all)")

    add_domains_launcher("validate", "validate_all", "every domain, spawned at once, collected one by one")
    train = actions.add_parser("train", help="one domain", description="Train one domain on Modal.")
    add_launch(train, "train")
    train.add_argument("--domain", required=True, choices=DOMAINS, help=domain_questions())
    add_domains_launcher("train-all", "train_all", "every domain through one .map")

    sweep = actions.add_parser("sweep", help="seeds or hyperparameters, one GPU per point",
                               description="Train every combination of the comma-separated values, one container "
                                           "each (.map): e.g. --seed 0,1,2 --lr 1e-3,3e-4 is six jobs.")
    add_launch(sweep, "sweep")
    sweep.add_argument("--domain", required=True, choices=DOMAINS, help=domain_questions())
    sweep.add_argument("--seed", default="", help="comma-separated seeds")
    sweep.add_argument("--lr", default="", help="comma-separated learning rates")
    sweep.add_argument("--batch-size", default="", help="comma-separated batch sizes")

    download = actions.add_parser("download", help="copy a run's checkpoints and results from the volume",
                                  description="Copy RUN's directory from the checkpoint volume to DIR/RUN; "
                                              "then `nsm eval --run-dir DIR/RUN/<domain>` works on it.")
    download.add_argument("run", metavar="RUN", help="the run's name (its directory on the volume)")
    download.add_argument("--to", metavar="DIR", default=CLOUD.local_dir,
                          help=f"where to put it (default {CLOUD.local_dir})")


def run_cloud(args: argparse.Namespace) -> int:
    if args.cloud_command == "plan":
        print(format_plan(args.profile, parse_domains(args.domains), args.keep_warm))
        return 0
    if args.cloud_command == "download":
        require_modal()
        return download(args.run, args.to)
    return launch(args)


def require_modal() -> None:
    if importlib.util.find_spec("modal") is None:
        raise NSMError(NEEDS_MODAL)


def launch(args: argparse.Namespace) -> int:
    """Check the jobs, print the plan, ``modal run`` the entry point, exit 1 if a job failed."""
    if args.entry == "sweep":
        run = args.run or default_run_name(args.profile, sweep_domain=args.domain)
        configs = sweep_configs(args, run)
        options = {"domain": args.domain, "seed": args.seed, "lr": args.lr, "batch-size": args.batch_size}
    else:
        domains = [args.domain] if args.entry == "train" else parse_domains(args.domains)
        run = args.run or default_run_name(args.profile)
        configs = {domain: cloud_run_config(domain, args.profile, run) for domain in domains}
        options = {"domain": args.domain} if args.entry == "train" else {"domains": args.domains}
    jobs = list(configs)
    warn_if_reused(run, configs)
    require_modal()  # after the jobs: bad input is refused as such, with Modal or without
    print(format_plan(args.profile, jobs, args.keep_warm), flush=True)
    command = [sys.executable, "-m", "modal", "run", *(["-i"] if args.interactive else []),
               "-m", f"nsm.cloud.app::{args.entry}", "--run", run]
    for option, value in options.items():
        if value:
            command += [f"--{option}", value]
    env = dict(os.environ, NSM_CLOUD_PROFILE=args.profile, NSM_CLOUD_KEEP_WARM="1" if args.keep_warm else "0")
    returncode = subprocess.run(command, env=env).returncode
    if returncode != 0:
        return returncode
    summary = read_summary(Path(CLOUD.local_dir, run), strict=False)  # the local entry point wrote it
    if summary is None:
        raise NSMError(f"modal run succeeded but left no readable {Path(CLOUD.local_dir, run, SUMMARY)}")
    return 0 if all(result["status"] == "success" for result in summary.values()) else 1


def sweep_configs(args: argparse.Namespace, run: str) -> dict[str, dict[str, Any]]:
    """The sweep's points by name, each with the configuration its container will build, so that a
    point that cannot run (seed -3, lr inf, batch size 0) is refused before any plan or cost."""
    points = sweep_points(seed=args.seed, lr=args.lr, batch_size=args.batch_size)
    jobs = [point_label(point) for point in points]
    configs = {}
    for job, point in zip(jobs, points):
        try:
            configs[job] = cloud_run_config(args.domain, args.profile, run, point=point)
        except NSMError as exc:
            raise NSMError(f"sweep point {job}: {exc}") from None
    repeated = sorted({job for job in jobs if jobs.count(job) > 1})
    if repeated:  # 1e-3 and 0.001, say: two containers would train in one directory
        raise NSMError(f"the sweep lists {', '.join(repeated)} more than once")
    return configs


def warn_if_reused(run: str, configs: dict[str, dict[str, Any]]) -> list[str]:
    """Warn (one line on stderr, per job) where run ``run`` already holds results of another
    configuration of a job: the job would resume from that run's checkpoints. Returns the lines."""
    summary = read_summary(Path(CLOUD.local_dir, run), strict=False) or {}
    lines = []
    for job, config in configs.items():
        earlier = summary.get(job) if isinstance(summary.get(job), dict) else {}
        old = earlier.get("config") or (earlier.get("finished_run") or {}).get("config")
        differences = config_differences(old, config) if isinstance(old, dict) else []
        if differences:
            lines.append(f"warning: run {run!r} already holds results of {job} with other settings "
                         f"({', '.join(differences[:4])}{', ...' if len(differences) > 4 else ''}); it will resume "
                         f"from their checkpoints. Give a new --run to start afresh")
    for line in lines:
        print(line, file=sys.stderr)
    return lines


def download(run: str, to: str) -> int:
    import modal
    import modal.exception

    from nsm.cloud.volume import copy_run

    try:
        written = copy_run(modal.Volume.from_name(CLOUD.volume), run, to)
    except modal.exception.AuthError:
        raise NSMError("Modal does not know you yet: run `modal setup` once") from None
    except modal.exception.Error as exc:
        raise NSMError(f"Modal could not read the volume {CLOUD.volume!r}: {type(exc).__name__}: {exc}") from None
    print(f"{len(written)} files in {Path(to, run)}; evaluate one with: nsm eval --run-dir {Path(to, run)}/<domain>")
    return 0
