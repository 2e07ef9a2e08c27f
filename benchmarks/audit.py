"""How well the audit finds wrong labels, and how long it takes: flip a share of one category's
labels in a copy of the data (move the files into another category's folder), audit the copy,
and count the flipped images among the top 2x(number flipped) label suspects.

    python benchmarks/audit.py --data_dir Images --flip confused:neutral --share 0.1
    python benchmarks/audit.py --categories confused neutral
    python benchmarks/audit.py --face_crop on --seed 1
    python benchmarks/audit.py --data_dir lfw --flip happy:neutral --share 0.2 --backbone face

`--data_dir lfw` audits the real faces of benchmarks/sources.py (scikit-image's LFW faces,
labelled smiling or not); `--backbone` chooses the source whose features the label check reads.

Each audit runs twice: the first computes the frozen features, the second reads them from the cache.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from sources import make_lfw  # benchmarks/sources.py, beside this file

from emotion_tl.audit.run import audit_data
from emotion_tl.config import Config
from emotion_tl.data.files import list_categories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default="Images")
    parser.add_argument("--flip", default="confused:neutral", help="FROM:TO categories")
    parser.add_argument("--share", type=float, default=0.1, help="share of FROM's images flipped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--categories", nargs="+", default=None, help="categories to audit (default: all)"
    )
    parser.add_argument("--face_crop", default="auto", help="as the audit command's --face_crop")
    parser.add_argument("--backbone", default=Config.backbone, help="the source model")
    args = parser.parse_args()
    source, target = args.flip.split(":")
    with tempfile.TemporaryDirectory() as temp:
        data_dir = Path(temp) / "data"
        if args.data_dir == "lfw":
            make_lfw(data_dir)
        else:
            shutil.copytree(args.data_dir, data_dir)
        files = sorted((data_dir / source).glob("*"))
        rng = np.random.default_rng(args.seed)
        chosen = rng.choice(len(files), round(args.share * len(files)), replace=False)
        flipped = set()
        for index in chosen:
            moved = data_dir / target / f"flipped_{files[index].name}"
            files[index].rename(moved)
            flipped.add(moved.relative_to(data_dir).as_posix())
        cfg = Config(
            data_dir=str(data_dir),
            categories=tuple(args.categories or list_categories(data_dir)),
            checkpoint_dir=str(Path(temp) / "out"),
            face_crop=args.face_crop,
            backbone=args.backbone,
        )
        for attempt in ("first (features computed)", "second (features cached)"):
            start = time.perf_counter()
            data, audit = audit_data(cfg)
            total = time.perf_counter() - start
            print(f"{attempt}: {len(data.table)} images, audit {audit.seconds:.1f} s, "
                  f"with reading and cropping the images {total:.1f} s")  # fmt: skip
        labels = audit.table[audit.table["problem"] == "label"]
        top = list(labels["file"])[: 2 * len(flipped)]
        found = len(flipped & set(top))
        flagged = len(flipped & set(labels["file"]))
        print(f"flipped {len(flipped)} of {source} to {target}; cleanlab flags {len(labels)}; "
              f"{found} of the flipped are in the top {2 * len(flipped)} "
              f"({found / len(flipped):.0%}); flagged at all: {flagged}")  # fmt: skip


if __name__ == "__main__":
    main()
