"""How separable are two classes of a generated face set? Frozen ResNet50 features + logistic
regression, cross-validated with each identity kept to one side of every split.

Used to pick the generator's default difficulty: confused vs neutral should be well above
chance but not perfect. Example:

    python -m emotion_tl demo-faces --out /tmp/cal --identities 150 --seed 7 \
        --expressions confused neutral happy sad
    python benchmarks/calibrate_demo_faces.py /tmp/cal --pairs confused,neutral happy,sad

`--features hog` uses scikit-image HOG features instead, when ImageNet weights are missing.

Results that set the default difficulty (0.15), on 2 CPU cores in a few minutes:
  difficulty 0.0,  120 identities: confused/neutral 0.85, happy/sad 0.92
  difficulty 0.25, 120 identities: confused/neutral 0.78, happy/sad 0.90
  committed Images/ (0.15, 150 identities): confused/neutral 0.877 +- 0.027,
                                            happy/sad 0.927 +- 0.023
  same, --features hog:                     confused/neutral 0.810 +- 0.027,
                                            happy/sad 0.873 +- 0.043
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emotion_tl.data.metadata import read_metadata
from emotion_tl.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def load_pictures(image_dir: Path, files: list[str], size: int = 224) -> np.ndarray:
    """Pictures as an (N, size, size, 3) uint8 array."""
    return np.stack(
        [np.asarray(Image.open(image_dir / f).convert("RGB").resize((size, size))) for f in files]
    )


@torch.no_grad()
def extract_resnet_features(pictures: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Pooled 2048-d features of the ImageNet ResNet50 (frozen, eval mode)."""
    from emotion_tl.model.network import build_model
    from emotion_tl.model.weights import load_pretrained_weights

    model = build_model(num_classes=2, weights=load_pretrained_weights())
    model.fc = torch.nn.Identity()
    model.eval()
    features = []
    for start in range(0, len(pictures), batch_size):
        batch = torch.from_numpy(pictures[start : start + batch_size]).permute(0, 3, 1, 2)
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
        batch = (batch.float() / 255 - mean) / std
        features.append(model(batch).numpy())
    return np.concatenate(features)


def extract_hog_features(pictures: np.ndarray) -> np.ndarray:
    """HOG descriptors of the grey pictures at 112 px: a weak, weights-free proxy."""
    from skimage.feature import hog
    from skimage.transform import resize

    return np.stack(
        [hog(resize(p.mean(axis=2) / 255, (112, 112)), pixels_per_cell=(8, 8)) for p in pictures]
    )


def evaluate_pair(
    table: pd.DataFrame, features: np.ndarray, pair: tuple[str, str], folds: int = 5
) -> tuple[float, float]:
    """Mean and standard deviation of test accuracy over identity-grouped folds."""
    chosen = table["expression"].isin(pair).to_numpy()
    labels = (table["expression"][chosen] == pair[0]).to_numpy().astype(int)
    groups = table["identity"][chosen].to_numpy()
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0)
    scores = cross_val_score(classifier, features[chosen], labels, groups=groups, cv=splitter)
    return float(scores.mean()), float(scores.std())


def main() -> None:
    """Print cross-validated accuracy for each requested pair of expressions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image_dir", type=Path, help="a generated folder with metadata.csv")
    parser.add_argument("--pairs", nargs="+", default=["confused,neutral", "happy,sad"])
    parser.add_argument("--features", choices=["resnet", "hog"], default="resnet")
    args = parser.parse_args()
    pairs = [tuple(p.split(",")) for p in args.pairs]
    wanted = {name for pair in pairs for name in pair}
    table = read_metadata(args.image_dir)
    table["identity"] = table["identity"].astype(int)  # the generator numbers people 0, 1, ...
    table = table[table["expression"].isin(wanted)].reset_index(drop=True)
    pictures = load_pictures(args.image_dir, table["file"].tolist())
    if args.features == "resnet":
        torch.set_num_threads(max(1, torch.get_num_threads()))
        features = extract_resnet_features(pictures)
    else:
        features = extract_hog_features(pictures)
    difficulty = table["difficulty"].iloc[0] if "difficulty" in table else "?"
    for pair in pairs:
        mean, std = evaluate_pair(table, features, pair)
        count = int(table["expression"].isin(pair).sum())
        print(
            f"{args.features} difficulty={difficulty} {pair[0]} vs {pair[1]}: "
            f"accuracy {mean:.3f} +- {std:.3f} ({count} pictures, 5 identity-grouped folds)"
        )


if __name__ == "__main__":
    main()
