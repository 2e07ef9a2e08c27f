"""The command line: `python -m emotion_tl COMMAND` (or `emotion-tl COMMAND`).

With no command, `train` runs, so `python -m emotion_tl --approach both` trains both approaches.
Every option that is a setting of a run comes from `Config`, with Config's default.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from emotion_tl.config import add_config_arguments, config_from_args
from emotion_tl.data.face_model import FaceModelError
from emotion_tl.data.files import DataError
from emotion_tl.model.checkpoint import CheckpointError
from emotion_tl.model.weights import WeightsUnavailableError

logger = logging.getLogger("emotion_tl")

EXAMPLES = """examples:
  python -m emotion_tl                                   # train both approaches
  python -m emotion_tl --approach frozen --epochs 20
  python -m emotion_tl --categories angry sad --epochs 15
  python -m emotion_tl --epochs 1 --max_images_per_category 20 --no_pretrained   # smoke test
  python -m emotion_tl --approach frozen --epochs 20 --resume   # continue it after Ctrl-C
  python -m emotion_tl --repeats 5        # 5 different splits: mean and interval per approach
  python -m emotion_tl lr-find --approach finetuning   # a suggested learning rate
  python -m emotion_tl sweep notebooks/sweep.yaml      # notebook 02 over a grid (papermill)
  python -m emotion_tl compare                           # report from checkpoints/
  python -m emotion_tl predict --checkpoint checkpoints/finetuning_best.pt Images/neutral
  python -m emotion_tl weights                           # fetch the ImageNet weights once
