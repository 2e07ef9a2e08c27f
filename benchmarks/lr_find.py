"""The quick learning-rate finder against the full one: where each puts its suggestion, and how
long each takes, on the same training images.

    python benchmarks/lr_find.py --sets bundled lfw --seeds 0 1 2
    python benchmarks/lr_find.py --sets bundled --seeds 0 --set precision=fp32

For each set and seed (each seed its own split and augmentations), fine-tuning's range test runs
twice from the same starting weights: the full finder (FULL_STEPS steps at the run's own side)
and the quick one (`lr-find --quick`: QUICK_STEPS steps on pictures of QUICK_SIDE_SHARE of the
side). Prints each pair, the ratio of the suggestions and their distance in decades, and writes
every run's numbers to --output (JSON).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd
from recipe import make_parser, parse_settings
from sources import SETS, run_on_sets

from emotion_tl.config import Config
from emotion_tl.training import lr_find
from emotion_tl.training.context import make_run_context

KINDS = {"full": lr_find.FULL_STEPS, "quick": lr_find.QUICK_STEPS}


def run_one(data_dir: Path, name: str, kind: str, seed: int, fixed: dict, out: Path) -> dict:
    """One finder (`kind`) on one split: its suggestion, steps and seconds."""
    categories, face_crop = SETS[name]
    values = {"data_dir": str(data_dir), "categories": categories, "face_crop": face_crop}
    cfg = Config(**values | fixed | {"seed": seed, "checkpoint_dir": str(out)})
    run = make_run_context(cfg)  # the data's preparation is not the finder's time
    if kind == "quick":
        run = lr_find.quick_finder_run(run, "finetuning")
    start = time.perf_counter()
    finding = lr_find.find_learning_rate(run, "finetuning", steps=KINDS[kind])
    return {
        "set": name,
        "seed": seed,
        "kind": kind,
        "side": run.cfg.image_size,
        "steps": len(finding.rates),
        "seconds": time.perf_counter() - start,
        "suggestion": finding.suggestion,
    }


def main() -> None:
    args = make_parser(__doc__, ["bundled", "lfw"], "benchmarks/lr_find.json").parse_args()
    fixed = parse_settings(args.settings)
    runs = run_on_sets(
        args.sets,
        args.seeds,
        args.identities,
        list(KINDS),
        lambda data_dir, name, kind, seed, out: run_one(data_dir, name, kind, seed, fixed, out),
    )
    table = pd.DataFrame(runs).pivot(index=["set", "seed"], columns="kind")
    rows = []
    for (name, seed), row in table.iterrows():
        full, quick = row[("suggestion", "full")], row[("suggestion", "quick")]
        both = full is not None and quick is not None and not (pd.isna(full) or pd.isna(quick))
        rows.append(
            {
                "set": name,
                "seed": seed,
                "full": f"{full:.2g}" if both else full,
                "quick": f"{quick:.2g}" if both else quick,
                "quick / full": round(quick / full, 2) if both else None,
                "decades apart": round(abs(math.log10(quick / full)), 2) if both else None,
                "full s": round(row[("seconds", "full")], 1),
                "quick s": round(row[("seconds", "quick")], 1),
                "quick side": int(row[("side", "quick")]),
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    record = {"args": vars(args) | {"output": str(args.output)}, "runs": runs, "pairs": rows}
    args.output.write_text(json.dumps(record, indent=1, default=float))


if __name__ == "__main__":
    main()
