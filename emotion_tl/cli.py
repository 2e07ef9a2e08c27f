"""The command line: `python -m emotion_tl COMMAND` (or `emotion-tl COMMAND`).

With no command, `train` runs, so `python -m emotion_tl --approach both` trains both approaches.
Every option that is a setting of a run comes from `Config`, with Config's default.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from emotion_tl.commands import (
    run_audit,
    run_compare,
    run_demo_faces,
    run_export,
    run_import_csv,
    run_lr_find,
    run_predict,
    run_sweep_file,
    run_train,
    run_weights,
)
from emotion_tl.config import SEED_RECIPE_SETTINGS
from emotion_tl.config_options import add_config_arguments
from emotion_tl.data.faces.model_file import FaceModelError
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
  python -m emotion_tl export --checkpoint checkpoints/finetuning_best.pt   # to ONNX
  python -m emotion_tl weights                           # fetch the ImageNet weights once
"""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    # Several sources (`--backbone resnet50 face`): each trained, then all compared.
    add_config_arguments(parser, several=["backbone"])


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def add_lr_find_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps, one rate each (default: 100; 60 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the widget's quick finder: 60 steps, fine-tuning's on pictures of half the side "
        "(about a fifth of the full finder's time; docs/training.md compares the two)",
    )
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


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a *_best.pt or *_final.pt file")
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="(default: onnx)")
    parser.add_argument("--out", default=None, help="the file to write (default: beside it, .onnx)")


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
        help="a *_best.pt or *_final.pt file, or a .onnx file from `export`; repeat it to "
        "ensemble several models (the average of their probabilities)",
    )
    parser.add_argument("--tta", action="store_true", help="also average the mirrored image")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")
    add_config_arguments(parser, ["device", "precision", "batch_size"])


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, ["backbone", "weights"])
    # No --backbone: every source in the table (with --weights: the default one, resnet50).
    parser.set_defaults(backbone=None)
    parser.add_argument(
        "--no_download",
        "--no-download",
        action="store_true",
        help="don't try torchvision's download",
    )


def add_demo_faces_arguments(parser: argparse.ArgumentParser) -> None:
    from emotion_tl.demo_faces.cli import add_arguments

    add_arguments(parser)


# name -> (what it does, its options, what runs it)
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "train": (
        "train a pretrained model (ImageNet ResNet50 by default; several with --backbone A B) "
        "on data_dir/<category>/ with frozen weights (A) and/or fine-tuning (B); write "
        "checkpoints, histories, confusion matrices and the comparison report (the default "
        "command)",
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
        add_audit_arguments,
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
    "export": (
        "write a checkpoint as an ONNX model (any batch size; class names, image size and "
        "preprocessing in its metadata) for inference with onnxruntime",
        add_export_arguments,
        run_export,
    ),
    "import-csv": (
        "turn a FER2013-style CSV (emotion index, 48x48 pixel string, Usage) into "
        "OUT/<expression>/*.png and OUT/metadata.csv; bad rows are reported and skipped",
        add_import_csv_arguments,
        run_import_csv,
    ),
    "weights": (
        "fetch (or convert) the pretrained weights of every source model (or of --backbone: "
        "the ImageNet ResNet50, the FER2013 face model) and the face detector's model once, "
        "and say where they came from",
        add_weights_arguments,
        run_weights,
    ),
    "demo-faces": (
        "render the synthetic demo faces (how Images/ was made)",
        add_demo_faces_arguments,
        run_demo_faces,
    ),
}


def get_args_parser(seed_recipe: bool = False) -> argparse.ArgumentParser:
    """The parser of every command; each sub-command has its own --help. With `seed_recipe`,
    the options of SEED_RECIPE_SETTINGS default to the seed's values instead."""
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
        if seed_recipe and command.get_default("seed_recipe") is not None:
            command.set_defaults(**SEED_RECIPE_SETTINGS)
    return parser


def parse_command_line(argv: list[str]) -> argparse.Namespace:
    """`argv` (a command first) parsed; with --seed_recipe, parsed again with the seed's values
    as the defaults, so that options given with it still win."""
    args = get_args_parser().parse_args(argv)
    if getattr(args, "seed_recipe", False):
        args = get_args_parser(seed_recipe=True).parse_args(argv)
    return args


def setup_logging() -> None:
    """Print the package's INFO messages plainly, once."""
    package_logger = logging.getLogger("emotion_tl")
    if not package_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)


def check_launcher(command: str) -> None:
    """Only training runs as several processes: any other command would run once per process."""
    from emotion_tl.distributed import launched_by_torchrun

    if command != "train" and launched_by_torchrun():
        raise ValueError(
            f"only training runs under torchrun; run `python -m emotion_tl {command} ...` "
            "as one process"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success, 2 on an error it explains)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["train", *argv]
    args = parse_command_line(argv)
    setup_logging()
    try:
        check_launcher(argv[0])
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
