"""The frozen approach's head against a tuned logistic regression on the very same cached features.

    python benchmarks/head_vs_logistic.py --sets lfw bundled scenes --seeds 0 1 2
    python benchmarks/head_vs_logistic.py --sets lfw --set backbone=face

For each set and seed (each seed its own split), the project trains the frozen approach as a run
does; scikit-learn then fits a logistic regression on the same training features (standardised;
the inverse regularisation C chosen by 5-fold cross-validation on the training split alone) and
both are scored on the same test images. Prints each pair, the mean difference over the splits
with its corrected 95% interval, and writes every run's numbers to --output (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from recipe import make_parser, parse_settings
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sources import SETS, run_on_sets

from emotion_tl.config import Config
from emotion_tl.evaluation.repeats import corrected_interval
from emotion_tl.model.network import build_model
from emotion_tl.training.context import make_run_context
from emotion_tl.training.feature_cache import load_features
from emotion_tl.training.run import run_experiment


def logistic_accuracy(cfg: Config) -> tuple[float, float]:
    """The tuned logistic regression's test accuracy on the run's cached features (read back
    from the cache the frozen approach filled), and the C it chose."""
    run = make_run_context(cfg)
    model = build_model(len(run.data.class_names), run.pretrained.weights, backbone=cfg.backbone)
    features = load_features(model, run)
    labels = np.asarray(run.data.labels())
    x_train, x_test = features["train"][0].float().numpy(), features["test"][0].float().numpy()
    y_train, y_test = labels[run.data.indices("train")], labels[run.data.indices("test")]
    folds = StratifiedKFold(min(5, int(np.bincount(y_train).min())), shuffle=True, random_state=0)
    search = LogisticRegressionCV(Cs=np.logspace(-4, 4, 17), cv=folds, max_iter=5000)
    pipeline = make_pipeline(StandardScaler(), search).fit(x_train, y_train)
    return float(pipeline.score(x_test, y_test)), float(search.C_[0])


def run_one(data_dir: Path, name: str, seed: int, fixed: dict, out: Path) -> dict:
    categories, face_crop = SETS[name]
    values = {"data_dir": str(data_dir), "categories": categories, "face_crop": face_crop}
    run_settings = {"approach": "frozen", "seed": seed, "checkpoint_dir": str(out)}
    cfg = Config(**values | fixed | run_settings)
    (result,) = run_experiment(cfg)
    logistic, chosen_c = logistic_accuracy(cfg)
    split = pd.read_csv(out / "split.csv")["split"].value_counts()
    return {
        "set": name,
        "seed": seed,
        "head_acc": result.test_acc,
        "logistic_acc": logistic,
        "logistic_C": chosen_c,
        "test_images": int(split["test"]),
        "test_fraction": split["test"] / split["train"],
    }


def main() -> None:
    parser = make_parser(__doc__, ["lfw", "bundled"], "benchmarks/head_vs_logistic.json")
    args = parser.parse_args()
    fixed = parse_settings(args.settings)
    runs = run_on_sets(
        args.sets,
        args.seeds,
        args.identities,
        ["frozen"],
        lambda data_dir, name, _, seed, out: run_one(data_dir, name, seed, fixed, out),
    )
    table = pd.DataFrame(runs)
    rows = []
    for name, group in table.groupby("set", sort=False):
        ratio = float(group["test_fraction"].mean())
        paired = corrected_interval((group["head_acc"] - group["logistic_acc"]).to_numpy(), ratio)
        rows.append(
            {
                "set": name,
                "splits": len(group),
                "head": round(float(group["head_acc"].mean()), 3),
                "logistic": round(float(group["logistic_acc"].mean()), 3),
                "head - logistic": round(paired.mean, 3),
                "interval": f"{paired.low:+.3f}..{paired.high:+.3f}",
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    record = {"args": vars(args) | {"output": str(args.output)}, "runs": runs, "summary": rows}
    args.output.write_text(json.dumps(record, indent=1, default=float))


if __name__ == "__main__":
    main()
