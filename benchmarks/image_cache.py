"""Memory and loader speed on a large generated dataset: does peak memory stay flat as it grows?

Generates NUM_IMAGES small pictures (64 px, two categories), prepares them as a run does with
decoded images at 256 px (what a 224 px run keeps, room for its random crops) in the chosen
image cache, then reads every split through the run's own DataLoaders (their uint8 batches,
which `to_device` normalises on the device they go to):

    python benchmarks/image_cache.py --num_images 50000
    python benchmarks/image_cache.py --num_images 10000 --image_cache memory   # for contrast

It prints the time to decode into the cache, the time of a second preparation that reads it
back, the loaders' images per second (evaluation view: validation and test; training view:
every augmentation), the pixel file's size and the peak resident memory (RSS) of this process
and of its biggest DataLoader worker. The face crop is off: finding faces in generated noise
measures nothing.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from emotion_tl.config import Config
from emotion_tl.data.image_store import IMAGE_CACHE_DIR
from emotion_tl.data.loaders import make_loaders
from emotion_tl.data.prepare import prepare_data

CATEGORIES = ("first", "second")


def generate(data_dir: Path, num_images: int, seed: int) -> None:
    """Distinct 64 px pictures: smooth random colour fields, upsampled from 4x4 noise."""
    rng = np.random.default_rng(seed)
    for category in CATEGORIES:
        (data_dir / category).mkdir(parents=True)
    for index in tqdm(range(num_images), desc="Generating", unit="img"):
        cells = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(cells).resize((64, 64), Image.BILINEAR)
        image.save(data_dir / CATEGORIES[index % 2] / f"{index:06d}.png", compress_level=1)


def peak_rss_gib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024**2  # Linux reports KiB


def read_all(loaders: list, label: str) -> None:
    count, start = 0, time.perf_counter()
    for loader in loaders:
        for images, _ in tqdm(loader, desc=label, unit="batch", leave=False):
            count += len(images)
    seconds = time.perf_counter() - start
    print(f"{label}: {count} images in {seconds:.1f} s = {count / seconds:,.0f} images/s (uint8)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_images", type=int, default=50_000)
    parser.add_argument("--image_cache", default="disk", choices=("auto", "memory", "disk"))
    parser.add_argument("--num_workers", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--work_dir", default=None, help="where to generate (default: a temp dir)")
    parser.add_argument("--skip_training_view", action="store_true")
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="image_cache_bench_"))
    try:
        data_dir = work / "data"
        start = time.perf_counter()
        generate(data_dir, args.num_images, seed=0)
        print(f"generated {args.num_images} images in {time.perf_counter() - start:.1f} s")
        cfg = Config(
            data_dir=str(data_dir),
            categories=CATEGORIES,
            checkpoint_dir=str(work / "checkpoints"),
            image_cache=args.image_cache,
            face_crop="off",
            num_workers=args.num_workers,
            batch_size=args.batch_size,
        )
        for attempt in ("first preparation (decodes every file)", "second preparation"):
            data = None  # not two datasets in memory at once
            start = time.perf_counter()
            data = prepare_data(cfg)
            print(f"{attempt}: {time.perf_counter() - start:.1f} s, {len(data.table)} images")
        cache_files = (work / "checkpoints").glob(f"{IMAGE_CACHE_DIR}/*/*")
        pixels = sum(p.stat().st_size for p in cache_files)
        print(f"image cache on disk: {pixels / 1024**3:.2f} GiB ({args.image_cache})")
        loaders = make_loaders(data, cfg)
        read_all([loaders["val"], loaders["test"]], f"evaluation view, {args.num_workers} workers")
        if not args.skip_training_view:
            read_all([loaders["train"]], f"training view, {args.num_workers} workers")
        del loaders  # reap the workers, so their peak counts below
        print(f"peak RSS of this process: {peak_rss_gib(resource.RUSAGE_SELF):.2f} GiB")
        print(f"peak RSS of the largest worker: {peak_rss_gib(resource.RUSAGE_CHILDREN):.2f} GiB")
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
