"""A run directory's life: one writer at a time, finished results that a failure never replaces,
re-runs that report what the run reported, and temporary files swept only when their writer is gone;
and nsm.rundir's readers and writers of its files."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nsm import rundir
from nsm.analysis.report import load_results, write_report
from nsm.atomic import TEMP_PREFIX, sweep_temp_files, write_json
from nsm.config import make_run_config
from nsm.errors import NSMError
from nsm.evaluation.evaluator import evaluate_run
from nsm.job import run_job
from nsm.rundir import FAILED_ATTEMPT, RESULTS, format_summary, run_lock
from nsm.runners import local
from nsm.runners.local import run_domains


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data_cache"))


def quick(tmp_path, data_root, domain="causal", **overrides):
    return make_run_config(domain, "quick", run_dir=str(tmp_path / domain), data_root=data_root, **overrides)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_root):
    """A finished causal run of 3 epochs, at semiring temperatures 0.5 → 0.3 (never the default 1.0)."""
    temperature = {"initial_temp": 0.5, "final_temp": 0.3, "decay_rate": 0.8, "warmup_epochs": 0}
    config = quick(tmp_path_factory.mktemp("finished"), data_root, epochs=3, temperature=temperature)
    return config, run_job(config)


def test_a_failed_rerun_keeps_the_finished_results(tmp_path, data_root):
    config = quick(tmp_path, data_root)
    run_job(config)
    results = tmp_path / "causal" / RESULTS
    finished = results.read_bytes()
    for name in ("latest.pt", "previous.pt"):  # a damaged run: the re-run cannot resume
        (tmp_path / "causal" / name).write_bytes(b"damaged")
    with pytest.raises(NSMError, match="no usable checkpoint"):
        run_job(config)
    assert results.read_bytes() == finished
    failure = json.loads((tmp_path / "causal" / FAILED_ATTEMPT).read_text())
    assert failure["status"] == "failed" and "no usable checkpoint" in failure["error"]
    outcome = load_results("causal", tmp_path / "causal", {})
    assert outcome["status"] == "failed" and outcome["finished_run"] == json.loads(finished)
    assert "results.json keeps the finished run of" in format_summary({"causal": outcome})

    run_job(dict(config, resume=False))  # a later success replaces both
    assert not (tmp_path / "causal" / FAILED_ATTEMPT).exists()
    assert load_results("causal", tmp_path / "causal", {})["status"] == "success"


def test_the_original_error_stays_in_front_when_nothing_can_be_written(tmp_path, data_root, monkeypatch):
    def read_only(path, payload):
        raise PermissionError(13, "Permission denied", str(path))

    (tmp_path / "causal").mkdir()
    (tmp_path / "causal" / "latest.pt").write_bytes(b"damaged")
    monkeypatch.setattr(rundir, "write_json", read_only)
    with pytest.raises(NSMError, match="no usable checkpoint") as raised:
        run_job(quick(tmp_path, data_root))
    assert any("failed-attempt.json could not be written: Permission denied" in note
               for note in raised.value.__notes__)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_run_directory_is_one_clear_error(tmp_path, data_root):
    (tmp_path / "causal").mkdir()
    os.chmod(tmp_path / "causal", 0o500)
    try:
        with pytest.raises(NSMError, match="cannot write to run directory"):
            run_job(quick(tmp_path, data_root))
    finally:
        os.chmod(tmp_path / "causal", 0o700)


def test_a_rerun_of_a_finished_run_reports_the_same_test_metrics(finished_run):
    config, results = finished_run
    again = run_job(config)
    assert again["test_metrics"] == results["test_metrics"]
    assert evaluate_run(config["run_dir"]) == results["test_metrics"]


def test_a_second_process_on_a_busy_run_directory_is_refused(tmp_path, data_root):
    """The first process is frozen (SIGSTOP, by the fault hook) with its checkpoint's temporary
    file on disk; the second is refused, naming it, and touches nothing; the first then finishes."""
    run_dir = tmp_path / "causal"
    command = [sys.executable, "-m", "nsm", "train", "--domain", "causal", "--profile", "quick", "--epochs", "2",
               "--run-dir", str(run_dir), "--data-root", data_root]
    first = subprocess.Popen(command, env=dict(os.environ, NSM_FAULT="checkpoint.before-replace:1:stop"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_stopped(first.pid)
        in_flight = sorted(run_dir.glob(f"{TEMP_PREFIX}*"))
        assert len(in_flight) == 1 and f"{TEMP_PREFIX}{first.pid}." in in_flight[0].name
        second = subprocess.run(command, capture_output=True, text=True)
        assert second.returncode == 2
        assert f"is in use by process {first.pid} on" in second.stderr and "Traceback" not in second.stderr
        assert sorted(run_dir.glob(f"{TEMP_PREFIX}*")) == in_flight
        assert not (run_dir / FAILED_ATTEMPT).exists()
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0
    assert json.loads((run_dir / RESULTS).read_text())["status"] == "success"


def wait_until_stopped(pid, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never reached its stop point")


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from nsm.rundir import run_lock\n"
                               "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
                               str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(NSMError, match=f"in use by process {holder.pid}"):
        with run_lock(tmp_path):
            pass
    holder.kill()
    holder.wait()
    with run_lock(tmp_path):  # kill -9 left no stale lock
        pass


def test_an_atomic_write_gets_the_mode_of_a_plain_one(tmp_path):
    (tmp_path / "plain.json").write_text("{}")
    write_json(tmp_path / "atomic.json", {})
    assert (tmp_path / "atomic.json").stat().st_mode == (tmp_path / "plain.json").stat().st_mode


def test_the_sweep_removes_only_our_temporary_files_of_dead_writers(tmp_path):
    dead_pid = 2**22 + 1  # above Linux's largest pid_max: no process has it
    ours_dead = tmp_path / f"{TEMP_PREFIX}{dead_pid}.latest.pt.abc123"
    ours_alive = tmp_path / f"{TEMP_PREFIX}{os.getppid()}.best.pt.def456"
    users = [tmp_path / ".draft.tmp", tmp_path / ".latest.pt.abc123.tmp", tmp_path / f"{TEMP_PREFIX}notes"]
    for path in (ours_dead, ours_alive, *users):
        path.write_text("x")
    assert sweep_temp_files(tmp_path) == [ours_dead]
    assert sorted(tmp_path.iterdir()) == sorted([ours_alive, *users])


def test_validate_reports_a_domain_whose_run_directory_cannot_be_made(tmp_path, data_root):
    (tmp_path / "causal").write_text("a file where the run directory should be")
    configs = {domain: quick(tmp_path, data_root, domain, epochs=1) for domain in ("planning", "causal")}
    summary = run_domains(configs, tmp_path, log=lambda line: None, progress=False)
    assert summary["planning"]["status"] == "success"
    assert summary["causal"]["status"] == "failed" and "cannot create run directory" in summary["causal"]["error"]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def test_validate_leaves_no_worker_behind_when_interrupted(tmp_path, data_root, monkeypatch):
    started = []
    popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(local.subprocess, "Popen", recording_popen)
    monkeypatch.setattr(local.time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_domains({"causal": quick(tmp_path, data_root)}, tmp_path, log=lambda line: None,
                    progress=False)
    assert len(started) == 1 and started[0].poll() is not None


def test_report_shows_the_failed_attempt_beside_the_finished_run(tmp_path, data_root):
    config = quick(tmp_path, data_root, epochs=1)
    run_job(config)
    (tmp_path / "causal" / "latest.pt").write_bytes(b"damaged")
    (tmp_path / "causal" / "previous.pt").unlink(missing_ok=True)
    with pytest.raises(NSMError):
        run_job(config)
    report = write_report(tmp_path / "causal").read_text()
    assert "FAILED" in report and "results.json keeps the finished run of" in report


# nsm.rundir's readers: None for a missing file, one line naming the file for a bad one, and
# what the writer wrote for a good one.

SUCCESS = {"domain": "causal", "status": "success", "config": {"seed": 0}, "training_time_s": 1.5,
           "test_metrics": {"accuracy": 0.75, "accuracy_class_0": 0.5, "accuracy_class_1": 1.0}}
FAILURE = {"domain": "causal", "status": "failed", "error": "RuntimeError: boom", "traceback": "...",
           "training_time_s": 0.5}
HISTORY = {"train": [{"epoch": 0, "total_loss": 1.0, "lr": 1e-3, "temperature": 0.5}],
           "val": [{"epoch": 0, "total_loss": 1.2, "accuracy": 0.5, "accuracy_class_0": None, "collapsed": False}]}


def written(run_dir, name, content):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / name).write_text(content)
    return run_dir


READERS = [  # reader, its file, a good content, a JSON value of the wrong shape, the start of its message
    (rundir.read_results, rundir.RESULTS, SUCCESS, "[]", "is malformed: expected an object of results"),
    (rundir.read_results, rundir.RESULTS, SUCCESS, '{"status": "success"}', "is malformed: a successful run needs"),
    (rundir.read_failed_attempt, rundir.FAILED_ATTEMPT, FAILURE, '{"training_time_s": "long"}',
     "is malformed: training_time_s must be a number"),
    (rundir.read_history, rundir.HISTORY, HISTORY, '{"train": []}', 'is malformed: expected {"train"'),
    (rundir.read_history, rundir.HISTORY, HISTORY, '{"train": [{"epoch": 0, "lr": "high"}], "val": []}',
     'is malformed: each train epoch needs an integer "epoch" and numbers'),
    (rundir.read_summary, rundir.SUMMARY, {"causal": SUCCESS, "kg": FAILURE}, "[1]",
     "is malformed: expected an object of results by domain"),
    (rundir.read_summary, rundir.SUMMARY, {"causal": SUCCESS}, '{"kg": {"status": "success"}}',
     "entry 'kg' is malformed: a successful run needs"),
]
READER_IDS = [f"{name}:{wrong}" for _, name, _, wrong, _ in READERS]


@pytest.mark.parametrize("read, name, good, wrong, message", READERS, ids=READER_IDS)
def test_a_missing_file_reads_as_none(tmp_path, read, name, good, wrong, message):
    assert read(tmp_path) is None
    assert read(tmp_path, strict=False) is None
    assert read(tmp_path / "no-such-run") is None


@pytest.mark.parametrize("read, name, good, wrong, message", READERS, ids=READER_IDS)
def test_a_bad_file_is_one_line_naming_it(tmp_path, read, name, good, wrong, message):
    for content, expected in (("{", f"cannot read {tmp_path / name}: "), (wrong, f"{tmp_path / name}")):
        written(tmp_path, name, content)
        with pytest.raises(NSMError) as raised:
            read(tmp_path)
        assert str(raised.value).startswith(expected) and len(str(raised.value).splitlines()) == 1
    assert message in str(raised.value)


@pytest.mark.parametrize("read, name, good, wrong, message", READERS, ids=READER_IDS)
def test_the_lenient_look_never_raises_and_leaves_an_object_unchecked(tmp_path, read, name, good, wrong, message):
    for content in ("{", "[]", "5", '"text"'):
        assert read(written(tmp_path, name, content), strict=False) is None
    unchecked = {"status": "success", "training_time_s": "long", "test_metrics": None}
    assert read(written(tmp_path, name, json.dumps(unchecked)), strict=False) == unchecked


def test_what_the_writers_write_the_readers_read(tmp_path):
    run_dir = tmp_path / "causal"
    run_dir.mkdir()
    rundir.write_history(run_dir, HISTORY)
    assert rundir.read_history(run_dir) == HISTORY
    rundir.write_failed_attempt(run_dir, FAILURE, RuntimeError("boom"))
    assert rundir.read_failed_attempt(run_dir) == FAILURE
    rundir.write_results(run_dir, SUCCESS)  # and the failed attempt it supersedes is gone
    assert rundir.read_results(run_dir) == SUCCESS and rundir.read_failed_attempt(run_dir) is None
    summary = {"causal": SUCCESS, "kg": dict(FAILURE, finished_run=SUCCESS)}
    assert rundir.write_summary(tmp_path, summary) == tmp_path / rundir.SUMMARY
    assert rundir.read_summary(tmp_path) == summary
    assert "results.json keeps the finished run of" in format_summary(rundir.read_summary(tmp_path))


def test_a_run_directory_is_told_by_its_files_and_evaluated_from_best_else_latest(tmp_path):
    assert not rundir.is_run_dir(tmp_path) and not rundir.is_run_dir(tmp_path / "missing")
    assert rundir.best_checkpoint(tmp_path) == tmp_path / rundir.LATEST  # the caller finds it missing
    (tmp_path / rundir.LATEST).write_bytes(b"")
    assert rundir.is_run_dir(tmp_path) and rundir.best_checkpoint(tmp_path) == tmp_path / rundir.LATEST
    (tmp_path / rundir.BEST).write_bytes(b"")
    assert rundir.best_checkpoint(tmp_path) == tmp_path / rundir.BEST
    assert rundir.best_checkpoint(tmp_path, rundir.LATEST) == tmp_path / rundir.LATEST
    validate = tmp_path / "validate"
    written(validate, rundir.SUMMARY, "{}")
    assert not rundir.is_run_dir(validate)
    for name in rundir.RUN_FILES:
        assert rundir.is_run_dir(written(tmp_path / f"with-{name}", name, "{}"))


def test_the_run_directory_module_is_a_low_layer():
    """nsm.rundir imports no part of nsm but nsm.atomic and nsm.errors (and what they import)."""
    probe = "import sys, nsm.rundir; print(' '.join(sorted(m for m in sys.modules if m.startswith(('nsm', 'torch')))))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert set(loaded) <= {"nsm", "nsm.rundir", "nsm.atomic", "nsm.errors", "nsm.faults"}, loaded
