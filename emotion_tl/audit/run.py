"""The audit, start to finish: prepare the data, read its frozen features, look for problems."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from emotion_tl.audit.duplicates import find_near_duplicates
from emotion_tl.audit.features import label_check_features
from emotion_tl.audit.labels import out_of_fold_probabilities, rank_label_issues
from emotion_tl.audit.quality import find_quality_problems
from emotion_tl.config import Config
from emotion_tl.data.describe import describe_image_files
from emotion_tl.data.faces.crop import Framing
from emotion_tl.data.metadata import read_identities
from emotion_tl.data.near_copies import perceptual_hashes
from emotion_tl.data.prepare import PreparedData
from emotion_tl.model.backbones import get_backbone
from emotion_tl.model.network import build_model
from emotion_tl.training.context import RunContext, make_run_context
from emotion_tl.training.feature_cache import load_features

logger = logging.getLogger("emotion_tl")

COLUMNS = ["file", "label", "split", "problem", "score", "guess", "guess_probability", "other"]
COLUMNS += ["action"]


@dataclass
class Audit:
    """What the audit found: one row per (image, problem), and every image's label ranking."""

    table: pd.DataFrame
    probabilities: np.ndarray  # (N, C) out of fold, rows as data.table
    seconds: float


def audit_model(run: RunContext) -> nn.Module:
    """The frozen backbone both feature readers use (its new head is never used)."""
    weights = run.pretrained.weights
    return build_model(len(run.data.class_names), weights, backbone=run.backbone.name)


def read_audit_features(model: nn.Module, run: RunContext) -> np.ndarray:
    """Frozen backbone features (N, feature_dim) of every image's evaluation view, in table order
    (the frozen approach's cache: computed once, then read)."""
    data = run.data
    one_view = dataclasses.replace(run.cfg, feature_views=1)
    splits = load_features(model, dataclasses.replace(run, cfg=one_view))
    features = np.zeros((len(data.table), splits["train"].shape[-1]), dtype=np.float32)
    for split, values in splits.items():
        features[data.indices(split)] = values[0].numpy()
    return features


def row(data: PreparedData, index: int, problem: str, score: float, action: str, **extra) -> dict:
    table = data.table.iloc[index]
    values = {"file": table["file"], "label": table["label"], "split": table["split"]}
    return values | {"problem": problem, "score": round(float(score), 4), "action": action} | extra


def label_rows(data: PreparedData, probabilities: np.ndarray) -> list[dict]:
    labels = data.labels()
    rows = []
    for index in rank_label_issues(labels, probabilities):
        guess = int(probabilities[index].argmax())
        rows.append(
            row(
                data,
                index,
                "label",
                1 - probabilities[index, labels[index]],
                f"look: move to {data.class_names[guess]} if that is right",
                guess=data.class_names[guess],
                guess_probability=round(float(probabilities[index, guess]), 4),
            )
        )
    return rows


def duplicate_rows(data: PreparedData, pairs: pd.DataFrame) -> list[dict]:
    table, rows = data.table, []
    exact = {frozenset(group) for group in data.duplicates.within}
    for pair in pairs.itertuples():
        first, second = table.iloc[pair.first], table.iloc[pair.second]
        if any({first["file"], second["file"]} <= group for group in exact):
            continue  # byte-identical: reported below as an exact copy
        if first["label"] != second["label"]:
            problem, action = "near-copy in another category", "keep the copy whose label is right"
        elif first["split"] != second["split"]:
            problem, action = "near-copy in another split", "set one aside: it leaks across splits"
        else:
            problem, action = "near-copy", "set one aside if it adds nothing"
        rows.append(row(data, pair.first, problem, pair.cosine, action, other=second["file"]))
    for group in data.duplicates.within:
        for other in group[1:]:
            index = int(np.flatnonzero(table["file"].to_numpy() == group[0])[0])
            rows.append(row(data, index, "exact copy", 1.0, "kept in one split", other=other))
    return rows


def quality_rows(data: PreparedData, cfg: Config) -> list[dict]:
    described = describe_image_files(cfg.data_dir, data.table["file"])  # headers only
    sizes = list(zip(described["width"], described["height"], strict=True))
    framings = data.framings or [Framing()] * len(sizes)  # PreparedData made by hand: none
    problems = find_quality_problems(data.images, sizes, framings)
    return [
        row(data, index, problem, score, "look: set aside if the expression cannot be read")
        for index, found in enumerate(problems)
        for problem, score in found
    ]


def audit_data(cfg: Config, data: PreparedData | None = None) -> tuple[PreparedData, Audit]:
    """Prepare (or take) the data and find its problems; nothing is changed on disk. Unless
    `cfg.image_size` is set, the source reads its pictures at the side its weights saw (finer
    maps for the label check than a run's smaller default side, as docs/audit.md measured)."""
    if cfg.image_size is None:
        cfg = dataclasses.replace(cfg, image_size=get_backbone(cfg.backbone).image_size)
    run = make_run_context(cfg, data)
    data, start = run.data, time.perf_counter()
    model = audit_model(run)
    features = read_audit_features(model, run)
    label_features = label_check_features(model, run)
    identities = read_identities(cfg.data_dir)
    groups = None
    if identities:
        groups = np.array([identities.get(f, f) for f in data.table["file"]])
    probabilities = out_of_fold_probabilities(label_features, data.labels(), groups, cfg.seed)
    hashes = data.phashes if data.phashes is not None else perceptual_hashes(data.images)
    pairs = find_near_duplicates(hashes, features)
    rows = label_rows(data, probabilities) + duplicate_rows(data, pairs) + quality_rows(data, cfg)
    table = pd.DataFrame(rows, columns=COLUMNS)
    seconds = time.perf_counter() - start
    logger.info(
        "Audit: %d problem(s) in %d images, in %.1f s", len(table), len(data.table), seconds
    )
    return data, Audit(table, probabilities, seconds)
