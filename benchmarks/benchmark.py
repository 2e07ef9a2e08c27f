"""How fast emotion_tl trains, against the hardware's roof and a naive reference, in one run.

    python benchmarks/benchmark.py --data_dir Images            # the full run (see README)
    python benchmarks/benchmark.py --epochs 2 --max_images_per_category 20 --image_size 64

Every measurement runs in a fresh process, so its peak memory is its own:
- roof: a raw ResNet50 training step (Adam, batch_size, channels_last) on random tensors already
  in memory, images/s, per precision;
- project: the default `python -m emotion_tl` run (both approaches, `--precision auto`), plus
  fine-tuning again in fp32 for the accuracy and throughput comparison;
- naive: the original guide's loop, written here: fp32, NCHW, every image decoded with PIL and
  augmented every epoch, the frozen backbone run forward every epoch.
Project and naive train on the same split. Prints a table and JSON, and writes the JSON to --output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from emotion_tl.config import Config
from emotion_tl.config_options import add_config_arguments, config_from_args
from emotion_tl.data.prepare import prepare_data
from emotion_tl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, resize_size_for
from emotion_tl.device import resolve_device, resolve_precision, seed_everything
from emotion_tl.model.backbones import load_backbone_weights, resolve_config
from emotion_tl.model.network import build_model, make_param_groups, set_train_mode
from emotion_tl.training.approach import train_approach
from emotion_tl.training.context import make_run_context
from emotion_tl.training.selection import is_better
from emotion_tl.training.step import make_train_step

NAIVE_FROZEN_EPOCHS = 20  # the naive frozen loop's epochs at most, each a pass of the backbone
RUN_OPTIONS = [
    "data_dir",
    "categories",
    "epochs",
    "batch_size",
    "image_size",
    "max_images_per_category",
    "device",
]


def measure_memory(device: torch.device) -> dict[str, float | None]:
    """Peak resident memory of this process (and peak GPU memory on CUDA), in GiB."""
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    except ImportError:  # Windows
        rss = None
    gpu = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return {"peak_rss_gib": rss, "peak_gpu_gib": gpu}


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_roof(device_name: str, precision: str, batch_size: int, image_size: int, steps: int):
    """Images/s of a ResNet50 training step on random in-memory tensors: the hardware's roof."""
    device = resolve_device(device_name)
    model = build_model(2)
    # The package's own training step (the one fit runs), fed tensors already on the device.
    step = make_train_step(
        model,
        "finetuning",
        backbone=Config.backbone,
        backbone_lr=1e-4,
        head_lr=1e-4,
        device=device,
        precision=precision,
    )
    model.train()
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (batch_size,), device=device)
    for _ in range(2):  # warm-up: kernel selection, allocator
        step(model, images, labels)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(model, images, labels)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"images_per_s": steps * batch_size / seconds} | measure_memory(device)


def run_project(cfg_values: dict) -> dict:
    """The project's run (as `python -m emotion_tl`), each approach timed from start to outputs."""
    cfg = Config(**cfg_values)
    start = time.perf_counter()
    run = make_run_context(cfg)
    data, device = run.data, run.device
    shared_seconds = time.perf_counter() - start  # decoding and weights, used by both approaches
    out_dir = Path(cfg.checkpoint_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {"shared_seconds": shared_seconds, "approaches": {}}
    for approach in cfg.approaches:
        start = time.perf_counter()
        result = train_approach(run, approach)
        wall = time.perf_counter() - start
        history = result.history
        train_images = len(data.indices("train"))
        train_seconds = sum(row["train_seconds"] for row in history)
        results["approaches"][approach] = {
            "wall_s": wall,
            "epochs": len(history),
            "s_per_epoch": float(np.mean([row["seconds"] for row in history])),
            "train_images_per_s": train_images * len(history) / train_seconds,
            "best_val_acc": result.best_val_acc,
            "test_acc": result.test_acc,
            "final_test_acc": result.final_test_acc,
            "precision": run.precision,
        }
    results["n_train"] = len(data.indices("train"))
    results["n_test"] = len(data.indices("test"))
    return results | measure_memory(device)


class NaiveDataset(torch.utils.data.Dataset):
    """ImageFolder-style: open and decode each file with PIL on every access."""

    def __init__(self, paths: list[str], labels: list[int], transform) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), self.labels[index]


