"""LP-FT: fine-tuning that starts from a trained linear probe instead of a random head.

Kumar et al. (ICLR 2022, "Fine-Tuning can Distort Pretrained Features") show that a random head
sends large, meaningless gradients into the pretrained layers in the first steps of fine-tuning;
a head trained first on the frozen features (a linear probe) does not. The probe here is the
frozen approach's head: read from its best checkpoint when this run trained it, else trained now,
in memory, exactly as the frozen approach trains it (same seed, features and epochs), so that
fine-tuning alone starts from the same head as fine-tuning after the frozen approach.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from emotion_tl.training.context import RunContext
from emotion_tl.training.loop import fit_run
from emotion_tl.training.resume import load_finished
from emotion_tl.training.selection import BestEpoch

logger = logging.getLogger("emotion_tl")


def probe_head_state(
    run: RunContext, build_training: Callable[[RunContext, str], Any]
) -> dict[str, torch.Tensor]:
    """The frozen approach's best head (its tensors, by their names in the whole model);
    `build_training` (approach.py's) sets the frozen approach up when it must be trained here."""
    is_head = run.backbone.is_head
    finished = load_finished(run.cfg.to_dict(), run.outputs["frozen"])
    if finished is not None:  # this run (or the run it resumes) trained it
        best, _ = finished
        logger.info(
            "Fine-tuning starts from the frozen approach's head (%s, epoch %d)",
            run.outputs["frozen"]["best"].name,
            best["epoch"],
        )
        return {k: v for k, v in best["state_dict"].items() if is_head(k)}
    model, net, loaders, _, class_weights = build_training(run, "frozen")
    best = BestEpoch()
    fit_run(
        run,
        "frozen",
        net,
        loaders,
        on_epoch_end=lambda stats, _: best.update(stats, model),
        progress_desc="linear probe",
        class_weights=class_weights,
    )
    logger.info(
        "Fine-tuning starts from a linear probe trained first (best epoch %d of %d)",
        best.stats["epoch"],
        run.cfg.epochs_for("frozen"),
    )
    return {k: v for k, v in best.state_dict.items() if is_head(k)}
