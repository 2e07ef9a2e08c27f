"""Evidence for --balance's default, on the frozen approach: subsample one category (few people),
train the new final layer with each balance mode, and score it on people it never saw, with
every picture of both categories (a balanced test set), so that ignoring the minority class
cannot look good.

    python benchmarks/imbalance.py --data_dir Images --minority_count 30 --seeds 0 1 2 3 4 5 6 7

To be quick on a CPU it computes the frozen backbone's features once (no augmentation) and then
trains only the head, with the package's loss, optimiser, rate, epochs and best-epoch choice.
Needs data_dir/metadata.csv (file, identity), as the bundled demo faces have.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score, recall_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from emotion_tl.balance import make_balanced_sampler, make_class_weights
from emotion_tl.config import Config
from emotion_tl.data import build_transforms, make_split, resize_size_for
from emotion_tl.files import decode_image
from emotion_tl.model import FEATURE_DIM, build_model
from emotion_tl.weights import load_pretrained_weights


@torch.no_grad()
def compute_features(files: list[str], cfg: Config) -> torch.Tensor:
    """Frozen ImageNet ResNet50 features (N, 2048) of the evaluation view of each file."""
    weights = load_pretrained_weights(cfg.weights)
    model = build_model(2, weights).eval()
    model.fc = nn.Identity()
    transform = build_transforms(cfg.image_size, train=False)
    images = [
        transform(decode_image(f"{cfg.data_dir}/{f}", resize_size_for(cfg.image_size)))
        for f in files
    ]
    batches = [torch.stack(images[i : i + 32]) for i in range(0, len(images), 32)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return torch.cat([model(batch).float() for batch in batches])


def train_head(features, labels, split, mode: str, cfg: Config, seed: int) -> nn.Linear:
    """The frozen approach's training of `fc`, best epoch by validation accuracy."""
    torch.manual_seed(seed)
    head = nn.Linear(FEATURE_DIM, 2)
    train = np.flatnonzero(split == "train")
    val = np.flatnonzero(split == "val")
    generator = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(features[train], torch.as_tensor(labels[train]))
    sampler = make_balanced_sampler(labels[train], generator) if mode == "sampler" else None
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=sampler is None,
                        sampler=sampler, generator=generator)  # fmt: skip
    weight = make_class_weights(labels[train], 2) if mode == "weights" else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.learning_rate)
    best, best_acc = None, -1.0
    for _ in range(cfg.epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(head(x), y).backward()
            optimizer.step()
        with torch.no_grad():
            acc = (head(features[val]).argmax(1).numpy() == labels[val]).mean()
        if acc > best_acc:
            best, best_acc = {k: v.clone() for k, v in head.state_dict().items()}, acc
    head.load_state_dict(best)
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="Images")
    parser.add_argument("--categories", nargs=2, default=["confused", "neutral"])
    parser.add_argument("--minority_count", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    args = parser.parse_args()
    cfg = Config(data_dir=args.data_dir, categories=tuple(args.categories))
    meta = pd.read_csv(f"{args.data_dir}/metadata.csv", dtype=str)
    meta = meta[meta["file"].str.split("/").str[0].isin(args.categories)].reset_index(drop=True)
    meta["label"] = meta["file"].str.split("/").str[0]
    labels_all = meta["label"].map({c: i for i, c in enumerate(args.categories)}).to_numpy()
    features = compute_features(list(meta["file"]), cfg)
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
            rows.append({
                "seed": seed, "balance": mode,
                "balanced_acc": balanced_accuracy_score(labels_all[test], predicted),
                "minority_recall": recall_score(labels_all[test], predicted, pos_label=1),
                "majority_recall": recall_score(labels_all[test], predicted, pos_label=0),
            })  # fmt: skip
    table = pd.DataFrame(rows)
    print(f"{args.categories[0]}: all, {args.categories[1]}: {args.minority_count} people; "
          f"test: every picture of {len(test_people)} unseen people per seed")  # fmt: skip
    print(table.groupby("balance")[["balanced_acc", "minority_recall", "majority_recall"]]
          .agg(["mean", "std"]).round(3).to_string())  # fmt: skip


if __name__ == "__main__":
    main()