def make_naive_transform(image_size: int, *, train: bool) -> transforms.Compose:
    """The project's augmentation, written the classic PIL way."""
    if train:
        steps = [
            transforms.RandomResizedCrop(image_size, scale=(0.75, 1.0), ratio=(0.9, 1.1)),
            transforms.RandomHorizontalFlip(),
            transforms.RandomRotation(10),
            transforms.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    else:
        steps = [transforms.Resize(resize_size_for(image_size)), transforms.CenterCrop(image_size)]
    return transforms.Compose(
        [*steps, transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )


@torch.no_grad()
def evaluate_naive(model: nn.Module, loader, device: torch.device) -> tuple[float, float]:
    """Mean loss and accuracy, fp32."""
    model.eval()
    losses, correct, seen = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        losses += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    return losses / seen, correct / seen


def run_naive(cfg_values: dict, approach: str, epochs: int, split: dict) -> dict:
    """The guide's loop: fp32, NCHW, PIL decode and the whole network every epoch."""
    cfg = Config(**cfg_values)
    device = resolve_device(cfg.device)
    start = time.perf_counter()
    seed_everything(cfg.seed)
    loaders = {}
    for name in ("train", "val", "test"):
        dataset = NaiveDataset(
            split[name]["paths"],
            split[name]["labels"],
            make_naive_transform(cfg.image_size, train=name == "train"),
        )
        loaders[name] = torch.utils.data.DataLoader(
            dataset, batch_size=cfg.batch_size, shuffle=name == "train"
        )
    pretrained = load_backbone_weights(cfg.pretrained, cfg.weights)
    model = build_model(
        len(cfg.categories), pretrained.weights, stride_in_1x1=pretrained.stride_in_1x1
    ).to(device)
    backbone_lr, head_lr = cfg.lr_for(approach)
    optimizer = torch.optim.Adam(
        make_param_groups(model, approach, backbone_lr=backbone_lr, head_lr=head_lr)
    )
    best, best_state, epoch_seconds = None, None, []
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        set_train_mode(model, approach)
        for images, labels in loaders["train"]:
            images, labels = images.to(device), labels.to(device)
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_loss, val_acc = evaluate_naive(model, loaders["val"], device)
        stats = {"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc}
        if is_better(stats, best):
            best, best_state = stats, {k: v.clone() for k, v in model.state_dict().items()}
        synchronize(device)
        epoch_seconds.append(time.perf_counter() - epoch_start)
    _, final_test_acc = evaluate_naive(model, loaders["test"], device)
    model.load_state_dict(best_state)
    _, test_acc = evaluate_naive(model, loaders["test"], device)
    return {
        "wall_s": time.perf_counter() - start,
        "epochs": epochs,
        "s_per_epoch": float(np.mean(epoch_seconds)),
        "train_images_per_s": len(split["train"]["paths"]) * epochs / sum(epoch_seconds),
        "best_val_acc": best["val_acc"],
        "test_acc": test_acc,
        "final_test_acc": final_test_acc,
        "precision": "fp32",
    } | measure_memory(device)


def run_isolated(function, *args):
    """Run `function(*args)` in a fresh process, so its time and peak memory are its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def make_split_lists(cfg: Config) -> tuple[dict, int]:
    """The project's split as file paths and label indices per split, and the test size."""
    data = prepare_data(cfg)
    labels = data.labels()
    split = {}
    for name in ("train", "val", "test"):
        index = data.indices(name)
        split[name] = {
            "paths": [str(Path(cfg.data_dir) / data.table["file"][i]) for i in index],
            "labels": labels[index].tolist(),
        }
    return split, len(data.indices("test"))


def extrapolate(result: dict, epochs: int) -> dict:
    """A naive run of fewer epochs stretched to `epochs`, marked as such (timing only)."""
    if result["epochs"] >= epochs:
        return result | {"extrapolated_from_epochs": None}
    extra = (epochs - result["epochs"]) * result["s_per_epoch"]
    return result | {
        "wall_s": result["wall_s"] + extra,
        "extrapolated_from_epochs": result["epochs"],
    }


def make_rows(report: dict) -> pd.DataFrame:
    """One row per measurement, for the printed table."""
    rows = []
    for precision, roof in report["roof"].items():
        rows.append({"run": f"roof (random tensors, {precision})", "precision": precision} | roof)
    project = report["project"]["approaches"]
    for name, result in [
        ("project frozen (cached features)", project.get("frozen")),
        ("naive frozen", report["naive"].get("frozen")),
        ("project fine-tuning", project.get("finetuning")),
        ("project fine-tuning fp32", report.get("project_fp32", {}).get("finetuning")),
        ("naive fine-tuning", report["naive"].get("finetuning")),
    ]:
        if result is None:
            continue
        if result.get("extrapolated_from_epochs"):
            name += f" (wall time extrapolated from {result['extrapolated_from_epochs']} epochs)"
        rows.append({"run": name} | result)
    columns = ["run", "precision", "wall_s", "s_per_epoch", "train_images_per_s", "images_per_s"]
    columns += ["best_val_acc", "test_acc", "peak_rss_gib", "peak_gpu_gib"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    return table.dropna(axis=1, how="all")


def check_targets(report: dict) -> list[dict]:
    """The issue's targets, each with its measured value and whether it is met."""
    roof, project, naive = report["roof"], report["project"], report["naive"]
    frozen, tuned = project["approaches"]["frozen"], project["approaches"]["finetuning"]
    tuned_fp32 = report.get("project_fp32", {}).get("finetuning", tuned)
    one_image = 1 / project["n_test"]
    frozen_wall = frozen["wall_s"] + project["shared_seconds"]
    checks = [
        (
            f"frozen: speed-up over naive, {frozen['epochs']} epochs each (x)",
            naive["frozen"]["wall_s"] / frozen_wall,
            10,
        ),
        (
            "frozen: test acc minus naive's (>= -1 test image)",
            frozen["test_acc"] - naive["frozen"]["test_acc"],
            -one_image,
        ),
        (
            f"fine-tuning: throughput / roof at {tuned['precision']}",
            tuned["train_images_per_s"] / roof[tuned["precision"]]["images_per_s"],
            0.85,
        ),
        (
            "fine-tuning: throughput / naive fp32 throughput (x)",
            tuned["train_images_per_s"] / naive["finetuning"]["train_images_per_s"],
            2,
        ),
        (
            f"fine-tuning: -|test acc {tuned['precision']} - fp32| (>= -0.01)",
            -abs(tuned["test_acc"] - tuned_fp32["test_acc"]),
            -0.01,
        ),
        ("default run: -(peak RSS GiB) (< 4 GiB)", -(project["peak_rss_gib"] or 0), -4),
    ]
    return [
        {"target": name, "value": round(value, 4), "threshold": limit, "met": value >= limit}
        for name, value, limit in checks
    ]


def get_args_parser() -> argparse.ArgumentParser:
    """The benchmark's options; the defaults are the full run on the bundled data."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # The run's settings are Config's options, with Config's defaults.
    add_config_arguments(parser, RUN_OPTIONS)
    parser.add_argument(
        "--naive_finetuning_epochs",
        type=int,
        default=None,
        help="train naive fine-tuning this many epochs only and extrapolate its wall time to "
        "--epochs (marked in the output); default: all --epochs",
    )
    parser.add_argument("--roof_steps", type=int, default=6, help="timed steps per precision")
    parser.add_argument(
        "--feature_views",
        dest="views_to_study",
        type=int,
        nargs="+",
        default=None,
        help="also time the project's frozen approach with each of these feature_views",
    )
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the table, targets and JSON, write the JSON."""
    args = get_args_parser().parse_args(argv)
    os.environ["TQDM_DISABLE"] = "1"  # read when the spawned processes import tqdm
    work = Path(tempfile.mkdtemp(prefix="emotion_tl_benchmark_"))
    cfg = resolve_config(config_from_args(args, checkpoint_dir=str(work / "project")))
    device = resolve_device(cfg.device)
    auto = resolve_precision("auto", device)
    started = time.perf_counter()
    split, n_test = make_split_lists(cfg)
    report: dict = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else str(device),
        "cpu_threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "n_train": len(split["train"]["paths"]),
        "n_val": len(split["val"]["paths"]),
        "n_test": n_test,
        "roof": {},
        "naive": {},
    }

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    for precision in dict.fromkeys(["fp32", auto]):
        log(f"roof {precision}")
        report["roof"][precision] = run_isolated(
            run_roof, cfg.device, precision, cfg.batch_size, cfg.image_size, args.roof_steps
        ) | {"precision": precision}
    log("project: the default run, both approaches")
    report["project"] = run_isolated(run_project, cfg.to_dict())
    if auto != "fp32":
        log("project: fine-tuning in fp32")
        fp32 = replace(
            cfg, approach="finetuning", precision="fp32", checkpoint_dir=str(work / "fp32")
        )
        report["project_fp32"] = run_isolated(run_project, fp32.to_dict())["approaches"]
    for views in args.views_to_study or []:
        log(f"project: frozen, feature_views={views}")
        study = replace(
            cfg, approach="frozen", feature_views=views, checkpoint_dir=str(work / f"views{views}")
        )
        result = run_isolated(run_project, study.to_dict())
        report.setdefault("feature_views_study", {})[views] = result["approaches"]["frozen"]
    # The naive loop runs the backbone every epoch: at most NAIVE_FROZEN_EPOCHS of the frozen
    # approach's epochs, stretched to all of them.
    frozen_epochs, tuned_epochs = cfg.epochs_for("frozen"), cfg.epochs_for("finetuning")
    naive_epochs = min(frozen_epochs, NAIVE_FROZEN_EPOCHS)
    log(f"naive: frozen, {naive_epochs} epochs")
    naive_frozen = run_isolated(run_naive, cfg.to_dict(), "frozen", naive_epochs, split)
    report["naive"]["frozen"] = extrapolate(naive_frozen, frozen_epochs)
    naive_epochs = args.naive_finetuning_epochs or tuned_epochs
    log(f"naive: fine-tuning, {naive_epochs} epochs")
    naive_tuned = run_isolated(run_naive, cfg.to_dict(), "finetuning", naive_epochs, split)
    report["naive"]["finetuning"] = extrapolate(naive_tuned, tuned_epochs)
    report["targets"] = check_targets(report)
    report["benchmark_seconds"] = time.perf_counter() - started

    pd.set_option("display.width", 200)
    print(make_rows(report).round(3).to_string(index=False))
    if "feature_views_study" in report:
        study = pd.DataFrame(report["feature_views_study"]).T[
            ["wall_s", "best_val_acc", "test_acc"]
        ]
        print("\nfrozen approach by feature_views (cold cache):\n" + study.round(3).to_string())
    print("\n" + pd.DataFrame(report["targets"]).to_string(index=False))
    text = json.dumps(report, indent=2, default=float)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
