"""The command line: `python -m emotion_tl` (or `emotion-tl`) trains both approaches.

`python -m emotion_tl compare` and `python -m emotion_tl predict` use what training saved.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from emotion_tl.checkpoint import CheckpointError
from emotion_tl.config import add_config_arguments, config_from_args
from emotion_tl.files import DataError

logger = logging.getLogger("emotion_tl")

EXAMPLES = """examples:
  python -m emotion_tl                                   # both approaches
  python -m emotion_tl --approach frozen --epochs 20
  python -m emotion_tl --categories angry sad --epochs 15
  python -m emotion_tl --epochs 1 --max_images_per_category 20 --no_pretrained   # smoke test
  python -m emotion_tl --approach frozen --resume        # continue after Ctrl-C or SIGTERM
  python -m emotion_tl compare                           # report from checkpoints/
  python -m emotion_tl predict --checkpoint checkpoints/finetuning_best.pt Images/neutral
"""


def get_args_parser() -> argparse.ArgumentParser:
    """The training command's options, one per Config field."""
    parser = argparse.ArgumentParser(
        prog="python -m emotion_tl",
        description="Train ResNet50 on Images/<category>/ with frozen weights (A) and/or "
        "fine-tuning (B), and write checkpoints, plots and confusion matrices.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser)
    return parser


def get_compare_parser() -> argparse.ArgumentParser:
    """Options of `python -m emotion_tl compare`."""
    parser = argparse.ArgumentParser(
        prog="python -m emotion_tl compare",
        description="Compare both approaches' best models on the saved test split and write "
        "comparison.csv/.json/.md/.png (plus mistakes.png and gradcam.png) to checkpoint_dir.",
    )
    parser.add_argument("--checkpoint_dir", default="checkpoints", help="the training outputs")
    parser.add_argument(
        "--data_dir",
        default=None,
        help="the images the models were trained on (default: the one in the checkpoints)",
    )
    return parser


def get_predict_parser() -> argparse.ArgumentParser:
    """Options of `python -m emotion_tl predict`."""
    parser = argparse.ArgumentParser(
        prog="python -m emotion_tl predict",
        description="Predict the class of images (files or folders) with one checkpoint, or an "
        "ensemble (the average of the probabilities) of several.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    parser.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="a *_best.pt or *_final.pt file; repeat it to ensemble several models",
    )
    parser.add_argument("--tta", action="store_true", help="also average the mirrored image")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps", "auto"))
    parser.add_argument("--batch_size", type=int, default=32)
    return parser


def run_compare(argv: list[str]) -> int:
    """`python -m emotion_tl compare`: write the comparison report and print its summary."""
    from emotion_tl.report import write_comparison_report

    args = get_compare_parser().parse_args(argv)
    paths = write_comparison_report(args.checkpoint_dir, args.data_dir)
    print(paths["md"].read_text())
    print("Wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def run_predict(argv: list[str]) -> int:
    """`python -m emotion_tl predict`: print (and optionally save) one row per image."""
    from emotion_tl.device import resolve_device
    from emotion_tl.io import write_atomic
    from emotion_tl.predict import predict_paths

    parser = get_predict_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    device = resolve_device(args.device)
    table = predict_paths(args.checkpoint, args.paths, tta=args.tta, device=device,
                          batch_size=args.batch_size)  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.csv:
        write_atomic(Path(args.csv), table.to_csv(index=False).encode())
        print(f"\nWrote {args.csv}")
    return 0


def setup_logging() -> None:
    """Print the package's INFO messages plainly, once."""
    package_logger = logging.getLogger("emotion_tl")
    if not package_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    from emotion_tl.resume import TrainingInterrupted
    from emotion_tl.run import run_experiment, summarize
    from emotion_tl.weights import WeightsUnavailableError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("compare", "predict"):
        setup_logging()
        command = run_compare if argv[0] == "compare" else run_predict
        try:
            return command(argv[1:])
        except (DataError, CheckpointError, ValueError, OSError) as error:
            logger.error("error: %s", error)
            return 2
    if argv and argv[0] == "train":
        argv = argv[1:]
    args = get_args_parser().parse_args(argv)
    setup_logging()
    try:
        cfg = config_from_args(args)
        results = run_experiment(cfg)
    except TrainingInterrupted as stopped:
        logger.warning("%s", stopped)
        return stopped.exit_status
    except (DataError, WeightsUnavailableError, CheckpointError, ValueError, OSError) as error:
        logger.error("error: %s", error)
        return 2
    print()
    print(summarize(results).to_string(index=False))
    print(f"\nOutputs in {cfg.checkpoint_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
