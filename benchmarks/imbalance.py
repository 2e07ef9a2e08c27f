"""Evidence for --balance's default: train the frozen approach on an imbalanced subsample with
each balance mode, and score it on people it never saw, with every picture of both categories
(a balanced test set), so that ignoring the minority class cannot look good.

    python benchmarks/imbalance.py --data_dir Images --minority_count 30 --epochs 10 --seeds 0 1 2

Needs data_dir/metadata.csv (file, identity), as the bundled demo faces have.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, recall_score
from torch.utils.data import DataLoader

from emotion_tl.checkpoint import load_checkpoint, model_from_checkpoint
from emotion_tl.config import Config
from emotion_tl.data import ImageDataset, build_transforms, resize_size_for
from emotion_tl.files import decode_image
from emotion_tl.run import run_experiment
from emotion_tl.train import predict_probabilities


def make_subsample(data_dir: Path, categories: list[str], count: int, seed: int, out: Path):
    """Link every image of categories[0] and `count` people's images of categories[1]."""
    meta = pd.read_csv(data_dir / "metadata.csv", dtype=str)
    meta = meta[meta["file"].str.split("/").str[0].isin(categories)]
    minority = meta[meta["file"].str.startswith(categories[1] + "/")]
    keep = np.random.default_rng(seed).choice(minority["identity"].unique(), count, replace=False)
    chosen = meta[meta["file"].str.startswith(categories[0] + "/") | meta["identity"].isin(keep)]
    for name in chosen["file"]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink((data_dir / name).resolve(), out / name)
    chosen[["file", "identity"]].to_csv(out / "metadata.csv", index=False)
    return meta


def score_on_unseen_people(cfg: Config, meta: pd.DataFrame, data_dir: Path) -> dict[str, float]:
    """Balanced accuracy and minority recall of the best model on every picture of the
    test split's people, both categories."""
    split = pd.read_csv(Path(cfg.checkpoint_dir) / "split.csv")
    identity = dict(zip(meta["file"], meta["identity"], strict=True))
    people = {identity[f] for f in split.loc[split["split"] == "test", "file"]}
    test = meta[meta["identity"].isin(people)]
    labels = [cfg.categories.index(f.split("/")[0]) for f in test["file"]]
    images = [decode_image(data_dir / f, resize_size_for(cfg.image_size)) for f in test["file"]]
    loader = DataLoader(ImageDataset(images, labels, build_transforms(cfg.image_size, train=False)))
    model = model_from_checkpoint(
        load_checkpoint(Path(cfg.checkpoint_dir) / "frozen_weights_best.pt")
    )
    probabilities, targets = predict_probabilities(model, loader, "cpu")
    predicted = probabilities.argmax(1)
    return {
        "balanced_acc": balanced_accuracy_score(targets, predicted),
        "minority_recall": recall_score(targets, predicted, pos_label=1),
        "test_images": len(targets),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=Path("Images"))
    parser.add_argument("--categories", nargs=2, default=["confused", "neutral"])
    parser.add_argument("--minority_count", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--modes", nargs="+", default=["none", "weights", "sampler"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        for seed in args.seeds:
            sub = Path(temp) / f"data{seed}"
            meta = make_subsample(args.data_dir, args.categories, args.minority_count, seed, sub)
            for mode in args.modes:
                cfg = Config(
                    data_dir=str(sub),
                    categories=tuple(args.categories),
                    approach="frozen",
                    epochs=args.epochs,
                    image_size=args.image_size,
                    device="cpu",
                    seed=seed,
                    checkpoint_dir=str(Path(temp) / f"out{seed}{mode}"),
                    balance=mode,
                )
                result = run_experiment(cfg)[0]
                scores = score_on_unseen_people(cfg, meta, args.data_dir)
                rows.append(
                    {"seed": seed, "balance": mode, "split_test_acc": result.test_acc} | scores
                )
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(
        table.groupby("balance")[["balanced_acc", "minority_recall", "split_test_acc"]]
        .agg(["mean", "std"])
        .round(3)
    )


if __name__ == "__main__":
    main()
