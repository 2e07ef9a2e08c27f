"""Several processes started by `torchrun`, one per GPU: who is who, and the few collectives a run
needs (PyTorch's own process group and DistributedDataParallel; nothing home-made).

A process not started by torchrun is a world of one: every function here then answers for one
process and communicates nothing, so the rest of the code calls them unconditionally.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler

logger = logging.getLogger("emotion_tl")


def world_size() -> int:
    """How many processes train together (1 without torchrun)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's number, 0 to world_size() - 1."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes files and prints: rank 0."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher that sets its variables) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextlib.contextmanager
def start_distributed(device: torch.device) -> Iterator[None]:
    """Join torchrun's process group for the block, if torchrun started this process: NCCL and
    the GPU numbered LOCAL_RANK on CUDA, gloo on the CPU."""
    if not launched_by_torchrun():
        yield
        return
    if device.type == "mps":
        raise ValueError("torchrun runs on CUDA GPUs or the CPU; use --device cuda or --device cpu")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if not is_main():  # one voice: the other ranks report only problems
        logger.setLevel(logging.WARNING)
    logger.info("Distributed run: %d processes, backend %s", world_size(), dist.get_backend())
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here."""
    if world_size() > 1:
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the others once it has finished: what rank 0 writes there
    (caches, downloads) the others then read instead of making again, at the same time."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def broadcast_object(value: object) -> object:
    """Rank 0's `value`, on every process."""
    if world_size() == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_gather_objects(value: object) -> list[object]:
    """Every process's `value`, in rank order."""
    if world_size() == 1:
        return [value]
    gathered: list[object] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def all_reduce_sums(values: Sequence[float]) -> list[float]:
    """Each of `values` summed over every process."""
    if world_size() == 1:
        return list(values)
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    tensor = torch.tensor(values, dtype=torch.float64, device=on)
    dist.all_reduce(tensor)
    return tensor.tolist()


class ShardSampler(Sampler[int]):
    """This process's share of an evaluation set: items rank, rank + world_size, ... in order,
    none repeated (unlike DistributedSampler, which pads), so gathered results are exact."""

    def __init__(self, num_items: int) -> None:
        self.indices = range(rank(), num_items, world_size())

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


def gather_shards(*parts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Whole arrays from each process's ShardSampler share of them (rows back in item order)."""
    if world_size() == 1:
        return parts
    shards = all_gather_objects(parts)
    wholes = []
    for index in range(len(parts)):
        pieces = [shard[index] for shard in shards]
        largest = max(pieces, key=len)  # an empty share may lack the other dimensions
        whole = np.empty((sum(len(p) for p in pieces), *largest.shape[1:]), dtype=largest.dtype)
        for shard_rank, piece in enumerate(pieces):
            if len(piece):
                whole[shard_rank :: len(pieces)] = piece
        wholes.append(whole)
    return tuple(wholes)


def broadcast_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) into every process's model. Each process
    updates them from its own batches; evaluation and checkpoints use rank 0's."""
    if world_size() > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def wrap_for_processes(model: nn.Module, loader: DataLoader) -> DistributedDataParallel | None:
    """DistributedDataParallel around `model` when `loader` gives this process its share of the
    training data (torchrun with several processes); None otherwise. Call it once the model is
    on its device."""
    if not isinstance(loader.sampler, DistributedSampler):
        return None
    on_gpu = next(model.parameters()).device.type == "cuda"
    devices = [torch.cuda.current_device()] if on_gpu else None
    return DistributedDataParallel(model, device_ids=devices)
