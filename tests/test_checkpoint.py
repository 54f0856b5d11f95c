import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _resume_driver import TinyGraphModel, build_run, without_timings
from nsm.errors import NSMError
from nsm.training import NSMTrainer
from nsm.training.checkpoint import (
    CheckpointError, capture_rng_state, load_checkpoint, load_latest, restore_rng_state, save_checkpoint,
)

# Bit-exact resume must hold under any CPU kernels: run again under other ones (make test).
pytestmark = pytest.mark.rounding

DRIVER = Path(__file__).with_name("_resume_driver.py")


def assert_same_weights(expected: dict, actual: dict) -> None:
    assert list(expected) == list(actual)
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs"


@pytest.mark.parametrize("loader_generator", [True, False], ids=["loader-generator", "global-rng"])
def test_resume_is_exact_in_process(tmp_path, loader_generator):
    """5 epochs straight == 2 epochs, then a new model/optimizer/loader/trainer resumed from disk
    for 3 more: dropout, shuffling, an LR and a temperature schedule all continue exactly."""
    straight, train_loader, val_loader = build_run(tmp_path / "straight", loader_generator=loader_generator)
    straight_history = straight.train(train_loader, val_loader, epochs=5)

    first, train_loader, val_loader = build_run(tmp_path / "split", loader_generator=loader_generator)
    first.train(train_loader, val_loader, epochs=2)
    del first
    # Everything is rebuilt from another seed and the global RNGs move on: only the files count.
    torch.rand(7), random.random(), np.random.rand()
    resumed, train_loader, val_loader = build_run(tmp_path / "split", seed=123, loader_generator=loader_generator)
    assert resumed.resume(tmp_path / "split") == 2
    resumed_history = resumed.train(train_loader, val_loader, epochs=5)

    assert_same_weights(straight.model.state_dict(), resumed.model.state_dict())
    assert without_timings(resumed_history) == without_timings(straight_history)
    assert len(resumed_history["train"]) == 5
    assert resumed.global_step == straight.global_step and resumed.best_val_loss == straight.best_val_loss
    assert resumed.lr_scheduler.state_dict() == straight.lr_scheduler.state_dict()


def test_resume_without_restoring_would_differ(tmp_path):
    """The control for the test above: continuing from the saved weights alone (the seed's
    resume) does not reproduce the straight run, so matching it above means something."""
    straight, train_loader, val_loader = build_run(tmp_path / "straight")
    straight.train(train_loader, val_loader, epochs=4)
    first, train_loader, val_loader = build_run(tmp_path / "split")
    first.train(train_loader, val_loader, epochs=2)

    partial, train_loader, val_loader = build_run(None, seed=123)
    ckpt = torch.load(tmp_path / "split" / "latest.pt")
    partial.model.load_state_dict(ckpt["model_state_dict"])
    partial.optimizer.load_state_dict(ckpt["optimizer_state_dict"])
    partial.train(train_loader, val_loader, epochs=4, start_epoch=ckpt["epoch"] + 1)
    assert any(not torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(),
                                                      partial.model.state_dict().values()))


