"""Several source models in one run: each trained as a whole run of its own, then compared.

`python -m emotion_tl --backbone resnet50 face` calls `run_sources`: the same settings, split
and seed for every source, each source's outputs in `checkpoint_dir/<source>/`, and the report
of every model side by side in `checkpoint_dir/comparison.*` (evaluation/sources.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from emotion_tl.config import Config
from emotion_tl.distributed import is_main
from emotion_tl.evaluation.sources import SOURCES_FILE, source_dir
from emotion_tl.model.backbones import get_backbone
from emotion_tl.storage import write_atomic
from emotion_tl.training.approach import ApproachResult
from emotion_tl.training.run import run_experiment

logger = logging.getLogger("emotion_tl")


def resolve_sources(names: list[str]) -> list[str]:
    """The entries' own names, in order; an unknown name, or one source named twice (an alias
    and its entry, say), fails before any training."""
    resolved = [get_backbone(name).name for name in names]
    twice = sorted({name for name in resolved if resolved.count(name) > 1})
    if twice:
        raise ValueError(
            f"--backbone names {', '.join(twice)} more than once ({' '.join(names)}); "
            "give each source once"
        )
    return resolved


def run_sources(cfg: Config, names: list[str]) -> dict[str, list[ApproachResult]]:
    """Train `cfg`'s approaches from each source in `names`, then write the sources report."""
    from emotion_tl.evaluation.report import write_sources_report

    sources = resolve_sources(names)
    results = {}
    for source in sources:
        logger.info("Source %s (%d of %d)", source, len(results) + 1, len(sources))
        folder = source_dir(cfg.checkpoint_dir, source)
        results[source] = run_experiment(
            dataclasses.replace(cfg, backbone=source, checkpoint_dir=str(folder))
        )
    if is_main():
        out = Path(cfg.checkpoint_dir)
        write_atomic(out / SOURCES_FILE, json.dumps({"sources": sources}, indent=2).encode())
        report = write_sources_report(out, sources)
        logger.info("Sources compared: %s", report["md"])
    return results
