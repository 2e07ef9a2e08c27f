"""torchrun with two processes on the CPU (gloo): one split for all, rank 0's outputs only, models
that load and predict what the run reported, results close to a one-process run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from emotion_tl.cli import main
from emotion_tl.config import Config
from emotion_tl.data.loaders import choose_num_workers
from emotion_tl.distributed import ShardSampler, gather_shards
from emotion_tl.evaluation.predict import predict_paths
from emotion_tl.model.checkpoint import load_checkpoint
from tests.conftest import cli_args, make_image_folder, make_tiny_config


def run_torchrun(cfg: Config, *extra: str, processes: int = 2) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(processes), "-m", "emotion_tl", *cli_args(cfg, *extra),
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Config, Config, subprocess.CompletedProcess]:
    """The same small job run by one process and by two under torchrun."""
    root = tmp_path_factory.mktemp("distributed")
    images = make_image_folder(root / "images", {"circle": 14, "square": 14})
    one, two = (
        make_tiny_config(images, root / name, epochs=3, batch_size=4, face_crop="off")
        for name in ("one", "two")
    )
    assert main(cli_args(one, "--face_crop", "off")) == 0
    return one, two, run_torchrun(two, "--face_crop", "off")


def test_two_processes_finish_with_one_voice(two_runs):
    _, two, finished = two_runs
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Traceback" not in finished.stderr
    assert finished.stdout.count("best val acc") == 1  # the table, printed by rank 0 alone
    outputs = {p.name for p in Path(two.checkpoint_dir).iterdir()}
    for name in ("split.csv", "comparison.md", "frozen_weights_best.pt", "finetuning_final.pt"):
        assert name in outputs


def test_every_process_used_the_same_split(two_runs):
    one, two, _ = two_runs
    split_one = pd.read_csv(Path(one.checkpoint_dir) / "split.csv")
    split_two = pd.read_csv(Path(two.checkpoint_dir) / "split.csv")
    assert split_one.equals(split_two)


@pytest.mark.parametrize("prefix", ["frozen_weights", "finetuning"])
def test_checkpoints_load_and_predict_what_the_run_reported(two_runs, prefix):
    _, two, _ = two_runs
    out = Path(two.checkpoint_dir)
    best = load_checkpoint(out / f"{prefix}_best.pt")
    assert load_checkpoint(out / f"{prefix}_final.pt")["kind"] == "final"
    reported = pd.read_csv(out / f"{prefix}_test_predictions.csv")
    files = [str(Path(two.data_dir) / f) for f in reported["file"]]
    again = predict_paths([out / f"{prefix}_best.pt"], files, device="cpu", precision="fp32")
    columns = [c for c in reported.columns if c.startswith("prob_")]
    # Gathered from two shares, the test predictions are each image's own, in table order.
    np.testing.assert_allclose(again[columns].to_numpy(), reported[columns].to_numpy(), atol=1e-4)
    accuracy = (reported["label"] == reported["predicted"]).mean()
    assert best["metrics"]["test_acc"] == pytest.approx(accuracy)


def test_frozen_head_matches_one_process(two_runs):
    # Features computed in two shares and gathered, then the head trained alike on every
    # process: the same head as one process trains, up to float rounding.
    one, two, _ = two_runs
    heads = [
        load_checkpoint(Path(cfg.checkpoint_dir) / "frozen_weights_final.pt")["state_dict"]
        for cfg in (one, two)
    ]
    torch.testing.assert_close(heads[0]["fc.weight"], heads[1]["fc.weight"], atol=1e-4, rtol=1e-3)
    histories = [
        pd.read_csv(Path(cfg.checkpoint_dir) / "frozen_weights_history.csv") for cfg in (one, two)
    ]
    np.testing.assert_allclose(histories[0]["val_acc"], histories[1]["val_acc"])


def test_finetuning_learns_on_shares_of_the_data(two_runs):
    one, two, _ = two_runs
    history = pd.read_csv(Path(two.checkpoint_dir) / "finetuning_history.csv")
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    results = [
        load_checkpoint(Path(cfg.checkpoint_dir) / "finetuning_best.pt")["metrics"]
        for cfg in (one, two)
    ]
    # Validation: 2 images a category; close means at most one image apart.
    assert abs(results[0]["val_acc"] - results[1]["val_acc"]) <= 0.25 + 1e-9


def test_resume_is_refused_under_torchrun(tiny_config):
    refused = run_torchrun(tiny_config, "--resume")
    assert refused.returncode != 0
    assert "--resume continues a one-process run" in refused.stderr


def gather_in_process(rank: int, world: int, port: int, num_items: int, out: Path) -> None:
    """One of `world` processes: score its ShardSampler share, gather, save what it got."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        items = np.array(list(ShardSampler(num_items)), dtype=np.int64)
        # An empty share comes back from the model without a class dimension.
        scores = np.stack([items * 10.0, -items]).T if len(items) else np.zeros((0, 0))
        gathered_scores, gathered_items = gather_shards(scores, items)
        np.savez(out / f"{rank}.npz", scores=gathered_scores, items=gathered_items)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("num_items", [7, 1])
def test_shards_are_gathered_in_item_order(tmp_path, num_items):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    mp.spawn(gather_in_process, args=(2, port, num_items, tmp_path), nprocs=2)
    for rank in range(2):
        got = np.load(tmp_path / f"{rank}.npz")
        assert got["items"].tolist() == list(range(num_items))
        assert got["scores"].tolist() == [[10.0 * i, -i] for i in range(num_items)]


def test_other_commands_are_refused_under_torchrun(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it in each process
    status = main(["predict", "--checkpoint", str(tmp_path / "best.pt"), str(tmp_path)])
    assert status == 2
    assert "only training runs under torchrun" in caplog.text


def test_gpu_workers_share_the_machines_cores(monkeypatch):
    gpu = torch.device("cuda")  # only its type is read: no GPU needed
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert choose_num_workers(None, gpu) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # 8 processes on this machine
    assert choose_num_workers(None, gpu) == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert choose_num_workers(None, gpu) == 1
    assert choose_num_workers(None, torch.device("cpu")) == 0
    assert choose_num_workers(3, gpu) == 3
