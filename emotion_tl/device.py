"""The device and numeric precision a run uses, batches moved there, seeds and peak memory."""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import sys
from collections.abc import Callable

import numpy as np
import torch

logger = logging.getLogger("emotion_tl")


@functools.cache
def warn_once(message: str) -> None:
    """Log a warning the first time only: a run resolves its device once per approach."""
    logger.warning(message)


def resolve_device(name: str) -> torch.device:
    """The asked device, or the CPU with a one-line notice when it is missing."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        warn_once("CUDA is not available here; using the CPU instead (--device cpu hides this).")
        return torch.device("cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        warn_once("MPS is not available here; using the CPU instead.")
        return torch.device("cpu")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bfloat16 matrix instructions (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'fp32', 'bf16' or 'fp16': what `auto` means on this device, or the asked one if usable."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu" and cpu_supports_bf16():
            return "bf16"
        return "fp32"
    if precision == "fp16" and device.type == "cpu":
        logger.warning("fp16 autocast is slow on CPUs; using fp32 instead.")
        return "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed-precision context for the forward pass, or a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def to_device(
    images: torch.Tensor,
    device: torch.device,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Move a batch (B, C, H, W) to `device` in channels_last layout, which convolutions prefer;
    a uint8 batch, as the image loaders deliver it, is made the network's input there by
    `normalize` (its backbone's `Backbone.normalize`).

    Cached features (B, feature_dim) just move.
    """
    images = images.to(device, non_blocking=True)
    if images.dim() != 4:
        return images
    if images.dtype == torch.uint8:
        if normalize is None:
            raise ValueError("a uint8 batch needs `normalize` (its backbone's) to become input")
        images = normalize(images)
    return images.contiguous(memory_format=torch.channels_last)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh peak-memory count on a GPU (a process's peak RSS cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def measure_peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: the GPU's most allocated since the last reset, else the process's peak
    resident memory so far (on the CPU it only grows, so a later approach includes earlier ones)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows: psutil knows the peak working set, when installed
        try:
            import psutil
        except ImportError:
            return float("nan")
        return psutil.Process().memory_info().peak_wset / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
