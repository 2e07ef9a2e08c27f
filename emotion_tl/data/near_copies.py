"""Near-identical copies: the same picture resized or re-encoded, found by perceptual hash.

Such copies differ by at most a couple of bits of imagehash's 64-bit pHash (measured: a copy at
two thirds of the size, saved as JPEG at quality 50, by 2 bits at most). Two hashes that far
apart agree exactly on at least one of three 21-22-bit pieces, so comparing only hashes that
share a piece finds every such pair without comparing all pairs (a number that grows with the
square of the images).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations

import imagehash
import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

SPLIT_HASH_DISTANCE = 2  # bits: near-identical copies, kept in one split like exact copies
# A pair close in hash must also look the same at 16x16 in grey (mean difference in levels of
# 255): simple drawings with different shapes can share a hash, their thumbnails differ.
MAX_THUMBNAIL_DIFFERENCE = 6.0
PIECES = ((0, 22), (22, 43), (43, 64))  # bit ranges; with 3 pieces, distance <= 2 shares one


def perceptual_hash(image: torch.Tensor) -> int:
    """pHash of one uint8 (3, H, W) image as a 64-bit integer."""
    return int(str(imagehash.phash(TF.to_pil_image(image))), 16)


def perceptual_hashes(images: Sequence[torch.Tensor]) -> np.ndarray:
    """pHash of each uint8 (3, H, W) image as one uint64."""
    return np.array([perceptual_hash(image) for image in images], dtype=np.uint64)


def near_identical_pairs(
    hashes: np.ndarray, max_distance: int = SPLIT_HASH_DISTANCE
) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose hashes differ in at most `max_distance` (at most 2) bits."""
    if max_distance > len(PIECES) - 1:
        raise ValueError(f"max_distance {max_distance}: the pieces only guarantee up to 2 bits")
    values = [int(h) for h in hashes]
    pairs = set()
    for start, stop in PIECES:
        buckets: dict[int, list[int]] = defaultdict(list)
        for index, value in enumerate(values):
            buckets[(value >> start) & ((1 << (stop - start)) - 1)].append(index)
        for members in buckets.values():
            for i, j in combinations(members, 2):
                if (values[i] ^ values[j]).bit_count() <= max_distance:
                    pairs.add((i, j))
    return sorted(pairs)


def thumbnail(image: torch.Tensor) -> torch.Tensor:
    grey = image.float().mean(0, keepdim=True)
    return TF.resize(grey, [16, 16], antialias=True)


def look_alike(first: torch.Tensor, second: torch.Tensor) -> bool:
    """Whether two uint8 (3, H, W) images are the same picture at 16x16 in grey."""
    difference = (thumbnail(first) - thumbnail(second)).abs().mean()
    return float(difference) <= MAX_THUMBNAIL_DIFFERENCE


def group_near_copies(
    files: list[str],
    labels: list[str],
    images: Sequence[torch.Tensor],
    hashes: np.ndarray,
    exact: list[list[str]],
) -> list[list[str]]:
    """Sets of near-identical images (by `hashes`, their perceptual hashes) within one category,
    byte-identical sets left out (they are reported as such)."""
    same_bytes = {name: index for index, names in enumerate(exact) for name in names}
    parent = list(range(len(files)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in near_identical_pairs(hashes):
        identical = same_bytes.get(files[i], -1) == same_bytes.get(files[j], -2)
        if labels[i] == labels[j] and not identical and look_alike(images[i], images[j]):
            parent[max(find(i), find(j))] = min(find(i), find(j))
    groups: dict[int, list[str]] = defaultdict(list)
    for index, name in enumerate(files):
        groups[find(index)].append(name)
    return sorted(sorted(names) for names in groups.values() if len(names) > 1)
