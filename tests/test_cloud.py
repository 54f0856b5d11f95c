"""The Modal layer without a Modal account: the real app, its TrainingJob class run in-process through
``.local()``, its entry points with spawn/map served in-process, the plan, failures, download."""

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import types
from datetime import datetime, timedelta, timezone

import modal
import modal.exception
import pytest
import torch
from modal.volume import FileEntry, FileEntryType

import nsm.cloud.app as cloud_app
import nsm.job
from nsm.cli import main
from nsm.cloud.cli import warn_if_reused
from nsm.cloud.jobs import cloud_run_config, config_differences, default_run_name, point_label, sweep_points
from nsm.cloud.outcomes import REMEDIES, classify
from nsm.cloud.plan import attempts, container_price_per_hour, gpu_choices, plan_jobs, result_wait_s
from nsm.cloud.volume import copy_run
from nsm.config import CLOUD, CLOUD_PROFILES, DOMAINS, PROFILES
from nsm.errors import NSMError
from nsm.rundir import format_summary, write_summary
from nsm.training.gpu import LOW_UTILISATION_PCT, GPUMonitor, gpu_summary
from nsm.training.trainer import NSMTrainer

# .local() says the volume is not mounted here; commits are no-ops locally, which is the point.
pytestmark = pytest.mark.filterwarnings("ignore:The TrainingJob.run function is executing locally")


@pytest.fixture
def commits(monkeypatch):
    """Every volume commit the app asks for, by reason (the real commit is a no-op here)."""
    reasons = []
    real_commit = cloud_app.commit_volume

    def spy(reason):
        reasons.append(reason)
        real_commit(reason)

    monkeypatch.setattr(cloud_app, "commit_volume", spy)
    return reasons


@pytest.fixture
def kg_breaks(monkeypatch):
    """Every kg job fails as a bug in it would (its dataset cannot be built); the others run."""
    build_datasets = nsm.job.build_datasets

    def breaking(config, *args, **kwargs):
        if config["domain"] == "kg":
            raise RuntimeError("shape mismatch in the kg job")
        return build_datasets(config, *args, **kwargs)

    monkeypatch.setattr(nsm.job, "build_datasets", breaking)


def quick_config(tmp_path, domain="planning", run="test", **overrides):
    config = cloud_run_config(domain, "quick", run, volume_dir=str(tmp_path / "volume"))
    # One torch thread, as for every test here (the container's two would fight over a busy CPU).
    return dict(config, data_root=str(tmp_path / "data"), num_threads=1, **overrides)


def test_app_defines_the_trainer_and_entry_points():
    for name in ("validate_all", "train", "train_all", "sweep"):
        assert getattr(cloud_app, name).app is cloud_app.app  # local entry points of this app
    assert isinstance(cloud_app.TrainingJob, modal.Cls)
    # The image's explicit CUDA torch is the very version the project pins, so the project's install keeps it.
    assert f"torch=={cloud_app.TORCH_VERSION}" in importlib.metadata.requires("nsm")
    assert cloud_app.TORCH_INDEX == "https://download.pytorch.org/whl/cu" + cloud_app.TORCH_CUDA.replace(".", "")


def test_training_jobs_retry_with_backoff_in_fresh_containers():
    for name, profile in CLOUD_PROFILES.items():
        options = cloud_app.function_options(name)
        assert options["single_use_containers"] is True and options["enable_memory_snapshot"] is True
        retries = options["retries"]
        assert retries.max_retries == profile.retries and retries.backoff_coefficient == 2.0
        assert retries.initial_delay.total_seconds() == CLOUD.retry_delay_s == 15
        assert retries.max_delay.total_seconds() == 60  # modal refuses more
        assert options["min_containers"] is None and cloud_app.function_options(name, True)["min_containers"] == 1
    assert CLOUD.retry_delays_s(4) == [15, 30, 60, 60]
    assert result_wait_s(CLOUD_PROFILES["dev"]) == 3 * 20 * 60 + 45 + CLOUD.startup_minutes * 60
    assert "keep retries" not in REMEDIES["preempted"] and "by itself" in REMEDIES["preempted"]


def test_default_run_names_are_new_and_reuse_of_a_run_is_warned(tmp_path, monkeypatch, capsys):
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert default_run_name("dev", now=now) == "dev-20260102-030405"
    assert default_run_name("dev", sweep_domain="kg", now=now) == "dev-sweep-kg-20260102-030405"
    assert default_run_name("dev", now=now + timedelta(seconds=1)) != default_run_name("dev", now=now)

    monkeypatch.chdir(tmp_path)
    config = cloud_run_config("planning", "dev", "r1")
    write_summary(tmp_path / CLOUD.local_dir / "r1", {"planning": {"status": "success", "config": config,
                                                                   "test_metrics": {}}})
    same = dict(config, device="cuda", num_workers=3)  # where and how it runs: not another configuration
    assert warn_if_reused("r1", {"planning": same, "kg": cloud_run_config("kg", "dev", "r1")}) == []
    other = cloud_run_config("planning", "dev", "r1", point={"lr": 3e-4})
    warning, = warn_if_reused("r1", {"planning": other})
    assert "run 'r1' already holds results of planning with other settings (lr" in warning
    assert capsys.readouterr().err.strip() == warning
    assert config_differences(config, other) == ["lr"]


