"""The learning-rate finder (Leslie Smith's range test, as fastai's `lr_find` runs it).

Training steps run with a rate that rises exponentially from `start` to `end`, one rate per
step, on the approach's own model, loss, optimizer (Adam) and parameter groups, and the loss of
each step is recorded. The curve is smoothed with a bias-corrected exponential moving average
(weight 0.98 over 100 steps, as fastai; fewer steps over the range smooth less, so that the
average spans the same stretch of rates), and the test stops early once the smoothed loss passes
four times its lowest value: the rate has become destructive. Afterwards the weights, BatchNorm
statistics and optimizer are put back exactly as they were.

The suggestion rule: the rate where the smoothed loss falls fastest per tenfold increase of the
rate (the steepest downward slope against log10(rate)), looking only before the lowest point of
the curve and skipping the first `SKIP_START` steps, where the average has not settled. It is a
rate at which training makes quick progress without yet being unstable; a rate near the lowest
point is already too high, since the loss turns up right after it.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from emotion_tl.config import FINETUNING_LR_DIVISOR, OUTPUT_PREFIX, Config
from emotion_tl.figures.training import plot_lr_finding
from emotion_tl.model.network import set_train_mode
from emotion_tl.storage import save_figure_atomic, write_atomic
from emotion_tl.training.context import RunContext
from emotion_tl.training.recipe import Recipe
from emotion_tl.training.step import TrainStep, make_train_step

SMOOTHING = 0.98  # fastai's, for its 100 steps; fewer steps over the same range smooth less
DIVERGE = 4.0  # stop once the smoothed loss exceeds this many times its minimum
SKIP_START = 5
# The quick finder (the widget's, and `lr-find --quick`): fewer steps on smaller pictures, which
# docs/training.md measures against the full one (FULL_STEPS at the run's side).
FULL_STEPS = 100
QUICK_STEPS = 60
QUICK_SIDE_SHARE = 0.5  # of the run's image side, never below the source's smallest side


@dataclass
class LrFinding:
    """A range test's result: rate, raw and smoothed loss per step, and the suggested rate."""

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None  # None: the loss never fell (see `suggest_rate`)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"rate": self.rates, "loss": self.losses, "smoothed": self.smoothed})


def smooth(losses: np.ndarray, beta: float = SMOOTHING) -> np.ndarray:
    """Bias-corrected exponential moving average of `losses`."""
    average, out = 0.0, []
    for index, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * float(loss)
        out.append(average / (1 - beta**index))
    return np.asarray(out)


def suggest_rate(rates: np.ndarray, smoothed: np.ndarray) -> float | None:
    """The rate of steepest descent of `smoothed` against log10(rate), before its minimum."""
    lowest = int(np.argmin(smoothed))
    if lowest <= SKIP_START + 1:
        return None  # no falling stretch to speak of
    slopes = np.gradient(smoothed[: lowest + 1], np.log10(rates[: lowest + 1]))
    steepest = SKIP_START + int(np.argmin(slopes[SKIP_START:]))
    return float(rates[steepest]) if slopes[steepest] < 0 else None


def smoothing_for(rates: np.ndarray) -> float:
    """The average's weight that smooths over the same share of the range as SMOOTHING does
    over FULL_STEPS steps: with 60 steps, 0.967, so the smoothed curve lags by as many decades
    of rate as with 100 (the quick finder's suggestion still lies above the full one's:
    docs/training.md)."""
    return 1 - (1 - SMOOTHING) * FULL_STEPS / max(len(rates), 2)


def exponential_rates(start: float, end: float, steps: int) -> np.ndarray:
    """`steps` rates from `start` to `end`, evenly spaced on a log scale."""
    if not 0 < start < end or steps < 2:
        raise ValueError(
            f"the range test needs 0 < start < end and at least 2 steps; got start={start}, "
            f"end={end}, steps={steps}."
        )
    return np.geomspace(start, end, steps)


def forever(loader: DataLoader) -> Iterator:
    """The loader's batches, pass after pass (each pass draws new augmentations and order)."""
    if len(loader) == 0:
        raise ValueError("the range test needs at least one training batch; add images.")
    while True:
        yield from loader


