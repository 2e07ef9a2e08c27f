"""One approach's checkpoints (best, final, interrupted): its weights and the run's metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from emotion_tl.distributed import is_main
from emotion_tl.model.checkpoint import make_checkpoint, save_checkpoint
from emotion_tl.training.context import RunContext


@dataclass
class Checkpoints:
    """Writes one approach's checkpoints: the model's weights now, with the run's metadata."""

    model: nn.Module
    run: RunContext
    approach: str

    def save(self, kind: str, epoch: int, metrics: dict, history: list, **extra: Any) -> None:
        """Write the `kind` ("best", "final", "interrupted") checkpoint atomically to its path
        (with several processes, rank 0 alone writes)."""
        if not is_main():
            return
        run = self.run
        checkpoint = make_checkpoint(
            self.model,
            class_names=run.data.class_names,
            config=run.cfg.to_dict(),
            approach=self.approach,
            weights_source=run.pretrained.source,
            stride_in_1x1=run.pretrained.stride_in_1x1,
            epoch=epoch,
            metrics=metrics,
            history=history,
            device=str(run.device),
            precision=run.precision,
            kind=kind,
        )
        save_checkpoint(checkpoint | extra, run.outputs[self.approach][kind])
