"""Which model to transfer from, measured: each source's frozen and fine-tuned test accuracy over
several seeds (each seed its own split), its seconds per epoch, and the zero-shot baseline where
the source can answer for the categories itself.

    python benchmarks/sources.py --sets lfw bundled scenes --seeds 0 1 2 3 4 --epochs 20
    python benchmarks/sources.py --sets lfw --sources face --previous earlier.json

The sets:
- lfw: real faces, the 100 LFW faces (25x25 grey) that ship with scikit-image, labelled by eye
  as smiling (happy) or not (neutral) in benchmarks/data/lfw_smiles.csv; 30 ambiguous faces are
  left out, 70 remain;
- bundled: the synthetic faces in Images/ (confused vs neutral);
- scenes: the same kind of synthetic people pasted small into 640x480 photos
  (`demo-faces --scene 640x480`), found and cropped by the face crop.
Prints one table and writes it to --output (JSON) with every run's numbers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from emotion_tl.config import OUTPUT_PREFIX, Config
from emotion_tl.demo_faces import generate_dataset
from emotion_tl.evaluation.comparison import ZERO_SHOT_FILE
from emotion_tl.evaluation.repeats import corrected_interval
from emotion_tl.model.backbones import get_backbone
from emotion_tl.training.run import run_experiment

LFW_LABELS = Path(__file__).parent / "data" / "lfw_smiles.csv"
SETS = {  # name -> (categories, face crop)
    "lfw": (("happy", "neutral"), "off"),  # already tight face crops
    "bundled": (("confused", "neutral"), "auto"),
    "scenes": (("confused", "neutral"), "auto"),
}


def make_lfw(out_dir: Path) -> Path:
    """The labelled LFW faces as out_dir/<happy|neutral>/lfw_<index>.png."""
    from skimage.data import lfw_subset

    faces = lfw_subset()  # (200, 25, 25) in [0, 1]: 100 faces, then 100 non-faces
    for row in pd.read_csv(LFW_LABELS).itertuples():
        folder = out_dir / row.label
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (faces[row.index] * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"lfw_{row.index:03d}.png")
    return out_dir


def make_set(name: str, root: Path, identities: int) -> Path:
    """The folder of set `name`, made under `root` where it is not bundled."""
    if name == "bundled":
        return Path("Images")
    if name == "lfw":
        return make_lfw(root / "lfw")
    out = root / "scenes"
    generate_dataset(out, identities, 7, SETS[name][0], scene=(640, 480), workers=2)
    return out


def run_on_sets(
    sets: list[str], seeds: list[int], identities: int, kinds: list[str], run: Callable
) -> list[dict]:
    """`run(data_dir, set name, kind, seed, out folder)` for every set, seed and kind (a source,
    a variant), each row printed as it ends; the sets are made in a temporary folder."""
    runs = []
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        for name in sets:
            data_dir = make_set(name, root, identities)
            for seed in seeds:
                for kind in kinds:
                    out = root / "runs" / name / kind / str(seed)
                    runs.append(run(data_dir, name, kind, seed, out))
                    print(json.dumps(runs[-1]), flush=True)
    return runs


def run_one(data_dir: Path, name: str, source: str, seed: int, args, out: Path) -> dict:
    """Train both approaches from `source` on one split; their test accuracies and speeds."""
    categories, face_crop = SETS[name]
    cfg = Config(
        data_dir=str(data_dir),
        categories=categories,
        backbone=source,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        seed=seed,
        face_crop=face_crop,
        checkpoint_dir=str(out),
    )
    start = time.perf_counter()
    results = run_experiment(cfg)
    entry = get_backbone(source).name  # an alias's entry, as the checkpoints record it
    row = {"set": name, "source": entry, "seed": seed, "seconds": time.perf_counter() - start}
    for result in results:
        prefix = OUTPUT_PREFIX[result.approach]
        row[f"{prefix}_acc"] = result.test_acc
        row[f"{prefix}_s_per_epoch"] = result.seconds_per_epoch
        row[f"{prefix}_trainable"] = result.trainable_params
    split = pd.read_csv(out / "split.csv")["split"].value_counts()
    row["test_fraction"] = split["test"] / split["train"]
    if (out / ZERO_SHOT_FILE).is_file():
        table = pd.read_csv(out / ZERO_SHOT_FILE)
        row["zero_shot_acc"] = float((table["label"] == table["predicted"]).mean())
    return row


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per set, source and model: mean test accuracy with its corrected 95% interval over the
    seeds, and the median seconds per epoch."""
    rows = []
    for (name, source), group in runs.groupby(["set", "source"], sort=False):
        ratio = float(group["test_fraction"].mean())
        for model in ("frozen_weights", "finetuning", "zero_shot"):
            if f"{model}_acc" not in group or group[f"{model}_acc"].isna().all():
                continue
            interval = corrected_interval(group[f"{model}_acc"].to_numpy(), ratio)
            low, high = max(interval.low, 0.0), min(interval.high, 1.0)  # accuracies lie in [0, 1]
            speed = group.get(f"{model}_s_per_epoch")
            rows.append(
                {
                    "set": name,
                    "source": source,
                    "model": model,
                    "seeds": len(group),
                    "accuracy": round(interval.mean, 3),
                    "interval": f"{low:.3f}..{high:.3f}",
                    "s_per_epoch": None if speed is None else round(float(speed.median()), 3),
                    "trainable": group.get(f"{model}_trainable", pd.Series([0])).iloc[0],
                }
            )
    return pd.DataFrame(rows)