def run_driver(checkpoint_dir: Path, out: Path, epochs: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(DRIVER), "--checkpoint-dir", str(checkpoint_dir), "--out", str(out),
         "--epochs", str(epochs)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino  # each atomic write puts a new inode in place
    except FileNotFoundError:
        return None


def kill_after_writes(process: subprocess.Popen, latest: Path, writes: int, delay: float,
                      timeout: float = 120) -> None:
    """SIGKILL ``process`` ``delay`` seconds after it has written ``latest`` ``writes`` times."""
    seen, last_inode, deadline = 0, inode(latest), time.monotonic() + timeout
    while seen < writes:
        assert process.poll() is None, f"the run ended before it could be killed:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "no checkpoint appeared in time"
        if inode(latest) not in (None, last_inode):
            seen, last_inode = seen + 1, inode(latest)
        time.sleep(0.002)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.slow
def test_sigkilled_training_resumes_bit_identical(tmp_path):
    epochs = 12
    reference = run_driver(tmp_path / "reference", tmp_path / "reference.pt", epochs)
    assert reference.wait(timeout=300) == 0, reference.stdout.read()

    interrupted, out = tmp_path / "interrupted", tmp_path / "interrupted.pt"
    # once right after the first checkpoint, once a little after the resumed run's second
    kill_after_writes(run_driver(interrupted, out, epochs), interrupted / "latest.pt", writes=1, delay=0.0)
    kill_after_writes(run_driver(interrupted, out, epochs), interrupted / "latest.pt", writes=2, delay=0.007)
    assert not out.exists()
    final = run_driver(interrupted, out, epochs)
    output = final.communicate(timeout=300)[0]
    assert final.returncode == 0, output
    start = int(re.search(r"start epoch (\d+)", output).group(1))
    print(f"killed twice; the last run resumed at epoch {start} of {epochs}")
    assert 0 < start < epochs  # it really resumed, mid-run

    expected, actual = torch.load(tmp_path / "reference.pt"), torch.load(out)
    assert_same_weights(expected["weights"], actual["weights"])
    assert actual["history"] == expected["history"] and len(actual["history"]["val"]) == epochs


def trained(tmp_path: Path, epochs: int = 2) -> NSMTrainer:
    trainer, train_loader, val_loader = build_run(tmp_path)
    trainer.train(train_loader, val_loader, epochs=epochs)
    return trainer


def test_latest_keeps_previous_and_reads_as_the_seed_expects(tmp_path):
    trainer = trained(tmp_path, epochs=2)
    ckpt = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["best_val_loss"] == trainer.best_val_loss
    assert_same_weights(trainer.model.state_dict(), ckpt["model_state_dict"])
    assert ckpt["optimizer_state_dict"]["state"] and ckpt["optimizer_state_dict"]["param_groups"]
    assert {"global_step", "lr_scheduler_state_dict", "temp_scheduler_state_dict", "rng_state", "history",
            "epochs_without_improvement", "run_config"} <= set(ckpt)
    assert torch.load(tmp_path / "previous.pt", weights_only=True)["epoch"] == 0
    assert not list(tmp_path.glob(".*.tmp"))


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:  # one flipped byte inside a weight tensor: torch.load itself does not notice
        weight = load_checkpoint(path)["model_state_dict"]["head.weight"].numpy().tobytes()
        offset = data.find(weight)
        assert offset > 0
        data[offset + 1] ^= 0xFF
        path.write_bytes(data)


@pytest.mark.parametrize("how", ["truncated", "garbage", "bit-flip"])
def test_damaged_latest_falls_back_to_previous(tmp_path, how):
    trained(tmp_path, epochs=2)
    damage(tmp_path / "latest.pt", how)
    trainer, *_ = build_run(tmp_path)
    with pytest.warns(UserWarning, match=r"latest\.pt is (unreadable|damaged).*resuming from .*previous\.pt"):
        assert trainer.resume(tmp_path) == 1
    assert_same_weights(load_checkpoint(tmp_path / "previous.pt")["model_state_dict"], trainer.model.state_dict())


def test_no_usable_checkpoint_is_a_clear_error(tmp_path):
    trained(tmp_path, epochs=2)
    damage(tmp_path / "latest.pt", "truncated")
    damage(tmp_path / "previous.pt", "garbage")
    trainer, *_ = build_run(tmp_path)
    with pytest.raises(NSMError, match=r"no usable checkpoint in .*latest\.pt is unreadable.*previous\.pt is "
                                       r"unreadable.*Delete the files to start over") as info:
        trainer.resume(tmp_path)
    error = info.value
    assert isinstance(error, CheckpointError) and "\n" not in str(error)
    # one line for the user, no pickle traceback chained behind it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    with pytest.raises(CheckpointError, match=r"previous\.pt is unreadable"):
        trainer.resume(tmp_path / "previous.pt")


def test_nothing_to_resume_starts_at_zero(tmp_path):
    trainer, *_ = build_run(tmp_path / "empty")
    assert trainer.resume(tmp_path / "empty") == 0 and trainer.resume(tmp_path / "does-not-exist") == 0
    with pytest.raises(CheckpointError, match="does not exist"):
        trainer.resume(tmp_path / "missing.pt")


def test_seed_format_checkpoint_resumes_with_a_warning(tmp_path):
    model = TinyGraphModel()
    optimizer = torch.optim.Adam(model.parameters())
    torch.save({"epoch": 4, "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "best_val_loss": 0.5}, tmp_path / "latest.pt")  # what the seed's own hook writes
    trainer, *_ = build_run(None)
    with pytest.warns(UserWarning, match="lacks global_step, history, rng_state, epochs_without_improvement, "
                                         "lr_scheduler_state_dict, temp_scheduler_state_dict .*not exactly"):
        assert trainer.resume(tmp_path) == 5
    assert trainer.best_val_loss == 0.5
    assert_same_weights(model.state_dict(), trainer.model.state_dict())


def test_checkpoint_of_another_model_is_refused(tmp_path):
    trained(tmp_path, epochs=1)
    model = TinyGraphModel(hidden=8)
    trainer = NSMTrainer(model, torch.optim.Adam(model.parameters()))
    with pytest.raises(CheckpointError, match=r"does not fit this model/optimizer: Error.* size mismatch for conv1"):
        trainer.resume(tmp_path)


def test_run_config_change_is_reported(tmp_path):
    trainer, train_loader, val_loader = build_run(tmp_path, run_config={"lr": 0.01, "epochs": 2})
    trainer.train(train_loader, val_loader, epochs=1)
    assert load_checkpoint(tmp_path / "latest.pt")["run_config"] == {"lr": 0.01, "epochs": 2}
    changed, *_ = build_run(tmp_path, run_config={"lr": 0.02, "epochs": 2})
    with pytest.warns(UserWarning, match=r"configured differently \(changed: lr\)"):
        changed.resume(tmp_path)


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint({"epoch": 0, "model_state_dict": {"w": torch.zeros(3)}}, path, previous=tmp_path / "previous.pt")

    def crash_midway(obj, f):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 1, "model_state_dict": {}}, path, previous=tmp_path / "previous.pt")
    assert load_checkpoint(path)["epoch"] == 0
    assert not (tmp_path / "previous.pt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


def test_unwritable_checkpoint_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(NSMError, match=r"cannot create checkpoint_dir .*file/run"):
        build_run(blocker / "run")
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*file/latest\.pt"):
        save_checkpoint({"epoch": 0, "model_state_dict": {}}, blocker / "latest.pt")


def test_unloadable_values_are_refused_at_save(tmp_path):
    with pytest.raises(TypeError, match=r"entry state\['history'\]\['val'\]\[0\]\['auroc'\] is a numpy.float64"):
        save_checkpoint({"epoch": 0, "model_state_dict": {}, "history": {"val": [{"auroc": np.float64(0.5)}]}},
                        tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


def test_other_format_is_refused(tmp_path):
    save_checkpoint({"format": "nsm-checkpoint/99", "epoch": 0, "model_state_dict": {}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="has format 'nsm-checkpoint/99'; this version reads 'nsm-checkpoint/1'"):
        load_checkpoint(tmp_path / "x.pt")


def test_leftover_temp_files_are_cleaned(tmp_path):
    save_checkpoint({"epoch": 3, "model_state_dict": {}}, tmp_path / "latest.pt")
    # pid 2**22 + 1 exceeds Linux's pid_max: no live process has it.
    (tmp_path / f".nsm-tmp.{2**22 + 1}.latest.pt.abc123").write_bytes(b"interrupted write")
    state, path = load_latest(tmp_path)
    assert state["epoch"] == 3 and path.name == "latest.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


def test_rng_state_round_trip_through_a_file(tmp_path):
    generator = torch.Generator().manual_seed(5)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.standard_normal()  # leave cached Gaussians in both states
    save_checkpoint({"epoch": 0, "model_state_dict": {}, "rng_state": capture_rng_state(generator)},
                    tmp_path / "rng.pt")
    expected = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.standard_normal(),
                torch.rand(3), torch.rand(3, generator=generator))
    random.seed(9), np.random.seed(9), torch.manual_seed(9), generator.manual_seed(9)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng_state"], generator)
    actual = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.standard_normal(),
              torch.rand(3), torch.rand(3, generator=generator))
    assert actual[:4] == expected[:4]
    assert torch.equal(actual[4], expected[4]) and torch.equal(actual[5], expected[5])


def test_loader_generator_mismatch_warns():
    state = capture_rng_state(None)
    with pytest.warns(UserWarning, match="disagree on having a shuffling generator"):
        restore_rng_state(state, torch.Generator())
