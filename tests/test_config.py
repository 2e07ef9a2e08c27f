import argparse
import dataclasses

import pytest

from emotion_tl.config import Config, config_from_dict
from emotion_tl.config_options import add_config_arguments, config_from_args


def parse(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_command_line_defaults_match_the_config():
    assert parse([]) == Config()


def test_command_line_options_reach_the_config():
    cfg = parse(
        [
            "--categories",
            "angry",
            "sad",
            "happy",
            "--epochs",
            "3",
            "--no_pretrained",
            "--learning_rate",
            "0.0005",
            "--approach",
            "frozen",
        ]
    )
    assert cfg.categories == ("angry", "sad", "happy")
    assert (cfg.epochs, cfg.pretrained, cfg.learning_rate) == (3, False, 0.0005)
    assert cfg.approaches == ("frozen",)


def test_finetuning_backbone_rate_is_ten_times_lower():
    cfg = Config(learning_rate=0.002)
    assert cfg.lr_for("finetuning") == pytest.approx((0.0002, 0.0002))  # the head too
    assert cfg.lr_for("frozen")[1] == 0.002
    assert Config(finetuning_head_lr=0.01).lr_for("finetuning")[1] == 0.01


def test_misspelt_setting_fails_loudly():
    with pytest.raises(TypeError, match="epoch"):
        config_from_dict({"epoch": 3})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"categories": ["only"]}, "at least two"),
        ({"epochs": 0}, "epochs"),
        ({"approach": "partial"}, "approach"),
        ({"val_fraction": 0.5, "test_fraction": 0.45}, "under 10%"),
    ],
)
def test_invalid_values_are_rejected_with_the_fix(values, message):
    with pytest.raises(ValueError, match=message):
        config_from_dict(values)


def test_to_dict_holds_plain_types():
    values = Config().to_dict()
    assert values["categories"] == ["confused", "neutral"]
    assert Config(**values) == Config()


def test_seed_recipe_is_one_option_away_and_given_options_still_win():
    from emotion_tl.cli import parse_command_line
    from emotion_tl.config import SEED_RECIPE_SETTINGS
    from emotion_tl.config_options import config_from_args

    today = config_from_args(parse_command_line(["lr-find"]))
    assert (today.epochs, today.image_size, today.schedule) == (None, None, "cosine")
    assert today.epochs_for("frozen") == 100 and today.epochs_for("finetuning") == 10
    # A small set still gets MIN_DEFAULT_STEPS steps: 2 steps an epoch, 20 epochs; 7 steps, 10.
    assert today.epochs_for("finetuning", 2) == 20 and today.epochs_for("finetuning", 7) == 10
    assert today.epochs_for("frozen", 2) == 100
    seed = config_from_args(parse_command_line(["lr-find", "--seed_recipe"]))
    assert {k: getattr(seed, k) for k in SEED_RECIPE_SETTINGS} == SEED_RECIPE_SETTINGS
    assert seed.epochs_for("frozen") == seed.epochs_for("finetuning", 1) == 20
    mixed = config_from_args(parse_command_line(["lr-find", "--epochs", "5", "--seed_recipe"]))
    assert (mixed.epochs, mixed.image_size, mixed.schedule) == (5, 224, "constant")
    train = parse_command_line(["train", "--seed_recipe", "--schedule", "cosine"])
    assert (train.image_size, train.epochs, train.schedule) == (224, 20, "cosine")
    no_cache = dataclasses.replace(today, feature_cache=False)
    assert no_cache.epochs_for("frozen") == 10  # each epoch a backbone pass: not 100 of them
