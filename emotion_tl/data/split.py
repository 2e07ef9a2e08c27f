"""The train/val/test split: seeded, stratified, and never splitting a person or a copy.

It is saved as `checkpoint_dir/split.csv`, which both approaches, the notebooks, the report
and `--resume` share.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_tl.config import Config
from emotion_tl.data.files import DataError
from emotion_tl.storage import write_atomic

logger = logging.getLogger("emotion_tl")

SPLITS = ("train", "val", "test")
SPLIT_FILE = "split.csv"


def assign_splits(groups: Sequence[str], cfg: Config) -> dict[str, str]:
    """Group -> split for groups in a seeded random order: test first, then val, then train."""
    n_test = max(1, round(len(groups) * cfg.test_fraction))
    n_val = max(1, round(len(groups) * cfg.val_fraction))
    assign = {g: "test" for g in groups[:n_test]}
    assign |= {g: "val" for g in groups[n_test : n_test + n_val]}
    assign |= {g: "train" for g in groups[n_test + n_val :]}
    return assign


def split_by_category(labels: Sequence[str], groups: Sequence[str], cfg: Config) -> list[str]:
    """Stratified, seeded split: each category's groups (usually single images) are shuffled and
    cut by the configured fractions, so the members of a group share a split."""
    rng = np.random.default_rng(cfg.seed)
    labels = np.asarray(labels)
    split = np.empty(len(labels), dtype=object)
    for category in sorted(set(labels)):
        members = np.flatnonzero(labels == category)
        unique = list(dict.fromkeys(groups[i] for i in members))  # in file order
        assign = assign_splits([unique[i] for i in rng.permutation(len(unique))], cfg)
        split[members] = [assign[groups[i]] for i in members]
    return list(split)


def split_by_group(groups: Sequence[str], cfg: Config) -> list[str]:
    """Seeded split of whole groups (people), so no one appears in two splits."""
    rng = np.random.default_rng(cfg.seed)
    assign = assign_splits(list(rng.permutation(sorted(set(groups)))), cfg)
    return [assign[g] for g in groups]


def merge_groups(groups: dict[str, str], same_image: Sequence[Sequence[str]]) -> dict[str, str]:
    """file -> group, with every set of identical files joined into one group (union-find)."""
    parent: dict[str, str] = {}

    def find(group: str) -> str:
        while parent.get(group, group) != group:
            group = parent[group]
        return group

    for names in same_image:
        roots = sorted({find(groups[name]) for name in names})
        for root in roots[1:]:
            parent[root] = roots[0]
    return {file: find(group) for file, group in groups.items()}


def make_split(
    files: list[str],
    labels: list[str],
    identities: dict[str, str],
    cfg: Config,
    same_image: Sequence[Sequence[str]] = (),
) -> list[str]:
    """Split by person when every file has an identity, else stratified by category; identical
    files (`same_image`) always land in one split, so a copy never leaks into the test set."""
    if identities and all(f in identities for f in files):
        groups = merge_groups({f: identities[f] for f in files}, same_image)
        split = split_by_group([groups[f] for f in files], cfg)
        table = pd.crosstab(pd.Series(labels, name="label"), pd.Series(split, name="split"))
        if set(table.columns) == set(SPLITS) and (table.to_numpy() > 0).all():
            return split
        logger.warning("Too few people to split by identity; splitting by category instead.")
    groups = merge_groups({f: f for f in files}, same_image)
    return split_by_category(labels, [groups[f] for f in files], cfg)


def choose_subset(
    found: list[Path], count: int, data_dir: Path, identities: dict[str, str], seed: int
) -> list[Path]:
    """A seeded subset of one category; with known identities, the same people in every category.

    Choosing people rather than files keeps an identity split balanced on a subset: each person
    chosen brings one image of every category, as in the full bundled set.
    """
    rng = np.random.default_rng(seed)
    names = [p.relative_to(data_dir).as_posix() for p in found]
    if identities and all(n in identities for n in names):
        people = sorted(set(identities.values()))
        rank = {person: i for i, person in enumerate(rng.permutation(people))}
        order = sorted(range(len(found)), key=lambda i: (rank[identities[names[i]]], names[i]))
        keep = sorted(order[:count])
    else:
        keep = np.sort(rng.choice(len(found), count, replace=False))
    return [found[i] for i in keep]


def save_split(table: pd.DataFrame, checkpoint_dir: Path) -> Path:
    """Write `table` (file, label, split per image) as checkpoint_dir/split.csv."""
    path = Path(checkpoint_dir) / SPLIT_FILE
    write_atomic(path, table.to_csv(index=False).encode())
    return path


def read_split(checkpoint_dir: Path) -> pd.DataFrame:
    """checkpoint_dir/split.csv as text columns (file, label, split); DataError if missing."""
    path = Path(checkpoint_dir) / SPLIT_FILE
    if not path.is_file():
        raise DataError(f"'{path}' not found: the split is unknown. Train first (or again).")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def check_same_split(table: pd.DataFrame, checkpoint_dir: Path) -> None:
    """Fail unless checkpoint_dir/split.csv holds exactly this split (same files, labels)."""
    path = Path(checkpoint_dir) / SPLIT_FILE
    if not path.is_file():
        raise DataError(f"cannot resume: '{path}' is missing, so the split is unknown.")
    if not read_split(checkpoint_dir).equals(table.astype(str).reset_index(drop=True)):
        raise DataError(
            f"cannot resume: the images no longer give the split saved in '{path}' (files were "
            "added, removed or changed, or the seed or split fractions differ). Restore them, or "
            "start a new run without --resume."
        )
