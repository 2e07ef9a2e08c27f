"""The recipe's parts (training/recipe.py): each does what its option says, the seed's plain
recipe is Recipe()'s defaults, and the Config's defaults resolve to today's recipe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emotion_tl.config import Config
from emotion_tl.model.network import build_model, make_param_groups, set_train_mode
from emotion_tl.training.recipe import SEED_RECIPE, Recipe, make_optimizer, make_schedule
from emotion_tl.training.step import make_train_step


def test_the_cosine_schedule_warms_up_then_decays_to_zero():
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    schedule = make_schedule(optimizer, Recipe(schedule="cosine", warmup_epochs=1), 3, 4)
    rates = []
    for _ in range(12):  # 3 epochs of 4 steps
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])  # the first epoch's warm-up
    decay = rates[4:]
    assert decay[0] == pytest.approx(1.0) and all(
        a > b for a, b in zip(decay, decay[1:], strict=False)
    )
    assert rates[-1] < 0.05  # nearly zero at the last step
    assert make_schedule(optimizer, SEED_RECIPE, 3, 4) is None  # constant: the rates stay


def test_layer_decay_gives_each_lower_block_a_smaller_rate():
    model = build_model(2)
    groups = make_param_groups(model, "finetuning", backbone_lr=1e-4, head_lr=1e-4, layer_decay=0.5)
    rates = {group["name"]: group["lr"] for group in groups}
    blocks = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
    assert list(rates) == [f"backbone.{name}" for name in blocks] + ["head"]
    assert rates["backbone.layer4"] == rates["head"] == 1e-4  # the top block keeps the rate
    assert rates["backbone.layer3"] == pytest.approx(5e-5)
    assert rates["backbone.conv1"] == pytest.approx(1e-4 * 0.5**5)
    every = sum(len(group["params"]) for group in groups)
    assert every == len(list(model.parameters()))  # every parameter in exactly one group


def test_weight_decay_and_label_smoothing_reach_the_optimiser_and_the_loss():
    model = build_model(2)
    recipe = Recipe(weight_decay=0.05, label_smoothing=0.1)
    step = make_train_step(
        model, "frozen", backbone="resnet50", backbone_lr=0.0, head_lr=1e-3,
        device=torch.device("cpu"), precision="fp32", recipe=recipe,
    )  # fmt: skip
    assert isinstance(step.optimizer, torch.optim.AdamW)
    assert step.optimizer.param_groups[0]["weight_decay"] == 0.05
    assert step.loss_fn.label_smoothing == 0.1
    seed = make_optimizer([{"params": [nn.Parameter(torch.zeros(1))]}], SEED_RECIPE)
    assert type(seed) is torch.optim.Adam  # the seed's optimiser, exactly


@pytest.mark.parametrize("batchnorm", ["train", "frozen"])
def test_frozen_batchnorm_keeps_its_statistics_while_everything_learns(batchnorm):
    torch.manual_seed(0)
    model = build_model(2)
    step = make_train_step(
        model, "finetuning", backbone="resnet50", backbone_lr=1e-3, head_lr=1e-3,
        device=torch.device("cpu"), precision="fp32", recipe=Recipe(finetuning_batchnorm=batchnorm),
    )  # fmt: skip
    before = model.bn1.running_mean.clone(), model.conv1.weight.detach().clone()
    set_train_mode(model, "finetuning", "resnet50", step.batchnorm)
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    step(model, images, torch.tensor([0, 1, 0, 1]))
    assert not torch.equal(model.conv1.weight, before[1])  # the weights learn either way
    assert torch.equal(model.bn1.running_mean, before[0]) == (batchnorm == "frozen")


def test_batchnorm_defaults_to_frozen_with_pretrained_weights_and_train_without():
    assert Config().batchnorm_for_finetuning() == "frozen"
    assert Recipe.from_config(Config()).finetuning_batchnorm == "frozen"
    # A random network's running statistics are no source's: they follow the batches.
    assert Config(pretrained=False).batchnorm_for_finetuning() == "train"
    assert Config(finetuning_batchnorm="train").batchnorm_for_finetuning() == "train"
    assert Config(pretrained=False, finetuning_batchnorm="frozen").batchnorm_for_finetuning() == (
        "frozen"
    )
    with pytest.raises(ValueError, match="finetuning_batchnorm='eval': choose one of train"):
        Config(finetuning_batchnorm="eval")
