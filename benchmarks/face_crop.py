"""Face finding, measured: each detector's recall, box overlap and speed on composed scenes, then
both approaches' accuracy on those scenes with and without the face crop.

    python benchmarks/face_crop.py detect --count 200
    python benchmarks/face_crop.py train --identities 150 --seeds 0 1 2 --epochs 8
    python benchmarks/face_crop.py train --identities 150 --seeds 0 1 2 --epochs 8 --tight_only

Scenes: the demo faces pasted small (15-35% of the width) into 640x480 crops of photos that ship
with scikit-image and scikit-learn (`demo-faces --scene 640x480`); each face's box is known.
MTCNN (facenet-pytorch) and OpenCV's Haar cascade are measured too where they are installed
(`pip install "facenet-pytorch>=2.5.3,<2.6" "opencv-python-headless<5"`); they are not used by
the package.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision import ops

from emotion_tl.config import Config
from emotion_tl.data.faces.detect import load_detector
from emotion_tl.data.files import load_image
from emotion_tl.data.metadata import read_metadata
from emotion_tl.demo_faces import generate_dataset
from emotion_tl.training.run import run_experiment

BOX = ["face_x0", "face_y0", "face_x1", "face_y1"]


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (torchvision's box_iou)."""
    return float(
        ops.box_iou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))
    )


def make_scenes(out_dir: Path, identities: int, seed: int, tight: bool = False) -> pd.DataFrame:
    """confused/neutral scenes at 640x480 (or, `tight`, the same people as the bundled kind of
    close-up) and their metadata (file, face box)."""
    scene = None if tight else (640, 480)
    generate_dataset(out_dir, identities, seed, ("confused", "neutral"), scene=scene, workers=2)
    return read_metadata(out_dir)


def other_detectors() -> dict:
    """MTCNN and Haar, where installed: name -> callable(PIL image) -> list of boxes."""
    found = {}
    try:
        from facenet_pytorch import MTCNN

        mtcnn = MTCNN(keep_all=True, device="cpu")

        def run_mtcnn(image):
            with torch.inference_mode():
                boxes, _ = mtcnn.detect(image)
            return [] if boxes is None else [tuple(b) for b in boxes]

        found["mtcnn (facenet-pytorch)"] = run_mtcnn
    except ImportError:
        print("skipping MTCNN: pip install 'facenet-pytorch>=2.5.3,<2.6'")
    try:
        import cv2

        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")

        def run_haar(image):
            gray = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)
            found = cascade.detectMultiScale(gray, 1.1, 4, minSize=(30, 30))
            return [(x, y, x + w, y + h) for x, y, w, h in found]

        found["haar alt2 (opencv)"] = run_haar
    except ImportError:
        print("skipping Haar: pip install 'opencv-python-headless<5'")
    return found


def measure_detectors(count: int, seed: int) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as temp:
        meta = make_scenes(Path(temp), (count + 1) // 2, seed)
        images = [load_image(Path(temp) / f) for f in meta["file"]]
    truths = meta[BOX].to_numpy(float)
    detectors = {
        n: (lambda d: lambda im: [f.box for f in d(im)])(load_detector(n))
        for n in ("blazeface", "blazeface-short")
    }
    detectors |= other_detectors()
    rows = []
    for name, detect in detectors.items():
        detect(images[0])  # warm up
        start = time.perf_counter()
        found = [detect(image) for image in images]
        seconds = time.perf_counter() - start
        best = [
            max((box_iou(b, t) for b in boxes), default=0.0)
            for boxes, t in zip(found, truths, strict=True)
        ]
        extra = sum(
            sum(box_iou(b, t) < 0.3 for b in boxes) for boxes, t in zip(found, truths, strict=True)
        )
        rows.append(
            {
                "detector": name,
                "recall (IoU>=0.5)": round(float(np.mean(np.array(best) >= 0.5)), 3),
                "median IoU": round(float(np.median(best)), 2),
                "false boxes": int(extra),
                "images/s (640x480)": round(len(images) / seconds, 1),
            }
        )
    return pd.DataFrame(rows)


def measure_training(args: argparse.Namespace) -> pd.DataFrame:
    variants = {"off": {"face_crop": "off"}, "on": {"face_crop": "on"}}
    variants |= {f"on, margin {m:g}": {"face_crop": "on", "face_margin": m} for m in args.margins}
    if args.level:
        variants["on, eyes levelled"] = {"face_crop": "on", "face_level": True}
    if args.tight_only:
        variants = {"tight crops, no scene": {"face_crop": "off"}}
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        data_dir = Path(temp) / "scenes"
        make_scenes(data_dir, args.identities, args.data_seed, tight=args.tight_only)
        for seed in args.seeds:
            for name, settings in variants.items():
                cfg = Config(
                    data_dir=str(data_dir),
                    approach=args.approach,
                    epochs=args.epochs,
                    checkpoint_dir=str(Path(temp) / "runs" / f"{name}-{seed}"),
                    seed=seed,
                    **settings,
                )
                for result in run_experiment(cfg):
                    rows.append(
                        {
                            "crop": name,
                            "seed": seed,
                            "approach": result.approach,
                            "test acc": result.test_acc,
                            "best val acc": result.best_val_acc,
                        }
                    )
                    print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    return table.groupby(["approach", "crop"])[["test acc", "best val acc"]].agg(["mean", "std"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    detect = sub.add_parser("detect")
    detect.add_argument("--count", type=int, default=200)
    detect.add_argument("--seed", type=int, default=11)
    train = sub.add_parser("train")
    train.add_argument("--identities", type=int, default=150)
    train.add_argument("--data_seed", type=int, default=11)
    train.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    train.add_argument("--epochs", type=int, default=8)
    train.add_argument("--approach", default="both")
    train.add_argument("--margins", type=float, nargs="*", default=[])
    train.add_argument("--level", action="store_true")
    train.add_argument(
        "--tight_only", action="store_true", help="the same people as close-ups, uncropped"
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    table = measure_detectors(args.count, args.seed) if args.part == "detect" else None
    if table is None:
        table = measure_training(args)
    print(table.to_markdown())


if __name__ == "__main__":
    main()
