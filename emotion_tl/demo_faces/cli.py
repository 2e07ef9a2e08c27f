"""`python -m emotion_tl demo-faces`: generate the synthetic facial-expression demo set.

python -m emotion_tl demo-faces --out Images --identities 150 --seed 4 --difficulty 0.15
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from emotion_tl.demo_faces import (
    DEFAULT_DIFFICULTY,
    DEFAULT_SIZE,
    EXPRESSIONS,
    generate_dataset,
    make_contact_sheet,
)

DESCRIPTION = (
    "Render synthetic faces, one picture per identity and expression, into "
    "OUT/<expression>/*.jpg with OUT/metadata.csv. The same seed and settings always "
    "give the same pictures."
)


def parse_scene(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        message = f"{text!r}: give the size as WIDTHxHEIGHT, e.g. 640x480"
        raise argparse.ArgumentTypeError(message) from None
    if min(width, height) < 64:
        raise argparse.ArgumentTypeError(f"{text!r}: a scene needs at least 64 px a side")
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The generator's command-line options."""
    parser.add_argument("--out", type=Path, default=Path("Images"), help="output folder")
    parser.add_argument("--identities", type=int, default=150, help="number of people")
    parser.add_argument(
        "--seed", type=int, default=4, help="base random seed (4 made the bundled Images/)"
    )
    parser.add_argument(
        "--expressions",
        nargs="+",
        default=list(EXPRESSIONS),
        choices=EXPRESSIONS,
        help="expressions to render (default: all six)",
    )
    parser.add_argument(
        "--difficulty",
        type=float,
        default=DEFAULT_DIFFICULTY,
        help="0 (strong expressions) to 1 (most expressions faint, close to neutral); "
        f"default {DEFAULT_DIFFICULTY}",
    )
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="picture side, pixels")
    parser.add_argument(
        "--scene",
        type=parse_scene,
        default=None,
        metavar="WxH",
        help="paste each person small (face 15-35%% of the width) into a WxH photo, as in "
        "pictures people take themselves; metadata.csv gets each face's box",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="processes to render with; does not change the output",
    )
    parser.add_argument(
        "--contact-sheet", type=Path, default=None, help="also save a PNG grid of pictures here"
    )


def run(args: argparse.Namespace) -> int:
    """Generate the set as the parsed arguments say; return an exit code."""
    if not 0.0 <= args.difficulty <= 1.0:
        raise ValueError("--difficulty must be between 0 and 1")
    start = time.perf_counter()
    rows = generate_dataset(
        args.out,
        identities=args.identities,
        seed=args.seed,
        expressions=args.expressions,
        difficulty=args.difficulty,
        size=args.size,
        workers=args.workers,
        scene=args.scene,
    )
    seconds = time.perf_counter() - start
    print(f"wrote {len(rows)} pictures and metadata.csv to {args.out} in {seconds:.1f} s")
    if args.contact_sheet is not None:
        make_contact_sheet(rows, args.out, args.expressions).save(args.contact_sheet)
        print(f"contact sheet: {args.contact_sheet}")
    return 0
