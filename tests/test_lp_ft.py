"""LP-FT (--finetuning_head_init probe): fine-tuning starts from the frozen approach's trained
head: read from its best checkpoint when both approaches run, trained first the same way alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import make_tiny_config

from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.training import loop
from emotion_tl.training.run import run_experiment


@pytest.fixture
def starting_heads(monkeypatch) -> dict[str, dict[str, torch.Tensor]]:
    """The head each approach's training starts from, as `fit` receives it."""
    heads, real_fit = {}, loop.fit

    def fit(net, *args, approach, **kwargs):
        head = net.get_submodule("fc") if hasattr(net, "fc") else net
        heads[approach] = {k: v.detach().clone() for k, v in head.state_dict().items()}
        return real_fit(net, *args, approach=approach, **kwargs)

    monkeypatch.setattr(loop, "fit", fit)
    return heads


def frozen_best_head(checkpoint_dir: str) -> dict[str, torch.Tensor]:
    state = load_checkpoint(Path(checkpoint_dir) / "frozen_weights_best.pt")["state_dict"]
    return {k.removeprefix("fc."): v for k, v in state.items() if k.startswith("fc.")}


def test_lp_ft_starts_from_the_frozen_heads_exact_weights(image_dir, tmp_path, starting_heads):
    both = make_tiny_config(image_dir, tmp_path / "both", finetuning_head_init="probe")
    run_experiment(both)
    expected = frozen_best_head(both.checkpoint_dir)
    start = starting_heads["finetuning"]
    assert start.keys() == expected.keys()
    assert all(torch.equal(start[k], expected[k]) for k in expected)
    tuned = load_checkpoint(Path(both.checkpoint_dir) / "finetuning_best.pt")
    assert tuned["config"]["finetuning_head_init"] == "probe"

    # alone, fine-tuning trains the same probe first: the same head to the last bit
    alone = make_tiny_config(
        image_dir, tmp_path / "alone", finetuning_head_init="probe", approach="finetuning"
    )
    run_experiment(alone)
    assert not (Path(alone.checkpoint_dir) / "frozen_weights_best.pt").exists()  # not saved
    assert all(torch.equal(starting_heads["finetuning"][k], expected[k]) for k in expected)


def test_the_seeds_recipe_starts_from_a_random_head(image_dir, tmp_path, starting_heads):
    cfg = make_tiny_config(image_dir, tmp_path / "ck")  # finetuning_head_init="random"
    run_experiment(cfg)
    expected = frozen_best_head(cfg.checkpoint_dir)
    assert not torch.equal(starting_heads["finetuning"]["weight"], expected["weight"])
