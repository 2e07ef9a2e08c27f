"""Crash-safe outputs, clean stops on signals, exact resumption, repeatable runs, imbalance."""

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import cli_args, make_image_folder

from emotion_tl import storage as storage_module
from emotion_tl.cli import main
from emotion_tl.config import Config
from emotion_tl.data.balance import make_class_weights
from emotion_tl.data.loaders import make_loaders
from emotion_tl.data.prepare import prepare_data
from emotion_tl.device import to_device
from emotion_tl.model.backbones import get_backbone
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.model.network import build_model
from emotion_tl.storage import save_torch_atomic
from emotion_tl.training import loop as loop_module
from emotion_tl.training import step as step_module


def args_for(cfg, *extra):
    """Three epochs of four-image steps: 12 training images make 3 steps an epoch."""
    return cli_args(cfg, "--epochs", "3", "--batch_size", "4", *extra)


def read_history(path):
    return pd.read_csv(path).drop(columns=["seconds", "train_seconds"])  # timings vary


# --- atomic writes -------------------------------------------------------------------------


@pytest.mark.parametrize("fail_in", ["fsync", "replace"])
def test_an_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch, fail_in):
    path = tmp_path / "frozen_weights_best.pt"
    save_torch_atomic({"weights": torch.ones(1000)}, path)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C arriving mid-write

    monkeypatch.setattr(storage_module.os, fail_in, interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_torch_atomic({"weights": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["weights"], torch.ones(1000))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no half-written leftovers


def test_killing_a_process_mid_save_never_truncates_the_checkpoint(tmp_path):
    path = tmp_path / "finetuning_best.pt"
    writer = textwrap.dedent(f"""
        import torch
        from emotion_tl.storage import save_torch_atomic
        for step in range(10**6):
            checkpoint = {{"step": step, "weights": torch.full((2_000_000,), float(step))}}
            save_torch_atomic(checkpoint, {str(path)!r})
    """)
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen([sys.executable, "-c", writer], env=env)
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let it be somewhere in the middle of later saves
    finally:
        process.kill()  # SIGKILL: no cleanup code runs
        process.wait()
    checkpoint = torch.load(path, weights_only=True)  # loads: never half a file
    assert torch.equal(checkpoint["weights"], torch.full((2_000_000,), float(checkpoint["step"])))
    # A temporary file it was writing may remain; the next run removes it.
    storage_module.remove_stale_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# --- the output folder ---------------------------------------------------------------------


def test_checkpoint_dir_that_cannot_be_created_is_reported(tiny_config, tmp_path, caplog):
    # Tests run as root, for whom chmod does not block writes; a folder below a file fails for
    # everyone.
    (tmp_path / "file").write_text("x")
    args = args_for(tiny_config)
    args[args.index("--checkpoint_dir") + 1] = str(tmp_path / "file" / "checkpoints")
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(args) == 2
    assert "cannot write to checkpoint_dir" in caplog.text and "--checkpoint_dir" in caplog.text


def test_read_only_checkpoint_dir_is_reported(tiny_config, caplog, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")  # what a read-only folder answers

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(args_for(tiny_config)) == 2
    assert "cannot write to checkpoint_dir" in caplog.text and "Permission denied" in caplog.text


def test_full_disk_is_reported_before_training(tiny_config, tmp_path, caplog, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=50_000_000))
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(args_for(tiny_config)) == 2
    assert "50 MB free" in caplog.text and "needs about" in caplog.text
    assert not list((tmp_path / "checkpoints").glob("*.pt"))


# --- stopping and resuming -----------------------------------------------------------------


def send_signal_at_step(monkeypatch, signum, step):
    """Deliver a real signal to this process when training reaches `step` (1-based)."""
    seen = {"steps": 0}
    real = step_module.to_device

    def counting(images, device, *normalize):
        if torch.is_grad_enabled():  # training batches only (images or cached features)
            seen["steps"] += 1
            if seen["steps"] == step:
                os.kill(os.getpid(), signum)
        return real(images, device, *normalize)

    monkeypatch.setattr(step_module, "to_device", counting)


EVERY_OPTION = (  # every part of the recipe away from the seed's (recipe.py)
    *("--schedule", "cosine", "--warmup_epochs", "1", "--weight_decay", "0.01"),
    *("--label_smoothing", "0.1", "--layer_decay", "0.5", "--finetuning_batchnorm", "frozen"),
)


@pytest.mark.parametrize("recipe", [(), EVERY_OPTION], ids=["seed recipe", "every option"])
def test_sigterm_stops_saves_and_resume_continues_exactly(
    tiny_config, tmp_path, monkeypatch, recipe
):
    reference_dir = str(tmp_path / "reference")
    finetuning = ("--approach", "finetuning", *recipe)
    assert main(args_for(tiny_config, *finetuning, "--checkpoint_dir", reference_dir)) == 0

    previous = signal.getsignal(signal.SIGTERM)
    # 12 training images / batch 4 = 3 steps per epoch: step 5 is inside epoch 2.
    send_signal_at_step(monkeypatch, signal.SIGTERM, 5)
    assert main(args_for(tiny_config, *finetuning)) == 143
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored after training
    out_dir = Path(tiny_config.checkpoint_dir)
    interrupted = torch.load(out_dir / "finetuning_interrupted.pt", weights_only=True)
    assert interrupted["kind"] == "interrupted" and interrupted["epoch"] == 1
    assert interrupted["resume"]["epoch"] == 2 and interrupted["resume"]["step"] == 2
    assert interrupted["resume"]["optimizer"]["state"]  # Adam's moments travel along
    assert (interrupted["resume"]["schedule"] is not None) == bool(recipe)  # and the schedule's
    assert list(pd.read_csv(out_dir / "finetuning_history.csv")["epoch"]) == [1]
    assert not (out_dir / "finetuning_final.pt").exists()

    monkeypatch.undo()
    assert main(args_for(tiny_config, *finetuning, "--resume")) == 0
    resumed = read_history(out_dir / "finetuning_history.csv")
    assert list(resumed["epoch"]) == [1, 2, 3]
    # Every number equals the uninterrupted run's: same split, order, augmentation, optimiser.
    pd.testing.assert_frame_equal(resumed, read_history(f"{reference_dir}/finetuning_history.csv"))
    final = load_checkpoint(out_dir / "finetuning_final.pt")["state_dict"]
    expected = load_checkpoint(f"{reference_dir}/finetuning_final.pt")["state_dict"]
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    assert not (out_dir / "finetuning_interrupted.pt").exists()
    saved = Config(**load_checkpoint(out_dir / "finetuning_best.pt")["config"])  # and reload
    options = (saved.schedule, saved.weight_decay, saved.label_smoothing, saved.layer_decay)
    assert options == (("cosine", 0.01, 0.1, 0.5) if recipe else ("constant", 0.0, 0.0, 1.0))
    # Unset, with the tiny runs' random weights: train.
    assert saved.batchnorm_for_finetuning() == ("frozen" if recipe else "train")


def test_resume_of_augmented_cached_features_continues_in_the_right_view(
    tiny_config, tmp_path, monkeypatch
):
    # Each epoch of the frozen approach trains on one of three cached augmented views (epoch e:
    # view e mod 3); a run stopped inside epoch 2 must go on with view 1, not start over at 0.
    views = ("--approach", "frozen", "--feature_views", "3")
    reference_dir = str(tmp_path / "reference")
    assert main(args_for(tiny_config, *views, "--checkpoint_dir", reference_dir)) == 0
    send_signal_at_step(monkeypatch, signal.SIGTERM, 5)  # 3 steps per epoch: inside epoch 2
    assert main(args_for(tiny_config, *views)) == 143
    monkeypatch.undo()
    assert main(args_for(tiny_config, *views, "--resume")) == 0
    resumed = read_history(Path(tiny_config.checkpoint_dir) / "frozen_weights_history.csv")
    reference = read_history(f"{reference_dir}/frozen_weights_history.csv")
    pd.testing.assert_frame_equal(resumed, reference)


def test_ctrl_c_in_a_real_process_exits_130(tiny_config, tmp_path):
    command = [sys.executable, "-m", "emotion_tl", *args_for(tiny_config, "--epochs", "500")]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1]), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    output = b""
    while b"step" not in output:  # the progress bar: training has begun
        chunk = process.stderr.read1(4096)
        assert chunk, output.decode(errors="replace")
        output += chunk
    process.send_signal(signal.SIGINT)
    output += process.communicate(timeout=120)[1]
    assert process.returncode == 130, output.decode(errors="replace")
    assert b"--resume" in output
    checkpoint = torch.load(
        Path(tiny_config.checkpoint_dir) / "frozen_weights_interrupted.pt", weights_only=True
    )
    assert checkpoint["kind"] == "interrupted"