def test_the_local_entrypoint_writes_summaries_without_importing_torch(tmp_path):
    # The entry points only collect results: torch and the models are for the containers.
    script = ("import sys, numpy; import nsm.cloud.app as app; from nsm.atomic import write_json; "
              f"write_json({str(tmp_path / 'summary.json')!r}, {{'accuracy': numpy.float32(0.5), 'sizes': numpy.arange(2)}}); "
              "print(sorted(name for name in ('torch', 'torch_geometric', 'nsm.job') if name in sys.modules))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    assert json.loads((tmp_path / "summary.json").read_text()) == {"accuracy": 0.5, "sizes": [0, 1]}


def test_modal_cli_lists_the_entry_points_without_an_account(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("MODAL_")}
    env["HOME"] = str(tmp_path)  # no ~/.modal.toml: no account at all
    listing = subprocess.run([sys.executable, "-m", "modal", "run", "-m", "nsm.cloud.app", "--help"],
                             capture_output=True, text=True, env=env, timeout=120)
    for name in ("validate_all", "train_all", "train", "sweep", "TrainingJob.run"):
        assert f"- {name} / app.{name}" in listing.stdout + listing.stderr
    sweep_help = subprocess.run([sys.executable, "-m", "modal", "run", "-m", "nsm.cloud.app::sweep", "--help"],
                                capture_output=True, text=True, env=env, timeout=120)
    assert sweep_help.returncode == 0, sweep_help.stderr
    assert all(option in sweep_help.stdout for option in ("--domain", "--seed", "--lr", "--batch-size", "--run"))


def test_train_commits_each_latest_checkpoint_and_on_exit(tmp_path, commits):
    config = quick_config(tmp_path, epochs=3, checkpoint_every=2)
    job = cloud_app.TrainingJob()
    results = job.run.local(config)
    assert results["status"] == "success" and results["epochs_run"] == config["epochs"]
    assert results["gpu"] is None  # a CPU run: no GPU metrics in the history or the results
    # latest.pt is written every second epoch and after the last one.
    assert commits == ["checkpoint after epoch 1", "checkpoint after epoch 2", "job done"]
    cloud_app.flush_checkpoints()  # what the container's @modal.exit hook runs when it stops
    assert commits[-1] == "container exit"
    state = torch.load(tmp_path / "volume" / "test" / "planning" / "latest.pt", weights_only=True)
    assert state["epoch"] == config["epochs"] - 1


@pytest.mark.rounding
def test_a_second_call_resumes_from_the_first_calls_checkpoint(tmp_path, commits):
    first = cloud_app.TrainingJob().run.local(quick_config(tmp_path, epochs=2))
    assert first["epochs_run"] == 2
    commits.clear()
    # A fresh TrainingJob, as a retried attempt gets a fresh container.
    second = cloud_app.TrainingJob().run.local(quick_config(tmp_path, epochs=3))
    assert second["epochs_run"] == 3
    assert commits == ["checkpoint after epoch 2", "job done"]  # only the third epoch was trained
    history = json.loads((tmp_path / "volume" / "test" / "planning" / "history.json").read_text())
    assert [epoch["epoch"] for epoch in history["train"]] == [0, 1, 2]


def test_a_failure_saves_error_pt_commits_and_is_named(tmp_path, commits, monkeypatch):
    train_epoch = NSMTrainer.train_epoch

    def out_of_memory_in_epoch_1(self, loader, epoch, task_type):
        if epoch == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return train_epoch(self, loader, epoch, task_type)

    monkeypatch.setattr(NSMTrainer, "train_epoch", out_of_memory_in_epoch_1)
    with pytest.raises(torch.OutOfMemoryError) as raised:
        cloud_app.TrainingJob().run.local(quick_config(tmp_path, epochs=3))
    assert commits == ["checkpoint after epoch 0", "after a failure"]
    run_dir = tmp_path / "volume" / "test" / "planning"
    assert torch.load(run_dir / "error.pt", weights_only=True)["failed_epoch"] == 1
    assert json.loads((run_dir / "failed-attempt.json").read_text())["status"] == "failed"
    failure = classify(raised.value)
    assert failure.cause == "out-of-memory" and "batch_size" in str(failure)


class InProcessCall:
    """A spawned call whose result is computed, in this process, when asked for."""

    def __init__(self, function, args):
        self.function, self.args = function, args

    def get(self, timeout=None):
        return self.function.local(*self.args)


def in_process_map(function, inputs, return_exceptions=False):
    for item in inputs:
        try:
            yield function.local(item)
        except Exception as exc:
            if not return_exceptions:
                raise
            yield exc


def test_entry_points_keep_the_other_domains_when_one_job_raises(tmp_path, monkeypatch, commits, kg_breaks, capsys):
    monkeypatch.chdir(tmp_path)  # the local summary goes to runs/cloud/<run>/ here
    monkeypatch.setattr(cloud_app, "PROFILE", "quick")

    def config_here(domain, profile, run, **kwargs):
        return dict(cloud_run_config(domain, profile, run, volume_dir=str(tmp_path / "volume"), **kwargs),
                    data_root=str(tmp_path / "data"), num_threads=1)

    monkeypatch.setattr(cloud_app, "cloud_run_config", config_here)
    monkeypatch.setattr(modal.functions.Function, "spawn", lambda self, *args: InProcessCall(self, args))
    monkeypatch.setattr(modal.functions.Function, "map", in_process_map)

    summary = cloud_app.validate_all(run="demo", domains=",".join(DOMAINS))
    assert [summary[domain]["status"] for domain in DOMAINS] == ["success", "success", "failed"]
    for domain in ("planning", "causal"):
        assert "accuracy" in summary[domain]["test_metrics"]
    assert summary["kg"]["cause"] == "exception" and "RuntimeError: shape mismatch" in summary["kg"]["error"]
    assert summary["kg"]["remedy"] == REMEDIES["exception"]
    assert json.loads((tmp_path / "runs/cloud/demo/summary.json").read_text()) == summary
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("kg: FAILED, exception (RuntimeError: shape mismatch") for line in out)  # as it came
    assert any(line.split()[:2] == ["kg", "FAILED"] for line in out)  # and in the summary table

    # The same run through .map: finished domains resume past their last epoch and only re-evaluate.
    commits.clear()
    again = cloud_app.train_all(run="demo", domains=",".join(DOMAINS))
    assert [again[domain]["status"] for domain in DOMAINS] == ["success", "success", "failed"]
    assert again["planning"]["test_metrics"] == summary["planning"]["test_metrics"]
    assert not any(reason.startswith("checkpoint") for reason in commits)


