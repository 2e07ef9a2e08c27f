"""Evidence for --balance's default, on the frozen approach: subsample one category (few people),
train the new final layer with each balance mode, and score it on people it never saw, with
every picture of both categories (a balanced test set), so that ignoring the minority class
cannot look good.

    python benchmarks/imbalance.py --data_dir Images --minority_count 30 --seeds 0 1 2 3 4 5 6 7

To be quick on a CPU it computes the frozen backbone's features once (no augmentation) and then
trains only the head with the package's own loop (`fit`): its loss, optimiser, rate, epochs and
best-epoch choice.
Needs data_dir/metadata.csv (file, identity), as the bundled demo faces have.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score, recall_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from emotion_tl.config import Config
from emotion_tl.data.balance import make_balanced_sampler, make_class_weights
from emotion_tl.data.files import decode_image
from emotion_tl.data.metadata import read_metadata
from emotion_tl.data.split import make_split
from emotion_tl.data.transforms import resize_size_for
from emotion_tl.device import resolve_precision
from emotion_tl.model.backbones import get_backbone, load_backbone_weights
from emotion_tl.model.network import build_model
from emotion_tl.training.feature_cache import compute_features
from emotion_tl.training.feature_loaders import FeatureHead
from emotion_tl.training.loop import fit
from emotion_tl.training.selection import BestEpoch

CPU = torch.device("cpu")


def extract_features(files: list[str], cfg: Config) -> torch.Tensor:
    """Frozen backbone features (N, feature_dim) of the evaluation view of each file."""
    pretrained = load_backbone_weights(True, cfg.weights, cfg.backbone)
    model = build_model(2, pretrained.weights, backbone=cfg.backbone)
    size = resize_size_for(cfg.image_size)
    images = [decode_image(Path(cfg.data_dir) / f, size) for f in files]
    transform = get_backbone(cfg.backbone).transform(cfg.image_size, train=False)
    return compute_features(
        model,
        images,
        range(len(images)),
        transform,
        [None] * len(images),
        backbone=get_backbone(cfg.backbone),
        batch_size=cfg.batch_size,
        device=CPU,
        precision=resolve_precision("auto", CPU),
    )


def train_head(features, labels, split, mode: str, cfg: Config, seed: int) -> nn.Module:
    """The frozen approach's head trained by the package's `fit`, best epoch by validation."""
    torch.manual_seed(seed)
    entry = get_backbone(cfg.backbone)
    head = FeatureHead(nn.Linear(entry.feature_dim, 2), entry.head)
    train, val = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    generator = torch.Generator().manual_seed(seed)
    sampler = make_balanced_sampler(labels[train], generator) if mode == "sampler" else None

    def loader(rows: np.ndarray, train_loader: bool) -> DataLoader:
        dataset = TensorDataset(features[rows], torch.as_tensor(labels[rows]))
        return DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            generator=generator,
            shuffle=train_loader and sampler is None,
            sampler=sampler if train_loader else None,
        )

    best = BestEpoch()
    fit(
        head,
        loader(train, True),
        loader(val, False),
        approach="frozen",
        backbone=cfg.backbone,
        epochs=cfg.epochs,
        backbone_lr=0.0,
        head_lr=cfg.learning_rate,
        device=CPU,
        precision="fp32",
        class_weights=make_class_weights(labels[train], 2) if mode == "weights" else None,
        on_epoch_end=best.update,
    )
    head.load_state_dict(best.state_dict)
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="Images")
    parser.add_argument("--categories", nargs=2, default=["confused", "neutral"])
    parser.add_argument("--minority_count", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    args = parser.parse_args()
    cfg = Config(data_dir=args.data_dir, categories=tuple(args.categories))
    meta = read_metadata(args.data_dir)
    meta = meta[meta["category"].isin(args.categories)].reset_index(drop=True)
    meta["label"] = meta["category"]
    labels_all = meta["label"].map({c: i for i, c in enumerate(args.categories)}).to_numpy()
    features = extract_features(list(meta["file"]), cfg)
    rows = []
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        minority = meta.loc[labels_all == 1, "identity"].unique()
        kept_people = set(rng.choice(minority, args.minority_count, replace=False))
        keep = np.flatnonzero((labels_all == 0) | meta["identity"].isin(kept_people).to_numpy())
        files = list(meta["file"][keep])
        run_cfg = dataclasses.replace(cfg, seed=seed)
        identities = dict(zip(meta["file"], meta["identity"], strict=True))
        split = np.asarray(make_split(files, list(meta["label"][keep]), identities, run_cfg))
        test_people = set(meta["identity"][keep][split == "test"])
        test = np.flatnonzero(meta["identity"].isin(test_people).to_numpy())  # both categories
        for mode in ("none", "weights", "sampler"):
            head = train_head(features[keep], labels_all[keep], split, mode, run_cfg, seed)
            with torch.no_grad():
                predicted = head(features[test]).argmax(1).numpy()
            rows.append(
                {
                    "seed": seed,
                    "balance": mode,
                    "balanced_acc": balanced_accuracy_score(labels_all[test], predicted),
                    "minority_recall": recall_score(labels_all[test], predicted, pos_label=1),
                    "majority_recall": recall_score(labels_all[test], predicted, pos_label=0),
                }
            )
    table = pd.DataFrame(rows)
    print(
        f"{args.categories[0]}: all, {args.categories[1]}: {args.minority_count} people; "
        f"test: every picture of {len(test_people)} unseen people per seed"
    )
    print(
        table.groupby("balance")[["balanced_acc", "minority_recall", "majority_recall"]]
        .agg(["mean", "std"])
        .round(3)
        .to_string()
    )


if __name__ == "__main__":
    main()
