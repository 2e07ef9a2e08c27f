"""--patience: training stops once the validation loss has not improved for N epochs in a row;
the checkpoints and the run say where and why, and a resumed run counts on from its history."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from conftest import make_tiny_config

from emotion_tl.model.checkpoint import load_checkpoint
from emotion_tl.training import loop
from emotion_tl.training.approach import train_approach
from emotion_tl.training.resume import TrainingInterrupted
from emotion_tl.training.run import prepare_run, run_experiment
from emotion_tl.training.selection import early_stop_reason, epochs_without_improvement

# the validation loss each epoch reports: lowest at epoch 2, then worse for good
SCRIPTED_LOSSES = [1.0, 0.8, 0.9, 0.95, 0.99, 1.1, 1.2, 1.3]


def history_of(losses: list[float]) -> list[dict[str, float]]:
    return [{"epoch": i + 1, "val_loss": loss} for i, loss in enumerate(losses)]


def test_the_count_starts_at_the_lowest_validation_loss():
    assert epochs_without_improvement([]) == 0
    assert epochs_without_improvement(history_of([1.0, 0.8])) == 0
    assert epochs_without_improvement(history_of([1.0, 0.8, 0.9, 0.8])) == 2  # a tie: no gain
    assert early_stop_reason(history_of([1.0, 0.8, 0.9]), patience=2) is None
    reason = early_stop_reason(history_of([1.0, 0.8, 0.9, 0.95]), patience=2)
    assert reason.startswith("stopped after epoch 4") and "0.8000 at epoch 2" in reason
    assert early_stop_reason(history_of([1.0, 2.0, 3.0]), patience=0) is None  # 0: never


@pytest.fixture
def scripted_validation(monkeypatch):
    """Every validation pass reports the next loss of SCRIPTED_LOSSES (and accuracy 0.5)."""
    losses = iter(SCRIPTED_LOSSES)
    monkeypatch.setattr(loop, "evaluate_loader", lambda *args, **kwargs: (next(losses), 0.5))


def test_patience_stops_where_the_loss_stopped_improving(image_dir, tmp_path, scripted_validation):
    cfg = make_tiny_config(image_dir, tmp_path / "ck", epochs=8, patience=2, feature_cache=False)
    result = train_approach(prepare_run(cfg), "frozen")
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert result.early_stop.startswith("stopped after epoch 4")
    final = load_checkpoint(Path(cfg.checkpoint_dir) / "frozen_weights_final.pt")
    assert final["epoch"] == 4 and final["early_stop"] == result.early_stop
    assert final["config"]["patience"] == 2
    best = load_checkpoint(Path(cfg.checkpoint_dir) / "frozen_weights_best.pt")
    assert best["early_stop"] == result.early_stop


def test_a_resumed_run_counts_on_from_its_history(image_dir, tmp_path, scripted_validation):
    cfg = make_tiny_config(image_dir, tmp_path / "ck", epochs=8, patience=2, feature_cache=False)
    stop = threading.Event()

    def stop_after_epoch_3(history):
        if len(history) == 3:
            stop.set()

    with pytest.raises(TrainingInterrupted):
        train_approach(prepare_run(cfg), "frozen", stop, stop_after_epoch_3)
    resumed = train_approach(prepare_run(dataclasses.replace(cfg, resume=True)), "frozen")
    # epochs 3 and 4 without a gain: one before the interruption, one after
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.early_stop.startswith("stopped after epoch 4")


def test_the_report_says_which_approach_stopped_early(image_dir, tmp_path, scripted_validation):
    cfg = make_tiny_config(image_dir, tmp_path / "ck", epochs=8, patience=2, feature_cache=False)
    frozen, finetuning = run_experiment(cfg)
    assert len(frozen.history) == 4 and len(finetuning.history) == 3  # its lowest: epoch 1
    text = (Path(cfg.checkpoint_dir) / "comparison.md").read_text()
    assert f"**frozen_weights** {frozen.early_stop}." in text
    assert f"**finetuning** {finetuning.early_stop}." in text
