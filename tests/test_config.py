import argparse

import pytest

from emotion_tl.config import Config, add_config_arguments, config_from_args, config_from_dict


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