def test_failures_are_named_with_cause_and_remedy():
    cases = {
        modal.exception.FunctionTimeoutError("Function timed out after 1200 s"): "timeout",
        modal.exception.TimeoutError(): "timeout",
        modal.exception.InternalFailure("worker preempted"): "preempted",
        modal.exception.InputCancellation("Input was cancelled by user"): "preempted",
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB"): "out-of-memory",
        RuntimeError("CUDA error: out of memory"): "out-of-memory",
        ValueError("logits has shape [32, 1], expected [32, 2]"): "exception",
    }
    for exc, cause in cases.items():
        failure = classify(exc)
        assert failure.cause == cause, exc
        assert str(failure).startswith(cause) and str(failure).endswith(REMEDIES[cause])
        assert type(exc).__name__ in failure.detail
    assert "no result in time" in classify(modal.exception.TimeoutError()).detail


def test_profiles_pin_the_gpu_and_size_timeouts_per_attempt():
    assert CLOUD_PROFILES["production"].gpu == "A100-40GB"  # exactly: never silently the 80 GB card
    dev_gpus = gpu_choices(CLOUD_PROFILES["dev"])
    assert len(dev_gpus) > 1 and container_price_per_hour(dev_gpus[0]) < container_price_per_hour(dev_gpus[-1])
    assert CLOUD_PROFILES["production"].retries < CLOUD_PROFILES["dev"].retries
    assert CLOUD_PROFILES["production"].timeout_minutes > CLOUD_PROFILES["dev"].timeout_minutes
    for name, profile in CLOUD_PROFILES.items():
        assert name in PROFILES
        assert 1.5 <= profile.timeout_minutes / profile.expected_minutes <= 2.0, name


def test_plan_costs_follow_from_the_config(capsys):
    for name, profile in CLOUD_PROFILES.items():
        for plan in plan_jobs(name, list(DOMAINS)):
            assert plan.attempts == attempts(profile) == 1 + profile.retries
            assert plan.worst_gpu_hours == pytest.approx(plan.attempts * profile.timeout_minutes / 60)
            assert plan.expected_gpu_hours == pytest.approx(profile.expected_minutes / 60)
            assert plan.expected_cost == pytest.approx(plan.expected_gpu_hours * container_price_per_hour(plan.gpus[0]))
            assert plan.worst_cost >= plan.worst_gpu_hours * container_price_per_hour(plan.gpus[0])

    assert main(["cloud", "plan", "--profile", "dev", "--domains", "planning,kg", "--keep-warm"]) == 0
    out = capsys.readouterr().out
    rows = {cells[0]: cells for cells in map(str.split, out.splitlines()) if cells[:1] in (["planning"], ["total"])}
    plans = plan_jobs("dev", ["planning", "kg"])
    assert rows["planning"][1] == "|".join(gpu_choices(CLOUD_PROFILES["dev"]))
    assert float(rows["total"][-1]) == pytest.approx(sum(p.worst_cost for p in plans), abs=0.01)
    assert float(rows["total"][-2]) == pytest.approx(sum(p.expected_cost for p in plans), abs=0.01)
    first_choice = gpu_choices(CLOUD_PROFILES["dev"])[0]
    assert f"ON, one idle container adds ${container_price_per_hour(first_choice):.2f} per hour" in out


