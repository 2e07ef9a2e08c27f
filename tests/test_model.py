import pytest
import torch
from torch.utils.data import DataLoader

from emotion_tl.data.loaders import ImageDataset, make_loaders
from emotion_tl.data.prepare import prepare_data
from emotion_tl.data.transforms import build_transforms
from emotion_tl.model.network import (
    backbone_state,
    build_model,
    count_trainable,
    make_param_groups,
)
from emotion_tl.model.resnet import set_stride_in_1x1
from emotion_tl.training.loop import fit


def test_frozen_trains_only_the_new_head():
    model = build_model(num_classes=3)
    groups = make_param_groups(model, "frozen", backbone_lr=0.0, head_lr=1e-3)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert count_trainable(model) == 2048 * 3 + 3
    assert [g["lr"] for g in groups] == [1e-3]


def test_finetuning_trains_every_layer_with_two_rates():
    model = build_model(num_classes=2)
    make_param_groups(model, "frozen", backbone_lr=0.0, head_lr=1e-3)  # then unfreeze again
    groups = make_param_groups(model, "finetuning", backbone_lr=1e-4, head_lr=1e-3)
    assert all(p.requires_grad for p in model.parameters())
    assert count_trainable(model) == sum(p.numel() for p in model.parameters())
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 1e-4), ("head", 1e-3)]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_unknown_approach_is_rejected():
    with pytest.raises(ValueError, match="unknown approach"):
        make_param_groups(build_model(2), "partial", backbone_lr=0.1, head_lr=0.1)


def test_stride_in_1x1_moves_the_downsampling_stride():
    model = set_stride_in_1x1(build_model(2))
    for layer in (model.layer2, model.layer3, model.layer4):
        assert layer[0].conv1.stride == (2, 2) and layer[0].conv2.stride == (1, 1)
    # Same output size either way: the stride only moves.
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def fit_tiny(cfg, approach, epochs=2):
    torch.manual_seed(0)
    data = prepare_data(cfg)
    loaders = make_loaders(data, cfg)
    model = build_model(len(cfg.categories))
    backbone_lr, head_lr = cfg.lr_for(approach)
    history = fit(
        model,
        loaders["train"],
        loaders["val"],
        approach=approach,
        backbone="resnet50",
        epochs=epochs,
        backbone_lr=backbone_lr,
        head_lr=head_lr,
        device=torch.device("cpu"),
        precision="fp32",
    )
    return model, history


def test_frozen_backbone_is_bit_identical_after_training(tiny_config):
    torch.manual_seed(0)
    before = backbone_state(build_model(len(tiny_config.categories)))
    model, history = fit_tiny(tiny_config, "frozen")
    after = backbone_state(model)
    assert before.keys() == after.keys()
    # Parameters and BatchNorm running statistics alike.
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any("running_mean" in k for k in before)
    assert len(history) == 2


def test_finetuning_changes_the_backbone(tiny_config):
    torch.manual_seed(0)
    before = backbone_state(build_model(len(tiny_config.categories)))
    model, _ = fit_tiny(tiny_config, "finetuning", epochs=1)
    after = backbone_state(model)
    assert not torch.equal(before["conv1.weight"], after["conv1.weight"])
    assert not torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])


def test_loss_falls_when_overfitting_a_tiny_set(tiny_config):
    # 8 images, no augmentation, one batch per epoch: the network must memorise them.
    data = prepare_data(tiny_config)
    index = data.indices("train")[:8]
    dataset = ImageDataset(
        [data.images[i] for i in index],
        data.labels()[index].tolist(),
        build_transforms(32, train=False),
    )
    loader = DataLoader(dataset, batch_size=8)
    torch.manual_seed(0)
    history = fit(
        build_model(2),
        loader,
        loader,
        approach="finetuning",
        backbone="resnet50",
        epochs=12,
        backbone_lr=1e-3,
        head_lr=1e-3,
        device=torch.device("cpu"),
        precision="fp32",
    )
    losses = [row["train_loss"] for row in history]
    assert losses[-1] < 0.25 * losses[0], losses
    assert history[-1]["train_acc"] == 1.0
