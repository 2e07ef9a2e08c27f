"""What each command of `python -m emotion_tl` does, once `cli.py` has parsed its arguments:
one function per command, taking the parsed arguments and returning the exit status."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from emotion_tl.config import Config
from emotion_tl.config_options import config_from_args

logger = logging.getLogger("emotion_tl")


def run_train(args: argparse.Namespace) -> int:
    """`train`: both approaches (or one), every output to checkpoint_dir, a table at the end."""
    from emotion_tl.device import resolve_device
    from emotion_tl.distributed import is_main, start_distributed
    from emotion_tl.training.resume import TrainingInterrupted
    from emotion_tl.training.run import run_experiment, summarize
    from emotion_tl.training.sources import run_sources

    sources = args.backbone
    cfg = config_from_args(args, backbone=sources[0])
    check_distributed_config(cfg)
    try:
        with start_distributed(resolve_device(cfg.device)):
            main_process = is_main()
            if len(sources) > 1:
                results = run_sources(cfg, sources)
            else:
                results = {cfg.backbone: run_experiment(cfg)}
    except TrainingInterrupted as stopped:
        logger.warning("%s", stopped)
        return stopped.exit_status
    if not main_process:
        return 0
    print()
    for source, source_results in results.items():
        if len(results) > 1:
            print(f"{source}:")
        print(summarize(source_results).to_string(index=False))
    if len(results) > 1:
        print(f"\nEvery model side by side: {cfg.checkpoint_dir}/comparison.md")
    print(f"\nOutputs in {cfg.checkpoint_dir}/")
    return 0


def check_distributed_config(cfg: Config) -> None:
    """Refuse what a torchrun launch of several processes cannot do, saying what to do instead."""
    from emotion_tl.distributed import launched_by_torchrun

    if not launched_by_torchrun():
        return
    if cfg.resume:
        raise ValueError(
            "--resume continues a one-process run; run `python -m emotion_tl --resume ...` "
            "without torchrun (several processes stop as usual on Ctrl-C, without saving)"
        )
    if cfg.repeats > 1:
        raise ValueError("--repeats needs one process; run it without torchrun")


def run_compare(args: argparse.Namespace) -> int:
    """`compare`: write the comparison report (of a several-source run: of every model) and
    print its summary."""
    from emotion_tl.evaluation.report import write_comparison_report, write_sources_report
    from emotion_tl.evaluation.repredict import restore_test_predictions
    from emotion_tl.evaluation.sources import read_sources, source_dir

    sources = read_sources(args.checkpoint_dir)
    folders = [source_dir(args.checkpoint_dir, s) for s in sources or []]
    for folder in folders or [args.checkpoint_dir]:
        restore_test_predictions(folder, args.data_dir)
    if sources:
        paths = write_sources_report(args.checkpoint_dir, sources)
    else:
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
    """`weights`: resolve each source model's pretrained weights (or --backbone's) and the face
    detector's model once (fetch or convert them) and say from where."""
    import time

    from emotion_tl.data.faces.detect import DETECTORS
    from emotion_tl.data.faces.model_file import face_model_path
    from emotion_tl.model.backbones import BACKBONES, DEFAULT_BACKBONE, load_backbone_weights
    from emotion_tl.model.weights import WeightsUnavailableError

    chosen = args.backbone is not None or args.weights
    names = [args.backbone or DEFAULT_BACKBONE] if chosen else list(BACKBONES)
    for name in names:
        start = time.perf_counter()
        try:
            weights = load_backbone_weights(
                True, args.weights, name, allow_download=not args.no_download
            )
        except WeightsUnavailableError as error:
            if chosen or name == DEFAULT_BACKBONE:
                raise
            # Another source's files: only a run with --backbone NAME needs them.
            print(f"weights of {name}: not available, needed only for --backbone {name}:\n{error}")
            continue
        seconds = time.perf_counter() - start
        print(f"weights of {name}: {weights.source} (resolved in {seconds:.2f} s)")
    for name, entry in DETECTORS.items():
        print(f"face detector {name}: {face_model_path(entry.model)}")
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
    from emotion_tl.storage import check_writable
    from emotion_tl.training import lr_find
    from emotion_tl.training.context import make_run_context

    cfg = config_from_args(args)
    check_writable(Path(cfg.checkpoint_dir))
    run = make_run_context(cfg)
    steps = args.steps or (lr_find.QUICK_STEPS if args.quick else lr_find.FULL_STEPS)
    for approach in cfg.approaches:
        finder_run = lr_find.quick_finder_run(run, approach) if args.quick else run
        finding = lr_find.find_learning_rate(
            finder_run, approach, steps=steps, start=args.start_lr, end=args.end_lr
        )
        paths = lr_find.write_lr_finding(finding, run.out_dir, approach)
        print(lr_find.describe_finding(finding, run.cfg, approach))
        print("Wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def run_sweep_file(args: argparse.Namespace) -> int:
    """`sweep`: a notebook over a parameter grid with papermill; sweep.csv and sweep.png."""
    from emotion_tl.sweep import run_sweep

    result = run_sweep(args.sweep_file)
    counts = result["counts"]
    print(
        f"Runs: {counts['done']} run now, {counts['skipped']} already done, "
        f"{counts['failed']} failed"
    )
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
    from emotion_tl.demo_faces.cli import run

    return run(args)


def run_export(args: argparse.Namespace) -> int:
    """`export`: a checkpoint as an ONNX model with its preprocessing in the metadata."""
    from emotion_tl.model.export import export_onnx

    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".onnx")
    export_onnx(args.checkpoint, out)
    print(
        f"Wrote {out} (input 'image': float32 batch x channels x size x size, normalised; output "
        "'logits'); predict with: python -m emotion_tl predict --checkpoint "
        f"{out} IMAGES"
    )
    return 0
