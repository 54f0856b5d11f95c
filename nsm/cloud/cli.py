"""``nsm cloud ...``: deploy the app once, launch detached runs, come back to them.

    nsm cloud plan       GPU, timeout, attempts, GPU-hours and cost of each job (no Modal account needed)
    nsm cloud deploy     deploy the app for a profile (modal deploy), once and after each code change
    nsm cloud validate   every domain, spawned on the deployed app; returns at once (--wait: blocks)
    nsm cloud train      one domain
    nsm cloud train-all  every domain (the same as validate, for full runs)
    nsm cloud sweep      seeds or hyperparameters, one job per point
    nsm cloud status     each job of a run: running (last committed epoch), done, or failed with its cause
    nsm cloud attach     wait for a run's jobs and write its summary.json, failed jobs included
    nsm cloud cancel     cancel a run's unfinished jobs
    nsm cloud download   copy a run's directory from the checkpoint volume

The launchers print the plan, spawn one call per job on the deployed class
(``modal.Cls.from_name``) and record the calls (:mod:`nsm.cloud.runs`); ``--interactive`` runs the
app's entry point under ``modal run -i`` instead, attached to this terminal. With ``--wait`` or
``attach``, the exit code is 1 when a job failed, like ``nsm validate``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from nsm.cloud.jobs import cloud_run_config, config_differences, default_run_name, point_label, sweep_points
from nsm.cloud.plan import cloud_profile, format_plan, gpu_choices, result_wait_s
from nsm.config import CLOUD, CLOUD_PROFILES, DEFAULT_PROFILE, DOMAINS, GPU_PRICE_PER_SECOND, parse_domains
from nsm.data.domains import domain_questions
from nsm.errors import NSMError
from nsm.rundir import CLOUD_RUN, SUMMARY, format_summary, read_json_file, read_summary

NEEDS_MODAL = "the cloud commands need Modal: pip install -e .[cloud], then `modal setup` once"


def _run_name(text: str) -> str:
    """A run's name is one directory under the volume's mount: '../x' would train outside the volume."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", text):
        raise argparse.ArgumentTypeError(f"a run is named by one directory on the volume, like 'dev' or 'lr-study' "
                                         f"(letters, digits, '.', '_', '-'), got {text!r}")
    return text


