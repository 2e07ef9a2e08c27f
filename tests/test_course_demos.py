"""The notebooks' demonstrations: BatchNorm's running statistics in train vs eval mode, and the
learning-rate comparison for fine-tuning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from emotion_tl.config import Config
from emotion_tl.figures.training import plot_histories, plot_running_means
from emotion_tl.model.batchnorm import mean_change, pass_in_each_mode, running_mean
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.model.network import build_model, make_param_groups
from emotion_tl.training.rate_demo import RATE_DEMO, compare_learning_rates, demo_rates, rate_table


def random_images(count: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8, generator=generator)
            for _ in range(count)]  # fmt: skip


def test_a_frozen_model_in_train_mode_still_moves_batchnorm_but_eval_mode_does_not():
    torch.manual_seed(0)
    model = build_model(2)
    make_param_groups(model, "frozen", backbone_lr=0.0, head_lr=0.001)
    assert not any(p.requires_grad for p in model.bn1.parameters())
    before = running_mean(model, "layer1.0.bn2")
    means = pass_in_each_mode(
        model, random_images(5), image_size=32, layer="layer1.0.bn2", batch_size=2
    )
    assert list(means) == [
        "before (as loaded)",
        "after a pass in train mode",
        "after a pass in eval mode",
    ]
    np.testing.assert_array_equal(means["before (as loaded)"], before)
    changes = mean_change(means)
    assert changes["after a pass in train mode"] > 0.01
    assert changes["after a pass in eval mode"] == 0.0
    np.testing.assert_array_equal(running_mean(model, "layer1.0.bn2"), before)  # copies only


def test_the_batchnorm_pass_names_a_wrong_layer_and_needs_images():
    model = build_model(2)
    with pytest.raises(ValueError, match="'conv1' is not a BatchNorm layer"):
        running_mean(model, "conv1")
    with pytest.raises(ValueError, match="at least one image"):
        pass_in_each_mode(model, [], image_size=32)


def test_running_means_figure_has_one_series_per_state():
    means = {"a": np.zeros(8), "b": np.ones(8), "c": np.full(8, 2.0)}
    figure = plot_running_means(means, "bn1")
    (ax,) = figure.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "channel of bn1"


def test_rate_comparison_trains_at_both_rates_apart_from_the_notebooks_outputs(tiny_config):
    cfg = dataclasses.replace(tiny_config, max_images_per_category=8, learning_rate=0.002)
    histories = compare_learning_rates(cfg, images_per_category=40, epochs=1)
    rates = demo_rates(cfg)
    assert list(histories) == list(rates) and list(rates.values()) == [0.002, 0.0002]
    root = Path(cfg.checkpoint_dir)
    assert not (root / "finetuning_best.pt").exists()  # the notebook's own outputs are untouched
    for rate in rates.values():
        best = load_checkpoint(root / RATE_DEMO / f"lr{rate:g}" / "finetuning_best.pt")
        used = Config(**best["config"])
        assert used.lr_for("finetuning") == pytest.approx((rate, rate))
        assert used.max_images_per_category == 8  # the smaller of the two limits
    table = rate_table(histories)
    assert list(table.index) == list(rates)
    assert (table["seconds"] > 0).all()
    figure = plot_histories(histories, "rates")
    assert len(figure.axes) == 2 and figure._suptitle.get_text() == "rates"
