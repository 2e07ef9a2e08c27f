"""The command line: `python -m emotion_tl` (or `emotion-tl`) trains both approaches."""

from __future__ import annotations

import argparse
import logging
import sys

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
