"""Likely wrong labels: what a simple classifier on frozen features (audit.features) says of
each image when that image was not in its training folds, ranked by cleanlab."""

from __future__ import annotations

import numpy as np
from cleanlab.filter import find_label_issues
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FOLDS = 5
# Strong regularisation: 16,384 grid features from a few hundred images (docs/audit.md).
C = 0.005


def out_of_fold_probabilities(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, seed: int
) -> np.ndarray:
    """(N, C) class probabilities, each from a model that never saw that image (nor, with
    `groups`, that person)."""
    folds = min(FOLDS, int(np.bincount(labels).min()))
    if folds < 2:
        raise ValueError("each category needs at least two images to audit the labels")
    if groups is not None:
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    return cross_val_predict(
        model, features, labels, groups=groups, cv=splitter, method="predict_proba"
    )


def rank_label_issues(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Row numbers cleanlab flags as likely mislabelled, least self-confident first."""
    return find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence")