def add_cloud_parser(commands: argparse._SubParsersAction) -> None:
    cloud = commands.add_parser(
        "cloud", help="run on Modal GPUs: plan, deploy, validate, train, train-all, sweep, status, attach, cancel, "
                      "download",
        description="Run NSM's jobs on Modal GPUs (the same job function as locally). Setup: "
                    "pip install -e .[cloud]; modal setup; nsm cloud deploy --profile P. "
                    "`nsm cloud plan` shows what a run costs first.",
    )
    actions = cloud.add_subparsers(dest="cloud_command", required=True, metavar="ACTION")
    profiles = "; ".join(f"{name}: {', '.join(gpu_choices(p))}, "
                         f"{p.timeout_minutes:g} min per attempt, {p.retries} retries"
                         for name, p in CLOUD_PROFILES.items())

    def add_profile(parser: argparse.ArgumentParser, keep_warm: bool = True) -> None:
        parser.add_argument("--profile", choices=list(CLOUD_PROFILES), default=DEFAULT_PROFILE,
                            help=f"run size and GPU settings, nsm/config.py (default {DEFAULT_PROFILE}). {profiles}")
        if keep_warm:
            parser.add_argument("--keep-warm", action="store_true",
                                help="keep one container of the deployed app up (min_containers=1): instant starts "
                                     "during a development sprint, billed even when idle until deployed without "
                                     "it (see the plan)")

    def add_run(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run", metavar="RUN", type=_run_name, help="the run's name, as its launch printed it")

    def add_launch(parser: argparse.ArgumentParser, entry: str) -> None:
        parser.set_defaults(entry=entry)
        parser.epilog = (f"Prints the plan, spawns the jobs on the deployed app (nsm cloud deploy) and returns; "
                         f"{CLOUD.local_dir}/RUN/{CLOUD_RUN} and RUN/{CLOUD_RUN} on the volume record them for "
                         f"`nsm cloud status|attach|cancel RUN`. With --wait: writes {CLOUD.local_dir}/RUN/{SUMMARY} "
                         "and exits 1 if a job failed.")
        add_profile(parser, keep_warm=False)
        parser.add_argument("--run", type=_run_name,
                            help="the run's name: its directory on the volume. The same name continues the run; "
                                 "a new one starts afresh (default: a new run, the profile and the UTC time, "
                                 "e.g. dev-20260101-120000)")
        parser.add_argument("--wait", action="store_true",
                            help="wait for every job here, print the summary and write summary.json "
                                 "(the same as `nsm cloud attach RUN` afterwards)")
        parser.add_argument("--gpu", choices=list(GPU_PRICE_PER_SECOND),
                            help="this launch on exactly this GPU type (with_options(gpu=...): one type, "
                                 "no fallback), instead of the profile's")
        parser.add_argument("--interactive", action="store_true",
                            help=f"modal run -i -m nsm.cloud.app::{entry} instead: an ephemeral app attached to "
                                 "this terminal (a breakpoint() or modal.interact() opens a live shell there); "
                                 "it blocks, and ends with this terminal")

    plan = actions.add_parser("plan", help="cost and GPU-hours of each job, before spending anything",
                              description="Print each job's GPU type, timeout per attempt, attempts, expected "
                                          "and worst-case GPU-hours and cost, from nsm/config.py.")
    add_profile(plan)
    plan.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated jobs to plan (default all)")

    deploy = actions.add_parser("deploy", help="deploy the app for a profile, once (and after changing the code)",
                                description="modal deploy -m nsm.cloud.app with the profile: the app "
                                            "nsm-<profile>, whose TrainingJob class the launchers spawn on.")
    add_profile(deploy)

    def add_domains_launcher(name: str, entry: str, help_text: str) -> None:
        parser = actions.add_parser(name, help=help_text, description=f"{help_text[0].upper()}{help_text[1:]}.")
        add_launch(parser, entry)
        parser.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated subset (default all)")

    add_domains_launcher("validate", "validate_all", "every domain, one job each, spawned at once")
    train = actions.add_parser("train", help="one domain", description="Train one domain on Modal.")
    add_launch(train, "train")
    train.add_argument("--domain", required=True, choices=DOMAINS, help=domain_questions())
    add_domains_launcher("train-all", "train_all", "every domain, one job each (the same as validate)")

    sweep = actions.add_parser("sweep", help="seeds or hyperparameters, one GPU per point",
                               description="Train every combination of the comma-separated values, one container "
                                           "each: e.g. --seed 0,1,2 --lr 1e-3,3e-4 is six jobs.")
    add_launch(sweep, "sweep")
    sweep.add_argument("--domain", required=True, choices=DOMAINS, help=domain_questions())
    sweep.add_argument("--seed", default="", help="comma-separated seeds")
    sweep.add_argument("--lr", default="", help="comma-separated learning rates")
    sweep.add_argument("--batch-size", default="", help="comma-separated batch sizes")

    status = actions.add_parser("status", help="each job of a run: running, done or failed",
                                description="Each job's state, from its Modal call: done, failed with its cause "
                                            "and remedy, or running with the last epoch committed to the volume. "
                                            "Waits for nothing.")
    add_run(status)
    attach = actions.add_parser("attach", help="wait for a run's jobs, write its summary.json",
                                description=f"Re-attach to RUN's calls (FunctionCall.from_id), wait for them, print "
                                            f"the summary and write {CLOUD.local_dir}/RUN/{SUMMARY}, failed jobs "
                                            "included; exit 1 if a job failed. Safe to interrupt and run again.")
    add_run(attach)
    attach.add_argument("--timeout", type=float, metavar="MINUTES",
                        help="wait at most this long in all (default: every attempt of the profile to its timeout); "
                             "jobs still running then are reported as such")
    cancel = actions.add_parser("cancel", help="cancel a run's unfinished jobs",
                                description="Cancel every call of RUN that has not finished (its containers stop; "
                                            "committed checkpoints stay on the volume).")
    add_run(cancel)

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
    if args.cloud_command in ("validate", "train", "train-all", "sweep"):
        return launch(args)
    require_modal()
    if args.cloud_command == "deploy":
        return deploy(args.profile, args.keep_warm)
    if args.cloud_command == "download":
        return download(args.run, args.to)
    return come_back(args)


def require_modal() -> None:
    if importlib.util.find_spec("modal") is None:
        raise NSMError(NEEDS_MODAL)


def modal_env(profile: str, keep_warm: bool) -> dict[str, str]:
    """The environment the app reads its profile from when it is imported (by modal deploy or run)."""
    return dict(os.environ, NSM_CLOUD_PROFILE=profile, NSM_CLOUD_KEEP_WARM="1" if keep_warm else "0")


def deploy(profile: str, keep_warm: bool) -> int:
    from nsm.cloud.runs import app_name

    print(format_plan(profile, list(DOMAINS), keep_warm), flush=True)
    command = [sys.executable, "-m", "modal", "deploy", "-m", "nsm.cloud.app"]
    returncode = subprocess.run(command, env=modal_env(profile, keep_warm)).returncode
    if returncode == 0:
        print(f"deployed {app_name(profile)}; launch with e.g. `nsm cloud validate --profile {profile}`")
    return returncode


@contextmanager
def modal_errors() -> Iterator[None]:
    """Modal's errors as one line each."""
    import modal.exception

    try:
        yield
    except modal.exception.AuthError:
        raise NSMError("Modal does not know you yet: run `modal setup` once") from None
    except modal.exception.Error as exc:
        raise NSMError(f"Modal: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def launch(args: argparse.Namespace) -> int:
    """Check the jobs, print the plan, spawn them on the deployed app (or ``modal run -i`` the entry
    point); with ``--wait``, wait and exit 1 if a job failed."""
    if args.entry == "sweep":
        run = args.run or default_run_name(args.profile, sweep_domain=args.domain)
        configs = sweep_configs(args, run)
        options = {"domain": args.domain, "seed": args.seed, "lr": args.lr, "batch-size": args.batch_size}
    else:
        domains = [args.domain] if args.entry == "train" else parse_domains(args.domains)
        run = args.run or default_run_name(args.profile)
        configs = {domain: cloud_run_config(domain, args.profile, run) for domain in domains}
        options = {"domain": args.domain} if args.entry == "train" else {"domains": args.domains}
    warn_if_reused(run, configs)
    require_modal()  # after the jobs: bad input is refused as such, with Modal or without
    print(format_plan(args.profile, list(configs)), flush=True)
    if args.interactive:
        return run_interactive(args, run, options)

    import modal

    from nsm.cloud import runs

    with modal_errors():
        volume = modal.Volume.from_name(CLOUD.volume, create_if_missing=True)
        record = runs.launch(run, args.profile, configs, volume=volume, gpu=args.gpu)
        if not args.wait:
            return 0
        return finish(runs.attach(record, modal.FunctionCall.from_id, volume,
                                  wait_s=result_wait_s(cloud_profile(args.profile))), run)


def run_interactive(args: argparse.Namespace, run: str, options: dict[str, str]) -> int:
    """``modal run -i`` the app's entry point: an ephemeral app, this terminal attached; it blocks."""
    command = [sys.executable, "-m", "modal", "run", "-i", "-m", f"nsm.cloud.app::{args.entry}", "--run", run]
    for option, value in options.items():
        if value:
            command += [f"--{option}", value]
    returncode = subprocess.run(command, env=modal_env(args.profile, False)).returncode
    if returncode != 0:
        return returncode
    summary = read_summary(Path(CLOUD.local_dir, run), strict=False)  # the local entry point wrote it
    if summary is None:
        raise NSMError(f"modal run succeeded but left no readable {Path(CLOUD.local_dir, run, SUMMARY)}")
    return 0 if all(result["status"] == "success" for result in summary.values()) else 1


def finish(summary: dict[str, Any], run: str) -> int:
    print(format_summary(summary))
    print(f"summary: {Path(CLOUD.local_dir, run, SUMMARY)}; checkpoints and results: nsm cloud download {run}")
    return 0 if all(result.get("status") == "success" for result in summary.values()) else 1


def come_back(args: argparse.Namespace) -> int:
    """``status``, ``attach`` or ``cancel`` a launched run, from its record."""
    import modal

    from nsm.cloud import runs

    if getattr(args, "timeout", None) is not None and not args.timeout >= 0:
        raise NSMError(f"--timeout takes minutes, 0 or more, got {args.timeout:g}")
    with modal_errors():
        volume = modal.Volume.from_name(CLOUD.volume, create_if_missing=True)
        record = runs.read_record(args.run, volume)
        if args.cloud_command == "status":
            runs.status(record, modal.FunctionCall.from_id, volume)
            return 0
        if args.cloud_command == "cancel":
            runs.cancel(record, modal.FunctionCall.from_id)
            return 0
        wait_s = (args.timeout * 60 if args.timeout is not None
                  else result_wait_s(cloud_profile(record.get("profile", DEFAULT_PROFILE))))
        return finish(runs.attach(record, modal.FunctionCall.from_id, volume, wait_s), args.run)


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
    record = read_json_file(Path(CLOUD.local_dir, run, CLOUD_RUN))
    launched = record["jobs"] if isinstance(record, dict) and isinstance(record.get("jobs"), dict) else {}
    lines = []
    for job, config in configs.items():
        earlier = summary.get(job) if isinstance(summary.get(job), dict) else {}
        old = (earlier.get("config") or (earlier.get("finished_run") or {}).get("config")
               or (launched[job].get("config") if isinstance(launched.get(job), dict) else None))
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
