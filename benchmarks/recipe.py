"""The fine-tuning recipe, measured: each variant's frozen and fine-tuned test accuracy over several
seeds (each seed its own split, the same for every variant), its fine-tuning epochs and seconds,
and each variant's paired difference from the first one.

    python benchmarks/recipe.py --sets lfw bundled scenes --variants seed lp-ft --seeds 0 1 2
    python benchmarks/recipe.py --sets bundled --variants seed lp-ft --set epochs=10

A variant is a named set of Config changes (VARIANTS below); `--set NAME=VALUE` changes every
run, over the variant's own settings (for example `backbone=face`). The sets are those of
benchmarks/sources.py. Prints the tables and writes every run's numbers to --output (JSON).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import yaml
from sources import SETS, run_on_sets

from emotion_tl.config import OUTPUT_PREFIX, SEED_RECIPE_SETTINGS, Config
from emotion_tl.evaluation.repeats import corrected_interval
from emotion_tl.training.run import run_experiment

SEED = SEED_RECIPE_SETTINGS  # the seed's plain recipe: 224 px, 20 epochs, one constant rate
VARIANTS: dict[str, dict] = {  # each a set of Config changes; all but "defaults" from the seed's
    "defaults": {},  # today's defaults (docs/training.md)
    "seed": SEED,  # the seed's plain recipe: a random head, Adam at one rate, every epoch
    "lp-ft": SEED | {"finetuning_head_init": "probe"},  # fine-tuning starts from the frozen head
    "patience": SEED | {"patience": 3},  # stop once the validation loss stalls for 3 epochs
    "lp-ft+patience": SEED | {"finetuning_head_init": "probe", "patience": 3},
    "224px": SEED,  # the input side (resnet50's weights saw 224)
    "160px": SEED | {"image_size": 160},
    "128px": SEED | {"image_size": 128},
    # a smaller input, half the epochs, a warm-up and cosine decay; and the same without them
    "160px-10ep-cosine": SEED
    | {"image_size": 160, "epochs": 10, "schedule": "cosine", "warmup_epochs": 1.0},
    "160px-10ep": SEED | {"image_size": 160, "epochs": 10},
    "160px-patience": SEED | {"image_size": 160, "patience": 3},
    # today's defaults with one part changed
    "defaults-bn-train": {"finetuning_batchnorm": "train"},  # statistics follow the batches
    "defaults-wd": {"weight_decay": 0.05},  # AdamW, timm's usual decay
    "defaults-ls": {"label_smoothing": 0.1},
    "defaults-patience": {"patience": 3},
    "defaults-layer-decay": {"layer_decay": 0.7},  # conv1 at 0.7**5 = 0.17 of layer4's rate
    "defaults-lp-ft": {"finetuning_head_init": "probe"},  # fine-tuning starts from the frozen head
}
MODELS = ("frozen_weights", "finetuning")


def run_one(data_dir: Path, name: str, variant: str, seed: int, fixed: dict, out: Path) -> dict:
    """Train both approaches with `variant`'s settings on one split: accuracies and costs."""
    categories, face_crop = SETS[name]
    base = {"data_dir": str(data_dir), "categories": categories, "face_crop": face_crop}
    changes = base | VARIANTS[variant] | fixed | {"seed": seed, "checkpoint_dir": str(out)}
    start = time.perf_counter()
    results = run_experiment(Config(**changes))
    row = {"set": name, "variant": variant, "seed": seed, "seconds": time.perf_counter() - start}
    for result in results:
        prefix = OUTPUT_PREFIX[result.approach]
        row[f"{prefix}_acc"] = result.test_acc
        row[f"{prefix}_epochs"] = len(result.history)
        row[f"{prefix}_seconds"] = sum(r["seconds"] for r in result.history)
    split = pd.read_csv(out / "split.csv")["split"].value_counts()
    row["test_fraction"] = split["test"] / split["train"]
    return row


def summarize(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per set, variant and model: the mean accuracy with its corrected 95% interval; and each
    variant's split-by-split difference from the first variant."""
    rows, differences = [], []
    for name, group in runs.groupby("set", sort=False):
        ratio = float(group["test_fraction"].mean())
        variants = list(dict.fromkeys(group["variant"]))
        wide = group.set_index(["seed", "variant"])
        for variant in variants:
            own = group[group["variant"] == variant]
            for model in MODELS:
                interval = corrected_interval(own[f"{model}_acc"].to_numpy(), ratio)
                rows.append(
                    {
                        "set": name,
                        "variant": variant,
                        "model": model,
                        "seeds": len(own),
                        "accuracy": round(interval.mean, 3),
                        "interval": f"{max(interval.low, 0):.3f}..{min(interval.high, 1):.3f}",
                        "epochs": round(float(own[f"{model}_epochs"].mean()), 1),
                        "seconds": round(float(own[f"{model}_seconds"].mean()), 1),
                    }
                )
                if variant == variants[0]:
                    continue
                first = wide[f"{model}_acc"].xs(variants[0], level="variant")
                change = (wide[f"{model}_acc"].xs(variant, level="variant") - first).dropna()
                paired = corrected_interval(change.to_numpy(), ratio)
                differences.append(
                    {
                        "set": name,
                        "model": model,
                        "difference": f"{variant} - {variants[0]}",
                        "mean": round(paired.mean, 3),
                        "interval": f"{paired.low:+.3f}..{paired.high:+.3f}",
                        "p_value": round(paired.p_value, 4),
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(differences)


def parse_settings(pairs: list[str]) -> dict:
    """`NAME=VALUE` pairs as Config changes (VALUE read as YAML: 10, 0.01, face, [a, b])."""
    settings = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        settings[name] = yaml.safe_load(value)
    Config(**settings)  # a misspelt name or a bad value fails here, before any training
    return settings


def make_parser(doc: str, sets: list[str], output: str) -> argparse.ArgumentParser:
    """The options the benchmarks over sets and seeds share: --sets, --seeds, --set NAME=VALUE,
    --identities and --output (JSON)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=sets)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", dest="settings", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--identities", type=int, default=100, help="people in the scenes set")
    parser.add_argument("--output", type=Path, default=Path(output))
    return parser


def main() -> None:
    parser = make_parser(__doc__, ["lfw", "bundled"], "benchmarks/recipe.json")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["seed", "lp-ft"])
    args = parser.parse_args()
    fixed = parse_settings(args.settings)
    runs = run_on_sets(
        args.sets,
        args.seeds,
        args.identities,
        args.variants,
        lambda data_dir, name, variant, seed, out: run_one(
            data_dir, name, variant, seed, fixed, out
        ),
    )
    summary, differences = summarize(pd.DataFrame(runs))
    print(summary.to_string(index=False))
    if not differences.empty:
        print(differences.to_string(index=False))
    record = {"args": vars(args) | {"output": str(args.output)}, "runs": runs}
    args.output.write_text(json.dumps(record, indent=1, default=float))


if __name__ == "__main__":
    main()
