"""The notebooks' glue, called as functions: parameters -> Config, and the training widgets."""

from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from emotion_tl.config import Config
from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.notebook.parameters import (
    ParameterError,
    collect_parameters,
    config_from_parameters,
    make_training_widgets,
)
from emotion_tl.notebook.widget_runs import WIDGET_RUNS, run_name, train_live
from emotion_tl.training.lr_find import LrFinding
from emotion_tl.training.outputs import make_output_paths


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


def recording(calls: list):
    """A stand-in for training that records its Config and reports no epochs."""

    def train(cfg, approach, *, on_epoch, stop):
        calls.append((cfg, approach))
        raise RuntimeError("not trained: a test")

    return train


def click_and_wait(button) -> None:
    button.click()
    panel = button._panel
    if panel.thread is not None:
        panel.thread.join(timeout=300)


def make_panel(cfg: Config, train):
    panel = make_training_widgets(cfg, "frozen", train=train)
    for button in (panel.train_button, panel.stop_button, panel.resume_button):
        button._panel = panel
    return panel


def test_widgets_train_only_on_click_with_the_chosen_values(tiny_config):
    calls: list = []
    panel = make_panel(tiny_config, recording(calls))
    # The category list is filled from the folders of data_dir.
    assert panel.categories.options == ("circle", "square", "triangle")
    assert panel.categories.value == ("circle", "square")
    assert calls == []  # building the widgets trains nothing
    assert "new final layer 0.001" in panel.rate_used.value

    panel.epochs.value, panel.batch_size.value, panel.learning_rate.value = 4, 16, 1e-4
    panel.categories.value, panel.images.value = ("square", "triangle"), 20
    assert "new final layer 0.0001" in panel.rate_used.value
    click_and_wait(panel.train_button)
    ((cfg, approach),) = calls
    assert approach == "frozen"
    assert (cfg.epochs, cfg.batch_size, cfg.categories) == (4, 16, ("square", "triangle"))
    assert cfg.learning_rate == pytest.approx(1e-4) and cfg.max_images_per_category == 20
    folder = Path(tiny_config.checkpoint_dir) / WIDGET_RUNS / run_name(cfg, "frozen")
    assert Path(cfg.checkpoint_dir) == folder and "square-triangle_e4_b16" in folder.name
    # Every other setting is the notebook's own.
    chosen = dict(epochs=4, batch_size=16, categories=("square", "triangle"),
                  learning_rate=cfg.learning_rate, checkpoint_dir=cfg.checkpoint_dir,
                  max_images_per_category=20)  # fmt: skip
    assert cfg == dataclasses.replace(tiny_config, **chosen)
    # The failure is shown, not lost in the thread, and the run is in the table.
    assert "not trained: a test" in panel.status.value and "failed" in panel.table.value
    assert not panel.train_button.disabled and panel.stop_button.disabled


def test_finetuning_shows_the_tenth_it_really_uses(tiny_config):
    panel = make_training_widgets(tiny_config, "finetuning", train=recording([]))
    rate = tiny_config.learning_rate / 10
    assert f"every layer {rate:.2g} (the learning rate / 10)" in panel.rate_used.value


def test_widgets_report_a_bad_choice_instead_of_training(tiny_config):
    calls: list = []
    panel = make_panel(tiny_config, recording(calls))
    panel.categories.value = ("circle",)
    click_and_wait(panel.train_button)
    assert calls == [] and panel.thread is None
    assert "at least two categories" in panel.status.value


