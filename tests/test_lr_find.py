"""The learning-rate finder: it puts everything back, its suggestion falls where the loss falls
fastest, and `lr-find` writes its curve without touching a checkpoint."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import cli_args
from torch.utils.data import DataLoader, TensorDataset

from emotion_tl.cli import main
from emotion_tl.model.backbones import get_backbone
from emotion_tl.model.network import build_model
from emotion_tl.training.lr_find import (
    QUICK_SIDE_SHARE,
    exponential_rates,
    quick_finder_run,
    range_test,
    smooth,
    smoothing_for,
    suggest_rate,
)
from emotion_tl.training.step import make_train_step


def tiny_loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 32, 32, generator=generator)
    labels = torch.tensor([0, 1] * 4)
    return DataLoader(TensorDataset(images, labels), batch_size=4, shuffle=True)


def test_range_test_leaves_weights_buffers_and_optimizer_bit_identical():
    torch.manual_seed(0)
    model = build_model(2)
    step = make_train_step(
        model, "finetuning", backbone="resnet50", backbone_lr=1e-4, head_lr=1e-3,
        device=torch.device("cpu"), precision="fp32",
    )  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer_before = step.optimizer.state_dict()
    finding = range_test(model, tiny_loader(), step, exponential_rates(1e-5, 1.0, 6))
    assert len(finding.rates) == len(finding.losses) >= 2  # it did train (until 6 or divergence)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm buffers too
    assert step.optimizer.state_dict()["state"] == optimizer_before["state"] == {}
    assert [g["lr"] for g in step.optimizer.param_groups] == [1e-4, 1e-3]  # both groups' rates


def test_range_test_sweeps_the_head_rate_and_keeps_the_backbones_ratio():
    model = build_model(2)
    step = make_train_step(
        model, "finetuning", backbone="resnet50", backbone_lr=1e-4, head_lr=1e-3,
        device=torch.device("cpu"), precision="fp32",
    )  # fmt: skip
    seen = []

    class Recording:  # the step, noting each group's rate as it is called
        approach, backbone, optimizer = step.approach, step.backbone, step.optimizer
        batchnorm = step.batchnorm

        def __call__(self, *args):
            seen.append([g["lr"] for g in self.optimizer.param_groups])
            return step(*args)

    range_test(model, tiny_loader(), Recording(), np.array([1e-6, 1e-5]))
    assert seen == [pytest.approx([1e-7, 1e-6]), pytest.approx([1e-6, 1e-5])]


def test_stop_ends_the_range_test_after_the_current_step_with_the_curve_so_far():
    model = build_model(2)
    step = make_train_step(
        model, "frozen", backbone="resnet50", backbone_lr=0.0, head_lr=1e-3,
        device=torch.device("cpu"), precision="fp32",
    )  # fmt: skip
    stop, heard = threading.Event(), []

    def on_step(done: int, total: int) -> None:
        heard.append((done, total))
        if done == 3:
            stop.set()  # as the widget's Stop does, from another thread

    before = {k: v.clone() for k, v in model.state_dict().items()}
    finding = range_test(
        model, tiny_loader(), step, exponential_rates(1e-5, 1e-3, 20), stop=stop, on_step=on_step
    )
    assert heard == [(1, 20), (2, 20), (3, 20)]
    assert len(finding.rates) == len(finding.losses) == 3
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_quick_finder_shrinks_fine_tuning_pictures_but_not_below_the_sources_smallest_side(
    tiny_config,
):
    from emotion_tl.training.context import make_run_context

    run = make_run_context(dataclasses.replace(tiny_config, image_size=160))
    assert quick_finder_run(run, "frozen") is run  # cached features: cheap already
    quick = quick_finder_run(run, "finetuning")
    assert quick.cfg.image_size == round(160 * QUICK_SIDE_SHARE) < run.cfg.image_size
    assert quick.data is run.data and quick.out_dir == run.out_dir
    recognition = dataclasses.replace(run, backbone=get_backbone("faceapi_recognition"))
    small = dataclasses.replace(
        recognition, cfg=dataclasses.replace(run.cfg, backbone="faceapi_recognition")
    )
    assert quick_finder_run(small, "finetuning").cfg.image_size == small.backbone.min_side


def synthetic_curve(rates: np.ndarray) -> np.ndarray:
    """Flat, then falling around 1e-4, lowest near 1e-2, then blowing up."""
    x = np.log10(rates)
    return 2.0 - 1.5 / (1 + np.exp(-2.5 * (x + 4))) + np.exp(2.0 * (x + 1.5))


def test_suggestion_lands_in_the_falling_part_of_the_curve():
    rates = exponential_rates(1e-7, 10.0, 100)
    losses = synthetic_curve(rates) + np.random.default_rng(0).normal(0, 0.02, len(rates))
    smoothed = smooth(losses)
    suggestion = suggest_rate(rates, smoothed)
    true_slope = np.gradient(synthetic_curve(rates), np.log10(rates))
    at = int(np.argmin(np.abs(rates - suggestion)))
    assert true_slope[at] < 0  # the loss is falling there
    assert 1e-6 < suggestion < rates[np.argmin(synthetic_curve(rates))]  # before the lowest point
    assert true_slope[at] < 0.5 * true_slope.min()  # and falling fast, not just drifting


def test_no_suggestion_when_the_loss_never_falls():
    rates = exponential_rates(1e-7, 10.0, 50)
    assert suggest_rate(rates, smooth(np.linspace(1.0, 3.0, 50))) is None
    with pytest.raises(ValueError, match="0 < start < end"):
        exponential_rates(1.0, 1e-3, 10)


def test_lr_find_command_writes_its_curve_and_changes_no_checkpoint(tiny_config, capsys):
    root = Path(tiny_config.checkpoint_dir)
    root.mkdir(parents=True)
    (root / "frozen_weights_best.pt").write_bytes(b"a good checkpoint")
    (root / "split.csv").write_text("file,label,split\n")
    args = cli_args(tiny_config, "--approach", "frozen")
    assert main(["lr-find", *args, "--steps", "30", "--start_lr", "1e-5", "--end_lr", "10"]) == 0
    assert (root / "frozen_weights_best.pt").read_bytes() == b"a good checkpoint"
    assert (root / "split.csv").read_text() == "file,label,split\n"
    curve = pd.read_csv(root / "lr_find_frozen_weights.csv")
    assert list(curve.columns) == ["rate", "loss", "smoothed"] and 2 <= len(curve) <= 30
    assert curve["rate"].is_monotonic_increasing and curve["rate"].iloc[0] == pytest.approx(1e-5)
    assert (root / "lr_find_frozen_weights.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "frozen_weights: " in out and "lr_find_frozen_weights.png" in out


def test_fewer_steps_smooth_less_so_the_average_spans_the_same_rates():
    assert smoothing_for(exponential_rates(1e-7, 10.0, 100)) == pytest.approx(0.98)
    quick = smoothing_for(exponential_rates(1e-7, 10.0, 60))
    assert quick == pytest.approx(1 - 0.02 * 100 / 60)
    # The weight of a step 20% of the way back through the range is the same for both.
    assert quick**12 == pytest.approx(0.98**20, rel=0.02)