def range_test(
    model: nn.Module,
    loader: DataLoader,
    step: TrainStep,
    rates: np.ndarray,
    *,
    stop: threading.Event | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> LrFinding:
    """One training step per rate in `rates` (the head's rate; other groups keep their ratio to
    it), cycling through `loader`; `model` and `step.optimizer` are restored afterwards.

    A tqdm bar counts the steps, and `on_step(done, total)` hears of each; once `stop` is set
    the test ends after the current step, with the curve so far."""
    weights = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(step.optimizer.state_dict())
    groups = step.optimizer.param_groups
    head_lr = next(g["lr"] for g in groups if g.get("name") == "head")
    ratios = [g["lr"] / head_lr for g in groups]
    losses: list[float] = []
    beta = smoothing_for(rates)
    bar = tqdm(total=len(rates), desc=f"lr-find {step.approach}", unit="step")
    try:
        set_train_mode(model, step.approach, step.backbone.name, step.batchnorm)
        for rate, (images, labels) in zip(rates, forever(loader), strict=False):
            for group, ratio in zip(groups, ratios, strict=True):
                group["lr"] = float(rate) * ratio
            loss, _ = step(model, images, labels)
            losses.append(loss)
            bar.update(1)
            bar.set_postfix(rate=f"{rate:.1e}", loss=f"{loss:.3f}")
            if on_step is not None:
                on_step(len(losses), len(rates))
            smoothed = smooth(np.asarray(losses), beta)
            if not np.isfinite(loss) or smoothed[-1] > DIVERGE * smoothed.min():
                break
            if stop is not None and stop.is_set():
                break
    finally:
        bar.close()
        model.load_state_dict(weights)
        step.optimizer.load_state_dict(optimizer_state)
    tried = np.asarray(rates[: len(losses)], dtype=float)
    values = np.asarray(losses, dtype=float)
    smoothed = smooth(values, beta)
    return LrFinding(tried, values, smoothed, suggest_rate(tried, smoothed))


def find_learning_rate(
    run: RunContext,
    approach: str,
    *,
    steps: int = FULL_STEPS,
    start: float = 1e-7,
    end: float = 10.0,
    stop: threading.Event | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> LrFinding:
    """The range test on `approach`'s model as `train_approach` would build and train it (the
    frozen approach on cached features when `cfg.feature_cache`); nothing is saved. `stop` and
    `on_step` as for `range_test`."""
    from emotion_tl.training.approach import build_training

    cfg, device, precision = run.cfg, run.device, run.precision
    setup = build_training(run, approach)
    net = setup.net
    backbone_lr, head_lr = cfg.lr_for(approach)
    step = make_train_step(
        net,
        approach,
        backbone=cfg.backbone,
        backbone_lr=backbone_lr,
        head_lr=head_lr,
        device=device,
        precision=precision,
        class_weights=setup.class_weights,
        recipe=Recipe.from_config(cfg),  # no schedule: the range test sets the rates itself
    )
    rates = exponential_rates(start, end, steps)
    return range_test(net, setup.loaders["train"], step, rates, stop=stop, on_step=on_step)


def quick_finder_run(run: RunContext, approach: str) -> RunContext:
    """`run` as the quick finder runs it: fine-tuning's steps on pictures of QUICK_SIDE_SHARE of
    the run's side (never below what the source's layers need), where a step costs about a
    quarter as much; the frozen approach's steps on cached features are cheap already, so it
    keeps its side. The same data: the training crops come out at the smaller side."""
    if approach == "frozen":
        return run
    side = max(round(run.cfg.image_size * QUICK_SIDE_SHARE), run.backbone.min_side)
    return dataclasses.replace(run, cfg=dataclasses.replace(run.cfg, image_size=side))


def write_lr_finding(finding: LrFinding, out_dir: Path, approach: str) -> dict[str, Path]:
    """`lr_find_<prefix>.csv` and `.png` in `out_dir`: the curve and the suggestion."""
    prefix = OUTPUT_PREFIX[approach]
    paths = {kind: Path(out_dir) / f"lr_find_{prefix}.{kind}" for kind in ("csv", "png")}
    write_atomic(paths["csv"], finding.table().to_csv(index=False).encode())
    figure = plot_lr_finding(finding.table(), finding.suggestion, f"{prefix}: learning-rate finder")
    save_figure_atomic(figure, paths["png"])
    return paths


def learning_rate_for(rate: float, cfg: Config, approach: str) -> float:
    """The `learning_rate` setting under which `approach`'s new final layer trains at `rate`
    (fine-tuning trains at learning_rate / 10, its backbone in proportion)."""
    if approach == "frozen":
        return rate
    backbone_lr, head_lr = cfg.lr_for(approach)
    return rate * backbone_lr / head_lr * FINETUNING_LR_DIVISOR


def describe_finding(finding: LrFinding, cfg: Config, approach: str) -> str:
    """The suggestion in words, with the --learning_rate that would give it."""
    tried = f"{finding.rates[0]:.0e} to {finding.rates[-1]:.1e} in {len(finding.rates)} steps"
    if finding.suggestion is None:
        return (
            f"{OUTPUT_PREFIX[approach]}: the smoothed loss did not fall over the rates tried "
            f"({tried}), so there is no suggestion. Try more steps (--steps) or a wider range "
            "(--start_lr, --end_lr)."
        )
    rate = finding.suggestion
    head_lr = cfg.lr_for(approach)[1]
    options = f"--learning_rate {learning_rate_for(rate, cfg, approach):.2g}"
    layers = "the new final layer"
    if approach == "finetuning" and cfg.finetuning_head_lr is None:
        layers = "every layer"
    elif approach == "finetuning":
        options += f" --finetuning_head_lr {rate:.2g}"
    return (
        f"{OUTPUT_PREFIX[approach]}: suggested rate for {layers}: {rate:.2g} (the steepest fall "
        f"of the smoothed loss; rates tried: {tried}). This run's settings train it at "
        f"{head_lr:.2g}; to use the suggestion, pass {options}."
    )
