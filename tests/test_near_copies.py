"""Near-identical copies (resized, re-encoded) are found in linear time and split together."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image

from emotion_tl.data.describe import make_data_report
from emotion_tl.data.near_copies import near_identical_pairs
from emotion_tl.data.prepare import prepare_data


def test_pairs_match_comparing_every_pair():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 300, dtype=np.uint64) * np.uint64(2)
    # Plant copies 0, 1 and 2 bits away, in any of the 64 bits.
    for source, target, bits in [(0, 10, 0), (1, 11, 1), (2, 12, 2), (3, 13, 3), (4, 14, 2)]:
        flips = rng.choice(64, bits, replace=False)
        hashes[target] = hashes[source] ^ np.uint64(sum(1 << int(b) for b in flips))
    values = [int(h) for h in hashes]
    expected = [
        (i, j)
        for i in range(len(values))
        for j in range(i + 1, len(values))
        if (values[i] ^ values[j]).bit_count() <= 2
    ]
    assert near_identical_pairs(hashes) == expected
    assert {(0, 10), (1, 11), (2, 12), (4, 14)} <= set(expected) and (3, 13) not in expected


def test_a_resized_copy_always_lands_in_its_original_split(tiny_config, image_dir):
    original = Image.open(image_dir / "circle" / "circle_003.png").convert("RGB")
    buffer = io.BytesIO()
    original.resize((40, 40)).save(buffer, "JPEG", quality=60)
    (image_dir / "circle" / "copy.jpg").write_bytes(buffer.getvalue())
    for seed in range(6):
        data = prepare_data(dataclasses.replace(tiny_config, seed=seed))
        assert data.duplicates.near == [["circle/circle_003.png", "circle/copy.jpg"]]
        split = dict(zip(data.table["file"], data.table["split"], strict=True))
        assert split["circle/copy.jpg"] == split["circle/circle_003.png"]
    assert "1 sets of near-identical images" in make_data_report(data, "auto")