def test_live_curves_stop_and_resume(tiny_config):
    """A real run: the curves are redrawn after each epoch, Train is disabled meanwhile, Stop
    (clicked during epoch 1's update) leaves the interrupted checkpoint, Resume finishes."""
    cfg = dataclasses.replace(tiny_config, epochs=3)
    seen: list = []

    def train(cfg, approach, *, on_epoch, stop):
        def update(history):
            on_epoch(history)
            seen.append((len(history), panel.train_button.disabled, panel.curves.value[:4]))
            if len(history) == 1 and not cfg.resume:
                panel.stop_button.click()

        return train_live(cfg, approach, on_epoch=update, stop=stop)

    panel = make_panel(cfg, train)
    click_and_wait(panel.train_button)
    paths = make_output_paths(
        Path(cfg.checkpoint_dir) / WIDGET_RUNS / run_name(cfg, "frozen"), "frozen"
    )
    assert seen == [(1, True, b"\x89PNG")]
    assert paths["interrupted"].is_file()
    assert "Stopped" in panel.status.value and not panel.resume_button.disabled

    click_and_wait(panel.resume_button)
    assert [n for n, *_ in seen] == [1, 2, 3] and panel.curve_updates == 3
    assert paths["final"].is_file() and "Done" in panel.status.value
    assert load_checkpoint(paths["best"])["metrics"]["setup_seconds"] > 0  # the feature pass
    assert [run["outcome"] for run in panel.runs] == ["stopped", "done"]
    accuracy = panel.runs[1]["test accuracy"]
    assert 0 <= accuracy <= 1 and f"<td>{accuracy}</td>" in panel.table.value
    assert panel.matrix.value[:4] == b"\x89PNG"
    assert panel.resume_button.disabled  # nothing left to resume


def test_finder_button_shows_the_curve_and_the_suggestion_can_be_taken(tiny_config, tmp_path):
    """A stand-in finder: the panel shows its picture and words, and Use sets the slider to the
    learning rate under which fine-tuning trains at the suggested rate (ten times it)."""
    picture = tmp_path / "curve.png"
    picture.write_bytes(b"\x89PNG fake")
    calls: list = []

    def find(cfg, approach, *, stop, on_step):
        calls.append((cfg, approach))
        on_step(10, 10)
        rates = np.geomspace(1e-6, 1e-2, 10)
        return LrFinding(rates, np.ones(10), np.ones(10), 3e-5), {"png": picture}

    panel = make_training_widgets(tiny_config, "finetuning", train=recording([]), find=find)
    panel.find_button._panel = panel
    assert panel.use_button.disabled  # nothing suggested yet
    panel.images.value = 20
    click_and_wait(panel.find_button)
    ((cfg, approach),) = calls
    assert approach == "finetuning" and cfg.max_images_per_category == 20
    assert WIDGET_RUNS in cfg.checkpoint_dir  # the run's own folder, never the notebook's
    assert panel.finder.value == b"\x89PNG fake" and panel.finder.layout.display == ""
    assert "suggested rate for every layer: 3e-05" in panel.status.value
    assert panel.finder_progress.layout.display == "none"  # shown only while it runs
    assert not panel.use_button.disabled and not panel.train_button.disabled
    panel.use_button.click()
    assert panel.learning_rate.value == pytest.approx(3e-4, rel=0.05)
    assert "every layer 3e-05" in panel.rate_used.value


def test_finder_button_runs_the_real_finder_into_the_run_folder(tiny_config):
    panel = make_training_widgets(tiny_config, "frozen", train=recording([]))
    panel.find_button._panel = panel
    click_and_wait(panel.find_button)
    folder = Path(panel.chosen_config().checkpoint_dir)
    assert (folder / "lr_find_frozen_weights.csv").is_file()
    assert panel.finder.value[:4] == b"\x89PNG"
    assert "frozen_weights: " in panel.status.value
    assert not list(folder.glob("*.pt")) and not (folder / "split.csv").exists()


def test_stop_ends_the_finder_with_the_curve_so_far(tiny_config, tmp_path):
    """While the finder runs its progress bar counts the steps and Stop is live; Stop ends it
    and the panel says after how many steps."""
    picture = tmp_path / "curve.png"
    picture.write_bytes(b"\x89PNG fake")
    started = threading.Event()

    def find(cfg, approach, *, stop, on_step):
        on_step(7, 60)
        started.set()
        assert stop.wait(timeout=60)  # until the Stop click
        rates = np.geomspace(1e-6, 1e-4, 7)
        return LrFinding(rates, np.ones(7), np.ones(7), None), {"png": picture}

    panel = make_training_widgets(tiny_config, "finetuning", train=recording([]), find=find)
    panel.find_button.click()
    assert started.wait(timeout=60)
    assert panel.finder_progress.value == 7 and panel.finder_progress.max == 60
    assert panel.finder_progress.layout.display == ""
    assert not panel.stop_button.disabled and panel.train_button.disabled
    panel.stop_button.click()
    panel.thread.join(timeout=60)
    assert panel.status.value.startswith("Stopped after 7 steps.")
    assert panel.finder_progress.layout.display == "none" and not panel.find_button.disabled