"""


def run_train(args: argparse.Namespace) -> int:
    """`train`: both approaches (or one), every output to checkpoint_dir, a table at the end."""
    from emotion_tl.training.resume import TrainingInterrupted
    from emotion_tl.training.run import run_experiment, summarize

    cfg = config_from_args(args)
    try:
        results = run_experiment(cfg)
    except TrainingInterrupted as stopped:
        logger.warning("%s", stopped)
        return stopped.exit_status
    print()
    print(summarize(results).to_string(index=False))
    print(f"\nOutputs in {cfg.checkpoint_dir}/")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """`compare`: write the comparison report and print its summary."""
    from emotion_tl.evaluation.report import write_comparison_report

    paths = write_comparison_report(args.checkpoint_dir, args.data_dir)
    print(paths["md"].read_text())
    print("Wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """`predict`: print (and optionally save) one row per image."""
    from emotion_tl.evaluation.predict import predict_paths
    from emotion_tl.storage import write_atomic

    options = {name: getattr(args, name) for name in ("tta", "device", "precision", "batch_size")}
    table = predict_paths(args.checkpoint, args.paths, **options)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.csv:
        write_atomic(Path(args.csv), table.to_csv(index=False).encode())
        print(f"\nWrote {args.csv}")
    return 0


def run_weights(args: argparse.Namespace) -> int:
    """`weights`: resolve the ImageNet weights and the face detector's model once (fetch or
    convert them) and say from where."""
    import time

    from emotion_tl.data.face_detect import DETECTORS
    from emotion_tl.data.face_model import face_model_path
    from emotion_tl.model.weights import load_pretrained_weights

    start = time.perf_counter()
    weights = load_pretrained_weights(args.weights, allow_download=not args.no_download)
    print(f"weights: {weights.source} (resolved in {time.perf_counter() - start:.2f} s)")
    for name, spec in DETECTORS.items():
        print(f"face detector {name}: {face_model_path(spec.model)}")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    """`audit`: look for near-copies, likely wrong labels and poor pictures; change nothing."""
    from emotion_tl.audit import run_audit as audit

    paths = audit(config_from_args(args))
    print(paths["md"].read_text())
    print("Wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def run_lr_find(args: argparse.Namespace) -> int:
    """`lr-find`: the learning-rate range test per approach; its curve and suggestion."""
    from emotion_tl.data.prepare import prepare_data
    from emotion_tl.model.weights import load_backbone_weights
    from emotion_tl.storage import check_writable
    from emotion_tl.training.lr_find import describe_finding, find_learning_rate, write_lr_finding

    cfg = config_from_args(args)
    check_writable(Path(cfg.checkpoint_dir))
    data = prepare_data(cfg)
    pretrained = load_backbone_weights(cfg.pretrained, cfg.weights)
    for approach in cfg.approaches:
        finding = find_learning_rate(
            cfg, approach, data, pretrained, steps=args.steps, start=args.start_lr, end=args.end_lr
        )
        paths = write_lr_finding(finding, Path(cfg.checkpoint_dir), approach)
        print(describe_finding(finding, cfg, approach))
        print("Wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def run_sweep_file(args: argparse.Namespace) -> int:
    """`sweep`: a notebook over a parameter grid with papermill; sweep.csv and sweep.png."""
    from emotion_tl.sweep import run_sweep

    result = run_sweep(args.sweep_file)
    counts = result["counts"]
    print(f"Runs: {counts['done']} run now, {counts['skipped']} already done, "
          f"{counts['failed']} failed")  # fmt: skip
    if not result["table"].empty:
        print(result["table"].drop(columns="folder").to_string(index=False))
        print("Wrote " + ", ".join(str(result[k]) for k in ("csv", "png") if k in result))
    return 1 if counts["failed"] else 0


def run_import_csv(args: argparse.Namespace) -> int:
    """`import-csv`: a FER2013-style CSV file into data_dir/<expression>/ PNG files."""
    from emotion_tl.data.import_csv import import_csv

    report = import_csv(args.csv_file, args.out)
    print(report.summary())
    print(f"Wrote {args.out}/; train on two of its folders with, for example:")
    print(f"  python -m emotion_tl --data_dir {args.out} --categories happy sad")
    return 0


def run_demo_faces(args: argparse.Namespace) -> int:
    """`demo-faces`: render the synthetic demo set."""
    from emotion_tl.faces.cli import run

    return run(args)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def add_lr_find_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--steps", type=int, default=100, help="training steps, one rate each")
    parser.add_argument("--start_lr", type=float, default=1e-7, help="the first rate tried")
    parser.add_argument("--end_lr", type=float, default=10.0, help="the last rate tried")


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sweep_file",
        nargs="?",
        default="notebooks/sweep.yaml",
        help="the sweep's YAML file: notebook, grid, shared parameters, output (default: "
        "%(default)s, an example)",
    )


def add_import_csv_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv_file", help="a CSV with emotion, pixels and optionally Usage columns")
    parser.add_argument("--out", required=True, help="the folder to write <expression>/ into")


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, ["checkpoint_dir"])
    parser.add_argument(
        "--data_dir",
        default=None,
        help="the images the models were tested on (default: the data_dir the checkpoints record)",
    )


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    parser.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="a *_best.pt or *_final.pt file; repeat it to ensemble several "
        "models (the average of their probabilities)",
    )
    parser.add_argument("--tta", action="store_true", help="also average the mirrored image")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")
    add_config_arguments(parser, ["device", "precision", "batch_size"])


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, ["weights"])
    parser.add_argument(
        "--no_download",
        "--no-download",
        action="store_true",
        help="don't try torchvision's download",
    )


def add_demo_faces_arguments(parser: argparse.ArgumentParser) -> None:
    from emotion_tl.faces.cli import add_arguments

    add_arguments(parser)


# name -> (what it does, its options, what runs it)
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "train": (
        "train ResNet50 on data_dir/<category>/ with frozen weights (A) and/or "
        "fine-tuning (B); write checkpoints, histories, confusion matrices and the "
        "comparison report (the default command)",
        add_train_arguments,
        run_train,
    ),
    "compare": (
        "compare both approaches' best models on the saved test split and write "
        "comparison.csv/.json/.md/.png, mistakes.png and gradcam.png",
        add_compare_arguments,
        run_compare,
    ),
    "predict": (
        "predict the class of image files or folders with a checkpoint, or an ensemble of several",
        add_predict_arguments,
        run_predict,
    ),
    "audit": (
        "look for near-copies, likely wrong labels and poor pictures in data_dir (nothing is "
        "changed); write audit.csv/.md/.png to checkpoint_dir",
        add_train_arguments,
        run_audit,
    ),
    "lr-find": (
        "the learning-rate finder: training steps at exponentially rising rates, the loss "
        "curve and a suggested rate (lr_find_*.csv/.png in checkpoint_dir; no checkpoint "
        "changes)",
        add_lr_find_arguments,
        run_lr_find,
    ),
    "sweep": (
        "run notebook 02 or 03 with papermill for every cell of a parameter grid (a YAML "
        "file), skipping finished cells; gather sweep.csv and the sweep.png heatmap",
        add_sweep_arguments,
        run_sweep_file,
    ),
    "import-csv": (
        "turn a FER2013-style CSV (emotion index, 48x48 pixel string, Usage) into "
        "OUT/<expression>/*.png and OUT/metadata.csv; bad rows are reported and skipped",
        add_import_csv_arguments,
        run_import_csv,
    ),
    "weights": (
        "fetch (or convert) the ImageNet ResNet50 weights once and say where they came from",
        add_weights_arguments,
        run_weights,
    ),
    "demo-faces": (
        "render the synthetic demo faces (how Images/ was made)",
        add_demo_faces_arguments,
        run_demo_faces,
    ),
}


def get_args_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sub-command has its own --help."""
    parser = argparse.ArgumentParser(
        prog="python -m emotion_tl",
        description="Transfer learning for facial-expression classification with ResNet50. "
        "With no command, `train` runs; `python -m emotion_tl train --help` lists its options.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def setup_logging() -> None:
    """Print the package's INFO messages plainly, once."""
    package_logger = logging.getLogger("emotion_tl")
    if not package_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success, 2 on an error it explains)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["train", *argv]
    args = get_args_parser().parse_args(argv)
    setup_logging()
    try:
        return args.run(args)
    except (
        DataError,
        WeightsUnavailableError,
        FaceModelError,
        CheckpointError,
        ValueError,
        OSError,
    ) as error:
        logger.error("error: %s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