def test_cloud_commands_without_modal_say_how_to_install(monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "modal" else
                        find_spec(name, *args))
    assert main(["cloud", "download", "dev"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install -e .[cloud]" in err
    assert main(["cloud", "plan", "--profile", "quick"]) == 0  # the plan needs no Modal


def test_interactive_launches_run_the_entry_point_with_the_profile_and_report_failures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    launched = []

    def modal_run(command, env):  # `modal run` needs an account: write what the entry point would
        launched.append((command, env))
        run = command[command.index("--run") + 1]
        summary = tmp_path / CLOUD.local_dir / run / "summary.json"
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps({"seed0": {"status": "success"}, "seed1": {"status": "failed"}}))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", modal_run)
    assert main(["cloud", "sweep", "--profile", "production", "--domain", "kg", "--seed", "0,1", "--interactive"]) == 1
    (command, env), = launched
    assert command[1:7] == ["-m", "modal", "run", "-i", "-m", "nsm.cloud.app::sweep"]
    assert command[command.index("--seed") + 1] == "0,1" and command[command.index("--domain") + 1] == "kg"
    assert env["NSM_CLOUD_PROFILE"] == "production" and env["NSM_CLOUD_KEEP_WARM"] == "0"
    out = capsys.readouterr().out
    assert "seed0" in out and "seed1" in out and "A100-40GB" in out  # the plan came first


def test_cloud_run_configs_place_runs_on_the_volume_and_size_loader_workers():
    dev = cloud_run_config("planning", "dev", "r1")
    assert dev["run_dir"] == f"{CLOUD.volume_mount}/r1/planning" and dev["resume"] is True
    assert dev["data_root"] == "data_cache"  # relative: the container's disk, or the local cache after a download
    assert dev["num_workers"] == (CLOUD.loader_workers if dev["data"]["num_samples"] >= CLOUD.min_samples_for_workers
                                  else 0)
    production = cloud_run_config("kg", "production", "r1")
    assert production["num_workers"] == CLOUD.loader_workers > 0 and production["num_threads"] == CLOUD.torch_threads
    assert CLOUD.loader_workers + CLOUD.torch_threads == int(CLOUD.cpu)

    points = sweep_points(seed="0,1,2", lr="1e-3,3e-4", batch_size="")
    assert len(points) == 6 and len({point_label(point) for point in points}) == 6
    config = cloud_run_config("causal", "dev", "s", point=points[-1])
    assert config["seed"] == 2 and config["lr"] == 3e-4
    assert config["run_dir"].endswith(f"/s/causal/{point_label(points[-1])}")
    for bad in ({"seed": "0,x"}, {"seed": ""}, {"epochs": "1,2"}):
        with pytest.raises(NSMError):
            sweep_points(**bad)


class FakeVolume:
    """The two modal.Volume methods a download uses, over a dict of path -> bytes."""

    def __init__(self, files):
        self.files = files

    def listdir(self, path, recursive=False):
        return [FileEntry(path=name, type=FileEntryType.FILE, mtime=0, size=len(data))
                for name, data in self.files.items() if name.startswith(path.rstrip("/") + "/")]

    def read_file(self, path):
        data = self.files[path]
        yield from (data[i:i + 3] for i in range(0, len(data), 3))


def test_download_copies_one_run_from_the_volume(tmp_path):
    files = {"dev/planning/latest.pt": b"checkpoint bytes", "dev/planning/results.json": b'{"status": "success"}',
             "dev/kg/history.json": b"{}", "dev-sweep-kg/kg/seed0/latest.pt": b"another run"}
    written = copy_run(FakeVolume(files), "dev", tmp_path)
    assert sorted(written) == sorted(tmp_path / name for name in files if name.startswith("dev/"))
    for name in files:
        assert (tmp_path / name).exists() == name.startswith("dev/")
    assert (tmp_path / "dev/planning/latest.pt").read_bytes() == files["dev/planning/latest.pt"]
    with pytest.raises(NSMError, match="not on the volume"):
        copy_run(FakeVolume(files), "production", tmp_path)
    with pytest.raises(NSMError):
        copy_run(FakeVolume(files), "../dev", tmp_path)


def test_gpu_summary_warns_when_the_gpu_waits_for_data():
    cpu = torch.device("cpu")
    with GPUMonitor(cpu) as monitor:
        pass
    assert monitor.metrics() == {}  # off CUDA the monitor records nothing
    assert gpu_summary([{"total_loss": 1.0}], cpu) is None
    busy = gpu_summary([{"gpu_util": 92.0, "gpu_mem_peak_gib": 3.0}, {"gpu_util": 96.0, "gpu_mem_peak_gib": 3.5}], cpu)
    assert busy == {"mem_peak_gib": 3.5, "util_mean": 94.0}
    idle = gpu_summary([{"gpu_util": 30.0, "gpu_mem_peak_gib": 1.0}, {"gpu_util": 50.0, "gpu_mem_peak_gib": 1.0}], cpu)
    assert idle["util_mean"] == 40.0 < LOW_UTILISATION_PCT and "num_workers" in idle["warning"]
    result = {"status": "success", "test_metrics": {"accuracy": 0.9}, "gpu": idle}
    assert f"WARNING: kg: {idle['warning']}" in format_summary({"kg": result}).splitlines()


# What Modal is given, checked offline: the class's options as `modal deploy` imports the app for
# each profile, the container's own import of the app, and what crosses the wire between them.

SPEC_SCRIPT = """
import json, modal
given = {}
decorate = modal.App.cls
def spy(self, **options):  # modal's public decorator, recording what the app hands it
    given.update(options)
    return decorate(self, **options)
modal.App.cls = spy
installs = []
for method in ("pip_install", "pip_install_from_pyproject"):  # the image's public builders, recorded
    def record(self, *args, _real=getattr(modal.Image, method), _name=method, **kwargs):
        installs.append([_name, list(args), {key: value for key, value in kwargs.items()}])
        return _real(self, *args, **kwargs)
    setattr(modal.Image, method, record)
import nsm.cloud.app as app
assert isinstance(app.TrainingJob, modal.Cls)  # modal accepted the options
retries = given["retries"]
volumes = {path: volume.name for path, volume in given["volumes"].items()}
print(json.dumps(dict(gpu=given["gpu"], timeout=given["timeout"], cpu=given["cpu"], memory=given["memory"],
    retries=[retries.max_retries, retries.backoff_coefficient, retries.initial_delay.total_seconds(),
             retries.max_delay.total_seconds()],
    volumes=volumes, snapshot=given["enable_memory_snapshot"], single_use=given["single_use_containers"],
    min_containers=given["min_containers"], env=given["env"], image=type(given["image"]).__name__,
    installs=installs)))
"""


@pytest.mark.parametrize("profile", list(CLOUD_PROFILES))
def test_each_profile_gives_modal_the_training_job_options(profile):
    env = dict(os.environ, NSM_CLOUD_PROFILE=profile, NSM_CLOUD_KEEP_WARM="0")
    done = subprocess.run([sys.executable, "-c", SPEC_SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    spec = json.loads(done.stdout.splitlines()[-1])
    settings = CLOUD_PROFILES[profile]
    assert spec == {
        "gpu": settings.gpu if isinstance(settings.gpu, str) else list(settings.gpu),
        "timeout": settings.timeout_minutes * 60, "cpu": CLOUD.cpu, "memory": CLOUD.memory_mib,
        "retries": [settings.retries, 2.0, 15.0, 60.0],
        "volumes": {CLOUD.volume_mount: CLOUD.volume},
        "snapshot": True, "single_use": True, "min_containers": None,
        "env": {"NSM_CLOUD_PROFILE": profile, "NSM_CLOUD_KEEP_WARM": "0"}, "image": "Image",
        # torch's CUDA build from one CUDA version's index, then the project (and its gpu extra) from pyproject.toml.
        "installs": [["pip_install", ["torch==2.13.0"], {"index_url": "https://download.pytorch.org/whl/cu128"}],
                     ["pip_install_from_pyproject", [str(cloud_app.PYPROJECT)], {"optional_dependencies": ["gpu"]}]],
    }
    assert {"production": "A100-40GB", "quick": "L4"}.get(profile, ["L40S", "A100-40GB"]) == spec["gpu"]


def test_the_container_imports_the_app_without_pyproject(tmp_path):
    """In the container the package is /root/nsm, alone: no pyproject.toml anywhere near, and
    ``modal.is_local()`` is False. The import must not read the file (modal reads it at build)."""
    import shutil

    import nsm

    root = tmp_path / "root"
    shutil.copytree(os.path.dirname(nsm.__file__), root / "nsm", ignore=shutil.ignore_patterns("__pycache__"))
    script = ("import modal, builtins, io, os; modal.is_local = lambda: False\n"
              "real_open = io.open\n"
              "def guarded(file, *args, **kwargs):\n"
              "    assert not str(file).endswith('pyproject.toml'), file\n"
              "    return real_open(file, *args, **kwargs)\n"
              "builtins.open = io.open = guarded\n"
              "import nsm.cloud.app as app\n"
              "assert app.__file__.startswith(os.getcwd()), app.__file__\n"
              "assert not os.path.exists(app.PYPROJECT)\n"
              "print(app.PROFILE, type(app.TrainingJob).__name__)")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(NSM_CLOUD_PROFILE="production", NSM_CLOUD_KEEP_WARM="0", PYTHONPATH=str(root), PYTHONSAFEPATH="1")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["production", "Cls"]


def through_modal(value):
    """``value`` as the other side gets it: modal pickles arguments, results and exceptions with
    cloudpickle and reads them with pickle (modal's serializer is private; this is what it does)."""
    import pickle

    import cloudpickle

    return pickle.loads(cloudpickle.dumps(value))


def test_every_exception_a_job_raises_survives_modals_serializer(tmp_path):
    from nsm.atomic import UnwritableDirectory
    from nsm.rundir import RunDirectoryBusy
    from nsm.training.checkpoint import CheckpointError

    noted = RuntimeError("CUDA error: an illegal memory access was encountered")
    noted.add_note("and failed-attempt.json could not be written: No space left on device")
    raised = [NSMError("unknown domain 'chess'"), CheckpointError("checkpoint latest.pt is damaged"),
              RunDirectoryBusy("run directory /checkpoints/r/kg is in use"), UnwritableDirectory(28, "No space left"),
              torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), noted,
              FloatingPointError("loss is nan at epoch 3"), ValueError("logits has shape [32, 1]"),
              TypeError("the model must return a dict"), KeyError("batch lacks y"), KeyboardInterrupt(),
              modal.exception.FunctionTimeoutError("timed out"), modal.exception.InputCancellation("cancelled")]
    for exc in raised:
        back = through_modal(exc)
        assert type(back) is type(exc) and str(back) == str(exc) and getattr(back, "__notes__", None) == \
            getattr(exc, "__notes__", None)
        assert classify(back) == classify(exc)  # the summary names the same cause on this side


@pytest.mark.slow
def test_a_job_through_the_dataloader_worker_path(tmp_path, commits, monkeypatch):
    """Production's loaders (worker processes, persistent workers, prefetch) on a small dataset, on CPU:
    the path that only runs at CLOUD.min_samples_for_workers samples otherwise."""
    import nsm.assemble
    from nsm.config import updated

    loaders = []
    real_loader = nsm.assemble.DataLoader

    def recorded(*args, **kwargs):
        loaders.append(kwargs)
        return real_loader(*args, **kwargs)

    monkeypatch.setattr(nsm.assemble, "DataLoader", recorded)

    config = updated(quick_config(tmp_path, epochs=2), num_workers=2, prefetch_factor=2)
    config = through_modal(config)  # as the container receives it
    results = cloud_app.TrainingJob().run.local(config)
    assert results["status"] == "success" and results["epochs_run"] == 2
    assert results["config"]["num_workers"] == 2
    assert loaders and all(kwargs["num_workers"] == 2 and kwargs["persistent_workers"]
                           and kwargs["prefetch_factor"] == 2 and kwargs["pin_memory"] is False  # pinned on CUDA only
                           for kwargs in loaders)
    assert through_modal(results) == results  # as this side receives it
    assert commits[-1] == "job done"


# Detached runs: deploy, launch, status, attach, cancel, against fakes of Modal's public objects.

class DirectoryVolume:
    """The modal.Volume methods the run record and status use, over a local directory."""

    def __init__(self, root):
        self.root = root

    def read_file(self, path):
        try:
            yield (self.root / path).read_bytes()
        except FileNotFoundError:
            raise modal.exception.NotFoundError(f"No such file: {path}") from None

    @contextlib.contextmanager
    def batch_upload(self, force=False):
        volume = self

        class Batch:
            def put_file(self, local_file, remote_path):
                (volume.root / remote_path).parent.mkdir(parents=True, exist_ok=True)
                (volume.root / remote_path).write_bytes(local_file.read())

        yield Batch()


class FakeCall:
    """A spawned call of the deployed TrainingJob.run: its attempts run in this process through
    ``.local()``, each in a fresh TrainingJob (a fresh container), up to 1 + retries; its outcome is
    kept, as Modal keeps a call's output, so every later ``get`` returns the same."""

    def __init__(self, object_id, config, retries):
        self.object_id, self.config, self.retries = object_id, config, retries
        self.attempts, self.outcome, self.cancelled = 0, None, False

    def step(self):
        """One attempt; the outcome once it succeeded or the attempts ran out."""
        self.attempts += 1
        try:
            self.outcome = ("result", cloud_app.TrainingJob().run.local(self.config))
        except Exception as exc:
            if self.attempts > self.retries:
                self.outcome = ("error", exc)

    def get(self, timeout=None):
        if self.outcome is None and timeout == 0:
            raise modal.exception.TimeoutError()  # what modal raises when the result is not there yet
        while self.outcome is None:
            self.step()
        kind, value = self.outcome
        if kind == "error":
            raise value
        return value

    def cancel(self, terminate_containers=False):
        self.cancelled = True
        self.outcome = ("error", modal.exception.InputCancellation("Input was cancelled by user"))


class FakeModal:
    """modal.Cls.from_name, modal.FunctionCall.from_id and modal.Volume.from_name, in this process."""

    def __init__(self, tmp_path, monkeypatch, retries=0):
        self.tmp_path, self.retries, self.calls, self.looked_up = tmp_path, retries, {}, []
        self.volume = DirectoryVolume(tmp_path / "volume")
        monkeypatch.setattr(modal.Cls, "from_name", self.cls_from_name)
        monkeypatch.setattr(modal.FunctionCall, "from_id", lambda call_id, client=None: self.calls[call_id])
        monkeypatch.setattr(modal.Volume, "from_name", lambda name, **kwargs: self.volume)

    def cls_from_name(self, app_name, name, **kwargs):
        fake = self

        class Deployed:
            options = {}

            def with_options(self, **options):
                self.options = options
                return self

            def __call__(self):
                fake.looked_up.append((app_name, name, self.options))
                return types.SimpleNamespace(run=types.SimpleNamespace(spawn=fake.spawn))

        return Deployed()

    def spawn(self, config):
        # The container sees the volume at its mount; here it is a directory, and one torch thread.
        here = dict(config, run_dir=str(self.tmp_path / "volume" / os.path.relpath(config["run_dir"],
                                                                                   CLOUD.volume_mount)),
                    data_root=str(self.tmp_path / "data"), num_threads=1)
        call = FakeCall(f"fc-{len(self.calls)}", here, self.retries)
        self.calls[call.object_id] = call
        return call


def test_deploy_runs_modal_deploy_with_the_profile(monkeypatch, capsys):
    launched = []
    monkeypatch.setattr(subprocess, "run", lambda command, env: launched.append((command, env)) or
                        subprocess.CompletedProcess(command, 0))
    assert main(["cloud", "deploy", "--profile", "production", "--keep-warm"]) == 0
    (command, env), = launched
    assert command[1:] == ["-m", "modal", "deploy", "-m", "nsm.cloud.app"]
    assert env["NSM_CLOUD_PROFILE"] == "production" and env["NSM_CLOUD_KEEP_WARM"] == "1"
    assert "deployed nsm-production" in capsys.readouterr().out


def test_a_detached_run_survives_a_dying_attempt_and_a_dying_client(tmp_path, monkeypatch, commits, capsys):
    monkeypatch.chdir(tmp_path)
    fake = FakeModal(tmp_path, monkeypatch, retries=1)
    train_epoch, failures = NSMTrainer.train_epoch, []

    def dies_in_epoch_1_once(self, loader, epoch, task_type):  # the first attempt's container dies mid-epoch
        if epoch == 1 and not failures:
            failures.append(epoch)
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return train_epoch(self, loader, epoch, task_type)

    monkeypatch.setattr(NSMTrainer, "train_epoch", dies_in_epoch_1_once)

    # Launch returns at once: nothing has run, and the calls are recorded here and on the volume.
    assert main(["cloud", "validate", "--profile", "quick", "--domains", "planning,causal", "--run", "r"]) == 0
    assert fake.looked_up == [("nsm-quick", "TrainingJob", {})] * 2
    record = json.loads((tmp_path / CLOUD.local_dir / "r" / "cloud-run.json").read_text())
    assert json.loads((tmp_path / "volume" / "r" / "cloud-run.json").read_text()) == record
    assert {job: entry["call_id"] for job, entry in record["jobs"].items()} == {"planning": "fc-0", "causal": "fc-1"}
    assert record["jobs"]["planning"]["config"] == cloud_run_config("planning", "quick", "r")
    assert all(call.attempts == 0 for call in fake.calls.values())
    assert "nsm cloud attach r" in capsys.readouterr().out

    assert main(["cloud", "status", "r"]) == 0
    assert "planning: running: no checkpoint committed yet" in capsys.readouterr().out
    fake.calls["fc-0"].step()  # planning's first attempt: epoch 0 committed, then it dies in epoch 1
    assert fake.calls["fc-0"].outcome is None and failures == [1]
    assert main(["cloud", "status", "r"]) == 0
    assert "planning: running: epoch 1 of 2 committed" in capsys.readouterr().out

    # The client dies while attached (after planning's result came, before causal's): no summary yet.
    real_from_id = modal.FunctionCall.from_id

    def client_dies_at_causal(call_id, client=None):
        if call_id == "fc-1":
            raise KeyboardInterrupt
        return real_from_id(call_id)

    monkeypatch.setattr(modal.FunctionCall, "from_id", client_dies_at_causal)
    assert main(["cloud", "attach", "r"]) == 130  # as Ctrl-C, or the laptop closing, ends it
    assert not (tmp_path / CLOUD.local_dir / "r" / "summary.json").exists()
    monkeypatch.setattr(modal.FunctionCall, "from_id", real_from_id)

    assert main(["cloud", "attach", "r"]) == 0  # again, later: the full summary
    summary = json.loads((tmp_path / CLOUD.local_dir / "r" / "summary.json").read_text())
    assert [summary[job]["status"] for job in ("planning", "causal")] == ["success", "success"]
    assert fake.calls["fc-0"].attempts == 2 and summary["planning"]["epochs_run"] == 2
    history = json.loads((tmp_path / "volume" / "r" / "planning" / "history.json").read_text())
    assert [epoch["epoch"] for epoch in history["train"]] == [0, 1]  # the retry resumed after epoch 0
    assert main(["cloud", "status", "r"]) == 0
    assert "planning: done" in capsys.readouterr().out
    assert main(["cloud", "attach", "r"]) == 0  # and again: the same summary
    assert json.loads((tmp_path / CLOUD.local_dir / "r" / "summary.json").read_text()) == summary


def test_attach_reports_failed_jobs_and_cancel_stops_the_rest(tmp_path, monkeypatch, kg_breaks, capsys):
    monkeypatch.chdir(tmp_path)
    fake = FakeModal(tmp_path, monkeypatch)
    assert main(["cloud", "train", "--profile", "quick", "--domain", "kg", "--run", "k", "--gpu", "H100",
                 "--wait"]) == 1  # --wait: the old blocking launch
    assert fake.looked_up == [("nsm-quick", "TrainingJob", {"gpu": "H100"})]
    summary = json.loads((tmp_path / CLOUD.local_dir / "k" / "summary.json").read_text())
    assert summary["kg"]["cause"] == "exception" and "shape mismatch" in summary["kg"]["error"]
    assert main(["cloud", "status", "k"]) == 0
    assert "kg: failed: exception (RuntimeError: shape mismatch" in capsys.readouterr().out

    assert main(["cloud", "sweep", "--profile", "quick", "--domain", "causal", "--seed", "0,1", "--run", "s"]) == 0
    assert main(["cloud", "cancel", "s"]) == 0
    assert all(call.cancelled for call in list(fake.calls.values())[1:])
    assert "seed0: cancelled" in capsys.readouterr().out
    assert main(["cloud", "attach", "s"]) == 1
    summary = json.loads((tmp_path / CLOUD.local_dir / "s" / "summary.json").read_text())
    assert {result["cause"] for result in summary.values()} == {"preempted"}  # cancelled, as Modal says it


def test_coming_back_to_an_unknown_run_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    FakeModal(tmp_path, monkeypatch)
    for action in ("status", "attach", "cancel"):
        assert main(["cloud", action, "nowhere"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no record of a launched run 'nowhere'" in err
    assert main(["cloud", "attach", "nowhere", "--timeout", "-1"]) == 2
    assert "--timeout takes minutes" in capsys.readouterr().err


def test_an_undeployed_app_and_an_expired_result_are_handled(tmp_path, monkeypatch, capsys):
    from nsm.cloud import runs

    monkeypatch.chdir(tmp_path)
    fake = FakeModal(tmp_path, monkeypatch)

    def not_deployed(config):
        raise modal.exception.NotFoundError("App 'nsm-quick' not found")

    monkeypatch.setattr(fake, "spawn", not_deployed)
    assert main(["cloud", "train", "--profile", "quick", "--domain", "causal", "--run", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "`nsm cloud deploy --profile quick`" in err
    assert not (tmp_path / CLOUD.local_dir / "x").exists()  # nothing spawned, nothing recorded

    spawn, spawned = FakeModal.spawn, []

    def connection_drops_at_the_second(config):  # the first call exists on Modal: it must be on record
        if spawned:
            raise modal.exception.ConnectionError("connection lost")
        spawned.append(config["domain"])
        return spawn(fake, config)

    monkeypatch.setattr(fake, "spawn", connection_drops_at_the_second)
    assert main(["cloud", "validate", "--profile", "quick", "--domains", "planning,causal", "--run", "y"]) == 2
    assert "Modal: ConnectionError: connection lost" in capsys.readouterr().err
    for record_file in (tmp_path / CLOUD.local_dir / "y", tmp_path / "volume" / "y"):
        record_file = record_file / "cloud-run.json"
        assert list(json.loads(record_file.read_text())["jobs"]) == ["planning"]

    class Expired:
        def get(self, timeout=None):
            raise modal.exception.OutputExpiredError("output expired")

    config = cloud_run_config("causal", "quick", "old")
    finished = {"status": "success", "test_metrics": {"accuracy": 0.75}, "config": config}
    (tmp_path / "volume" / "old" / "causal").mkdir(parents=True)
    (tmp_path / "volume" / "old" / "causal" / "results.json").write_text(json.dumps(finished))
    record = {"run": "old", "jobs": {"causal": {"call_id": "fc-9", "config": config}}}
    assert runs.attach(record, lambda call_id: Expired(), fake.volume, wait_s=1) == {"causal": finished}
    assert "the volume says success" in runs.job_status(record["jobs"]["causal"], lambda call_id: Expired(),
                                                        fake.volume)