def compare_sources(runs: pd.DataFrame) -> pd.DataFrame:
    """Per set and approach: each source's accuracy minus the first source's, split by split
    (the same seed is the same split), with its corrected 95% interval and p-value."""
    rows = []
    for name, group in runs.groupby("set", sort=False):
        sources = list(dict.fromkeys(group["source"]))
        wide = group.set_index(["seed", "source"])
        ratio = float(group["test_fraction"].mean())
        for model in ("frozen_weights", "finetuning"):
            first = wide[f"{model}_acc"].xs(sources[0], level="source")
            for other in sources[1:]:
                difference = wide[f"{model}_acc"].xs(other, level="source") - first
                interval = corrected_interval(difference.dropna().to_numpy(), ratio)
                rows.append(
                    {
                        "set": name,
                        "model": model,
                        "difference": f"{other} - {sources[0]}",
                        "mean": round(interval.mean, 3),
                        "interval": f"{interval.low:+.3f}..{interval.high:+.3f}",
                        "p_value": round(interval.p_value, 4),
                    }
                )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=["lfw", "bundled"])
    parser.add_argument("--sources", nargs="+", default=["resnet50", "face", "fer_mini_xception"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning_rate", type=float, default=Config.learning_rate)
    parser.add_argument("--identities", type=int, default=100, help="people in the scenes set")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/sources.json"))
    parser.add_argument(
        "--previous", type=Path, nargs="*", default=[], help="earlier outputs to summarise too"
    )
    args = parser.parse_args()
    runs = run_on_sets(
        args.sets,
        args.seeds,
        args.identities,
        args.sources,
        lambda data_dir, name, source, seed, out: run_one(data_dir, name, source, seed, args, out),
    )
    for previous in args.previous:  # the same sets and seeds from another source, say
        runs = json.loads(previous.read_text())["runs"] + runs
    runs = pd.DataFrame(runs)
    summary, differences = summarize(runs), compare_sources(runs)
    print(summary.to_string(index=False))
    if not differences.empty:  # one source: nothing to pair it with
        print(differences.to_string(index=False))
    args.output.write_text(
        json.dumps(
            {
                "args": vars(args) | {"output": str(args.output), "previous": args.previous},
                "summary": summary.to_dict("records"),
                "differences": differences.to_dict("records"),
                "runs": runs.to_dict("records"),
            },
            indent=1,
            default=lambda value: str(value) if isinstance(value, Path) else float(value),
        )
    )


if __name__ == "__main__":
    main()
