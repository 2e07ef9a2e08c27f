"""Near-copies: the same picture resized, re-encoded or cropped a little.

Candidates come from perceptual hashes (imagehash's pHash, 64 bits): cheap, but on faces alike in
pose and background, different pictures can be close too. So a pair counts only if the frozen
ResNet50 also sees the two as nearly the same picture (cosine similarity of features): a little
alike in features when the hashes are almost equal (a resized or re-encoded copy changes the hash
by a few bits but the features more), very alike when they differ more (a slightly cropped copy
changes the hash by up to 24 bits). docs/audit.md has the measurements behind the thresholds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# (largest hash distance in bits of 64, smallest feature cosine): a pair meeting either is a copy.
RULES = ((8, 0.86), (24, 0.93))


def hash_distances(hashes: np.ndarray) -> np.ndarray:
    """(N, N) Hamming distances between 64-bit hashes."""
    xor = hashes[:, None] ^ hashes[None, :]
    return np.unpackbits(xor.view(np.uint8).reshape(*xor.shape, 8), axis=-1).sum(-1)


def find_near_duplicates(hashes: np.ndarray, features: np.ndarray, rules=RULES) -> pd.DataFrame:
    """Pairs (first, second: row numbers) close in hash and in features, closest first."""
    distances = hash_distances(hashes)
    widest = max(distance for distance, _ in rules)
    first, second = np.nonzero(np.triu(distances <= widest, k=1))
    unit = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    cosine = (unit[first] * unit[second]).sum(1)
    apart = distances[first, second]
    keep = np.zeros(len(first), dtype=bool)
    for distance, similarity in rules:
        keep |= (apart <= distance) & (cosine >= similarity)
    pairs = pd.DataFrame(
        {
            "first": first[keep],
            "second": second[keep],
            "hash_distance": distances[first[keep], second[keep]],
            "cosine": cosine[keep].round(4),
        }
    )
    return pairs.sort_values(["cosine"], ascending=False, ignore_index=True)
