"""What the converted source models share: numpy arrays become a state_dict (as_state_dict), of
the body and, under `expression.`, the source's own head; converted once and cached with a
checksum sidecar (storage.save_vouched).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion_tl.storage import load_vouched, save_vouched

HEAD_PREFIX = "expression."  # the source's own head, kept apart for the zero-shot baseline


def as_state_dict(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Converted numpy arrays as a PyTorch state_dict: float32 tensors of their own memory, and
    for each BatchNorm (a `running_var`) the `num_batches_tracked` counter PyTorch keeps, at 0."""
    state = {k: torch.from_numpy(np.array(v, np.float32, order="C")) for k, v in arrays.items()}
    for name in [k for k in state if k.endswith(".running_var")]:
        state[name.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
    return state


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """(the body's tensors, the source's own head's tensors without the prefix)."""
    head = {k.removeprefix(HEAD_PREFIX): v for k, v in state.items() if k.startswith(HEAD_PREFIX)}
    body = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
    return body, head


def load_or_convert(
    path: Path, format_name: str, source: str, convert: Callable[[], dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """The state_dict cached at `path`, or `convert()`'s, cached there for next time."""
    payload = load_vouched(path)
    if isinstance(payload, dict) and payload.get("format") == format_name:
        return payload["state_dict"]
    state = convert()
    save_vouched({"format": format_name, "source": source, "state_dict": state}, path)
    return state


def fill(state: dict[str, torch.Tensor], network: nn.Module, head: nn.Module) -> None:
    """Load the body into `network` and the own head into `head`, strictly: the shapes must fit."""
    body, own = split_state(state)
    network.load_state_dict(body)
    head.load_state_dict(own)


class WithOwnHead(nn.Module):
    """A converted network followed by its source's own head, as the source runs it: the
    zero-shot baseline and the conversion tests."""

    def __init__(self, network: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.network, self.head = network, head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.network(images))
