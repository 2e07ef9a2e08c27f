"""The notebooks' glue, called as functions: parameters -> Config, and the training widgets."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotion_tl.config import Config
from emotion_tl.notebook import (
    WIDGET_RUNS,
    ParameterError,
    collect_parameters,
    config_from_parameters,
    make_training_widgets,
    train_and_show,
)


def test_parameters_become_a_config_and_objects_are_ignored():
    namespace = {
        "data_dir": "faces",
        "categories": ["angry", "sad"],
        "epochs": 3,
        "max_images_per_category": None,
        "math": math,  # an import
        "Path": Path,  # a class
        "config_from_parameters": config_from_parameters,  # a function
        "_": "IPython's last result",
    }
    cfg = config_from_parameters(namespace, approach="frozen")
    assert (cfg.data_dir, cfg.categories, cfg.epochs) == ("faces", ("angry", "sad"), 3)
    assert cfg.approach == "frozen"
    assert set(collect_parameters(namespace)) == {
        "data_dir",
        "categories",
        "epochs",
        "max_images_per_category",
    }


def test_a_misspelt_parameter_names_the_likely_fix():
    with pytest.raises(ParameterError, match=r"'epoch' \(did you mean 'epochs'\?\)"):
        config_from_parameters({"epoch": 3, "seed": 1})
    with pytest.raises(ParameterError, match="'colour'"):
        config_from_parameters({"colour": "red"})


def test_running_the_config_cell_again_ignores_later_variables():
    namespace = {"epochs": 3}
    config_from_parameters(namespace)
    namespace |= {"head_lr": 0.01, "class_names": ["a", "b"], "epochs": 5}  # later cells, an edit
    assert config_from_parameters(namespace).epochs == 5
    namespace["seed"] = 7  # a field added to the parameters cell is still read
    assert config_from_parameters(namespace).seed == 7


def test_categories_as_one_string_is_refused():
    # What papermill -p categories "angry sad" would inject.
    with pytest.raises(ParameterError, match="-p turns a list into a string"):
        config_from_parameters({"categories": "['angry', 'sad']"})


def make_widgets(cfg: Config, calls: list):
    box = make_training_widgets(cfg, "frozen", train=lambda c, a: calls.append((c, a)))
    epochs, categories, _hint, batch_size, learning_rate, button, output = box.children
    return epochs, categories, batch_size, learning_rate, button, output


def test_widgets_train_only_on_click_with_the_chosen_values(tiny_config):
    calls: list = []
    epochs, categories, batch_size, learning_rate, button, _ = make_widgets(tiny_config, calls)
    # The category list is filled from the folders of data_dir.
    assert categories.options == ("circle", "square", "triangle")
    assert categories.value == ("circle", "square")
    assert calls == []  # building the widgets trains nothing

    epochs.value, batch_size.value, learning_rate.value = 4, 16, 1e-4
    categories.value = ("square", "triangle")
    button.click()
    ((cfg, approach),) = calls
    assert approach == "frozen"
    assert (cfg.epochs, cfg.batch_size, cfg.categories) == (4, 16, ("square", "triangle"))
    assert cfg.learning_rate == pytest.approx(1e-4)
    assert Path(cfg.checkpoint_dir) == Path(tiny_config.checkpoint_dir) / WIDGET_RUNS
    # Every other setting is the notebook's own.
    chosen = dict(epochs=4, batch_size=16, categories=("square", "triangle"),
                  learning_rate=cfg.learning_rate, checkpoint_dir=cfg.checkpoint_dir)  # fmt: skip
    assert cfg == dataclasses.replace(tiny_config, **chosen)


def test_widgets_report_a_bad_choice_instead_of_training(tiny_config, capsys):
    calls: list = []
    _, categories, _, _, button, _ = make_widgets(tiny_config, calls)
    categories.value = ("circle",)
    button.click()
    assert calls == []
    # In a live notebook this lands in the Output widget under the button.
    assert "at least two categories" in capsys.readouterr().out


def test_train_and_show_trains_and_writes_outputs(tiny_config):
    cfg = dataclasses.replace(tiny_config, epochs=1)
    result = train_and_show(cfg, "frozen")
    assert result.outputs["best"].is_file() and len(result.history) == 1
    matrix = pd.read_csv(result.outputs["confusion_csv"], index_col=0).to_numpy()
    assert result.test_acc == pytest.approx(np.trace(matrix) / matrix.sum())
