"""Frozen approach on cached features: the plain loop's head, and a cache that notices change."""

import dataclasses
import os

import pytest
import torch
from PIL import Image

from emotion_tl.data.loaders import make_loaders
from emotion_tl.data.prepare import prepare_data
from emotion_tl.data.transforms import build_transforms
from emotion_tl.model.network import backbone_state, build_model, make_param_groups
from emotion_tl.training import feature_cache as features_module
from emotion_tl.training.context import make_run_context
from emotion_tl.training.feature_cache import load_features
from emotion_tl.training.feature_loaders import FeatureHead, make_feature_loaders
from emotion_tl.training.loop import fit

CPU = torch.device("cpu")


def make_run(cfg, data=None):
    """The run the feature cache reads its settings from (tiny_config: CPU, fp32)."""
    return make_run_context(cfg, data)


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(2)


@pytest.fixture
def count_computed(monkeypatch):
    """Record how many images each call of compute_features pushes through the backbone."""
    calls = []
    original = features_module.compute_features

    def counting(model, images, rows, *args, **kwargs):
        calls.append(len(rows))
        return original(model, images, rows, *args, **kwargs)

    monkeypatch.setattr(features_module, "compute_features", counting)
    return calls


def test_head_on_cached_features_matches_plain_loop(tiny_config):
    cfg = dataclasses.replace(tiny_config, feature_views=1, epochs=3)
    data = prepare_data(cfg)
    train_kwargs = dict(
        approach="frozen",
        backbone="resnet50",
        epochs=3,
        backbone_lr=0.0,
        head_lr=0.01,
        device=CPU,
        precision="fp32",
    )

    plain = make_model()
    initial_head = plain.fc.weight.detach().clone()
    loaders = make_loaders(data, cfg)
    # Without augmentation: the training images get the evaluation transform, as cached ones do.
    loaders["train"].dataset.transform = build_transforms(cfg.image_size, train=False)
    make_param_groups(plain, "frozen", backbone_lr=0.0, head_lr=0.01)
    plain_history = fit(plain, loaders["train"], loaders["val"], **train_kwargs)

    cached = make_model()
    before = backbone_state(cached)
    feature_loaders = make_feature_loaders(cached, make_run(cfg, data))
    head = FeatureHead(cached.fc, "fc")
    cached_history = fit(head, feature_loaders["train"], feature_loaders["val"], **train_kwargs)

    assert not torch.allclose(plain.fc.weight, initial_head)  # training did move the head
    torch.testing.assert_close(cached.fc.weight, plain.fc.weight, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cached.fc.bias, plain.fc.bias, atol=1e-5, rtol=1e-4)
    for row_cached, row_plain in zip(cached_history, plain_history, strict=True):
        assert row_cached["train_loss"] == pytest.approx(row_plain["train_loss"], rel=1e-4)
        assert row_cached["val_acc"] == row_plain["val_acc"]
    # The head trained is the full model's own fc; the backbone is untouched.
    assert head.fc is cached.fc
    after = backbone_state(cached)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_changed_image_recomputes_only_its_entry(tiny_config, count_computed):
    cfg = dataclasses.replace(tiny_config, feature_views=1)
    data = prepare_data(cfg)
    model = make_model()
    first = load_features(model, make_run(cfg, data))
    assert sum(count_computed) == len(data.table)
    assert len(os.listdir(os.path.join(cfg.checkpoint_dir, "feature_cache"))) == 1

    count_computed.clear()
    again = load_features(model, make_run(cfg, data))
    assert count_computed == []
    assert all(torch.equal(first[s], again[s]) for s in first)

    # Rewrite one test image with other content: new size and modification time.
    row = data.indices("test")[0]
    path = os.path.join(cfg.data_dir, data.table["file"][row])
    Image.new("RGB", (48, 48), (250, 10, 10)).save(path)
    data = prepare_data(cfg)
    count_computed.clear()
    changed = load_features(model, make_run(cfg, data))
    assert sum(count_computed) == 1
    position = list(data.indices("test")).index(row)
    assert not torch.allclose(changed["test"][0, position], first["test"][0, position])
    others = [i for i in range(len(data.indices("test"))) if i != position]
    assert torch.equal(changed["test"][0, others], first["test"][0, others])
    assert torch.equal(changed["train"], first["train"])


@pytest.mark.parametrize(
    "change",
    [
        lambda cfg, model: (dataclasses.replace(cfg, image_size=40), model),
        lambda cfg, model: (cfg, make_model(seed=1)),  # other backbone weights
    ],
    ids=["image_size", "weights"],
)
def test_changed_setting_recomputes_everything(tiny_config, count_computed, change):
    cfg = dataclasses.replace(tiny_config, feature_views=1)
    model = make_model()
    load_features(model, make_run(cfg))
    count_computed.clear()
    cfg, model = change(cfg, model)
    data = prepare_data(cfg)
    load_features(model, make_run(cfg, data))
    assert sum(count_computed) == len(data.table)


def test_augmented_views_are_distinct_reproducible_and_cycle(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, feature_views=3, batch_size=64)
    data = prepare_data(cfg)
    model = make_model()
    loaders = make_feature_loaders(model, make_run(cfg, data))
    train = loaders["train"].dataset.features  # (views, images, feature_dim)
    assert train.shape == (3, len(data.indices("train")), 2048)
    assert not torch.allclose(train[0], train[1]) and not torch.allclose(train[1], train[2])
    assert loaders["val"].dataset.features.shape[0] == 1  # evaluation: one plain view

    # Seeded per file and view: a fresh cache elsewhere holds the same numbers.
    elsewhere = dataclasses.replace(cfg, checkpoint_dir=str(tmp_path / "other"))
    again = load_features(model, make_run(elsewhere, data))
    torch.testing.assert_close(again["train"], train)

    # Epoch e draws view e mod 3 of every training image, each once (fit sets the epoch).
    for epoch in range(4):
        loaders["train"].sampler.set_epoch(epoch)
        (batch, _), *_ = list(loaders["train"])
        view = epoch % 3
        matches = (batch[:, None, :] == train[view][None]).all(-1)  # (B, images)
        assert matches.any(1).all() and matches.sum(0).max() == 1
        assert len(batch) == train.shape[1]