def test_resume_refuses_other_settings_or_changed_data(tiny_config, image_dir, monkeypatch, caplog):
    send_signal_at_step(monkeypatch, signal.SIGINT, 2)
    assert main(args_for(tiny_config, "--approach", "frozen")) == 130
    monkeypatch.undo()
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        args = args_for(tiny_config, "--approach", "frozen", "--resume", "--learning_rate", "0.01")
        assert main(args) == 2
    assert "learning_rate: 0.001 -> 0.01" in caplog.text
    (image_dir / "circle" / "circle_000.png").unlink()
    with caplog.at_level(logging.ERROR, logger="emotion_tl"):
        assert main(args_for(tiny_config, "--approach", "frozen", "--resume")) == 2
    assert "no longer give the split" in caplog.text


# --- reproducibility -----------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_two_runs_with_the_same_seed_are_identical(tiny_config, tmp_path, precision):
    outputs = []
    for name in ("first", "second"):
        out = tmp_path / name
        # fp32 runs both approaches; the bf16 default, the one that learns every layer.
        approach = "both" if precision == "fp32" else "finetuning"
        assert main(args_for(tiny_config, "--checkpoint_dir", str(out), "--epochs", "2",
                             "--precision", precision, "--approach", approach)) == 0  # fmt: skip
        outputs.append(out)
    first, second = outputs
    assert (first / "split.csv").read_bytes() == (second / "split.csv").read_bytes()
    for prefix in ("frozen_weights", "finetuning")[approach == "finetuning" :]:
        pd.testing.assert_frame_equal(
            read_history(first / f"{prefix}_history.csv"),
            read_history(second / f"{prefix}_history.csv"),
            check_exact=True,
        )
        a = load_checkpoint(first / f"{prefix}_final.pt")["state_dict"]
        b = load_checkpoint(second / f"{prefix}_final.pt")["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a)


# --- class imbalance -----------------------------------------------------------------------


def imbalanced_config(tmp_path, balance):
    root = make_image_folder(tmp_path / "imbalanced", {"circle": 40, "square": 8})
    return Config(data_dir=str(root), categories=("circle", "square"), batch_size=8,
                  image_size=32, device="cpu", precision="fp32", pretrained=False,
                  checkpoint_dir=str(tmp_path / "out"), balance=balance)  # fmt: skip


def test_balanced_sampler_draws_the_classes_equally(tmp_path):
    cfg = imbalanced_config(tmp_path, "sampler")
    loader = make_loaders(prepare_data(cfg), cfg)["train"]
    labels = torch.cat([labels for _ in range(20) for _, labels in loader]).numpy()
    assert abs(labels.mean() - 0.5) < 0.06  # the data itself is 1 square in 6


def test_class_weights_follow_the_inverse_frequency(tmp_path):
    labels = np.array([0] * 28 + [1] * 6)
    weights = make_class_weights(labels, 2)
    np.testing.assert_allclose(weights.numpy(), [34 / (2 * 28), 34 / (2 * 6)], rtol=1e-6)
    # Weighted, each class contributes equally to the loss: weight x count is the same.
    assert weights[0] * 28 == pytest.approx(weights[1] * 6)


def test_validation_loss_is_weighted_like_the_training_loss(tmp_path):
    cfg = imbalanced_config(tmp_path, "weights")  # 40 circles, 8 squares
    data = prepare_data(cfg)
    loaders = make_loaders(data, cfg)
    weights = make_class_weights(data.labels()[data.indices("train")], 2)
    torch.manual_seed(0)
    model = build_model(2)
    history = loop_module.fit(
        model, loaders["train"], loaders["val"], approach="frozen", backbone="resnet50", epochs=1,
        backbone_lr=0.0, head_lr=1e-3, device=torch.device("cpu"), precision="fp32",
        class_weights=weights,
    )  # fmt: skip
    # The reference: torch's own weighted cross-entropy on the validation images' logits.
    images, labels = (torch.cat(parts) for parts in zip(*loaders["val"], strict=True))
    with torch.no_grad():
        cpu, normalize = torch.device("cpu"), get_backbone("resnet50").normalize
        logits = model.eval()(to_device(images, cpu, normalize))
    weighted = torch.nn.CrossEntropyLoss(weight=weights)(logits, labels).item()
    plain = torch.nn.CrossEntropyLoss()(logits, labels).item()
    assert history[0]["val_loss"] == pytest.approx(weighted, rel=1e-5)
    assert abs(weighted - plain) > 1e-3  # the weights do change the number here


@pytest.mark.parametrize(("balance", "feature_cache", "sampled", "weighted"), [
    ("auto", False, True, False), ("weights", False, False, True), ("none", False, False, False),
    # Cached features cannot be resampled: the frozen approach weights the loss instead.
    ("auto", True, False, True), ("sampler", True, False, True),
])  # fmt: skip
def test_balance_modes_reach_the_loader_and_the_loss(
    tmp_path, monkeypatch, balance, feature_cache, sampled, weighted
):
    from emotion_tl.training.run import run_experiment

    seen = {}
    real_fit = loop_module.fit

    def spy(model, train_loader, *args, **kwargs):
        seen["sampler"] = type(train_loader.sampler).__name__
        seen["class_weights"] = kwargs.get("class_weights")
        return real_fit(model, train_loader, *args, **kwargs)

    monkeypatch.setattr(loop_module, "fit", spy)
    cfg = imbalanced_config(tmp_path, balance)
    run_experiment(
        dataclasses.replace(cfg, approach="frozen", epochs=1, feature_cache=feature_cache)
    )
    assert (seen["sampler"] == "WeightedRandomSampler") == sampled
    assert (seen["class_weights"] is not None) == weighted
    if weighted:
        assert seen["class_weights"][1] > seen["class_weights"][0]  # the rarer class weighs more
