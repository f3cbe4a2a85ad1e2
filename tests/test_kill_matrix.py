"""The kill matrix: a run stopped at every point where it can die, then resumed, ends bit for bit like a run that
was never stopped: final metrics, per-epoch losses and its results-log line (timings aside). The stops are
deterministic (`mmsr_kit.faults`: a named point raises in this process, or `os._exit`s a launched one), plus a
real SIGKILL at a random moment and a two-process launch."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from mmsr_kit import make_config
from mmsr_kit.checkpoint import latest_checkpoint
from mmsr_kit.faults import POINTS, SimulatedCrash
from mmsr_kit.results import read_records
from mmsr_kit.train import fit

TIMES = {"time", "wall_time_s", "train_time_s", "valid_time_s", "epoch_times_s", "sequences_per_s", "peak_memory_mb"}
STEPS_PER_EPOCH = 17  # 536 training windows of the smoke world, 32 a batch
NTH = {"step": 20, "between_steps": 20, "after_epoch_checkpoint": 1, "validation": 2, "checkpoint_write": 2,
       "final_evaluation": 1, "after_metrics": 1}  # the time a point is reached that the run dies at
MMSR = {"model.mode": "mmsr", "model.text_encoder": "bow", "model.vision_encoder": "tiny-cnn",
        "model.fusion": "concat"}  # per-encode views, noise, dropout: every source of randomness in a step
CELLS = [  # (mode overrides, train.checkpoint_steps, train.num_workers)
    (MMSR, 5, 0), (MMSR, None, 2), ({"model.mode": "idsr"}, 5, 2), ({"model.mode": "idsr"}, None, 0)]


def config(mode, checkpoint_steps, workers):
    return make_config("smoke", overrides={**mode, "train.epochs": 2, "train.batch_size": 32,
                                           "train.checkpoint_steps": checkpoint_steps, "train.num_workers": workers})


def untimed(tree):
    if isinstance(tree, dict):
        return {k: untimed(v) for k, v in tree.items() if k not in TIMES}
    return tree


def outcome(run_dir, log):
    """What must be equal: metrics and history as saved, and the one results-log line, all without timings."""
    lines = read_records(log)
    assert len(lines) == 1, f"{len(lines)} results-log lines"
    return (untimed(json.loads((run_dir / "metrics.json").read_text())),
            json.loads((run_dir / "history.json").read_text()), untimed(lines[0]))


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """An uninterrupted run per cell, made once."""
    done = {}

    def get(cell):
        key = repr(cell)
        if key not in done:
            folder = tmp_path_factory.mktemp("reference")
            fit(config(*cell), out_dir=folder / "run", results=folder / "log.jsonl", progress=False)
            done[key] = outcome(folder / "run", folder / "log.jsonl")
        return done[key]

    return get


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("cell", CELLS, ids=["mmsr-ckpt5-w0", "mmsr-epochs-w2", "idsr-ckpt5-w2", "idsr-epochs-w0"])
def test_a_run_stopped_at_any_point_resumes_to_an_uninterrupted_runs_outcome(point, cell, references, tmp_path,
                                                                            monkeypatch):
    cfg, run_dir, log = config(*cell), tmp_path / "run", tmp_path / "log.jsonl"
    monkeypatch.setenv("MMSR_CRASH_HOW", "raise")
    monkeypatch.setenv("MMSR_CRASH_AT", f"{point}:{NTH[point]}")
    with pytest.raises(SimulatedCrash):
        fit(cfg, out_dir=run_dir, results=log, progress=False)
    monkeypatch.delenv("MMSR_CRASH_AT")
    assert read_records(log) == []
    fit(cfg, out_dir=run_dir, results=log, progress=False, resume=True)
    got, want = outcome(run_dir, log), references(cell)
    assert got[1] == want[1]  # every epoch's loss, gradient norm, learning rate and validation metrics
    assert got[0] == want[0]  # test, cold and valid metrics, per popularity bucket, the weight sums ...
    assert got[2]["config"] == want[2]["config"] and got[2]["metrics"] == want[2]["metrics"]


FROZEN = {**MMSR, "model.text_encoder": "tiny-bert", "model.text_blocks": "1", "model.text_len": 10}


@pytest.mark.parametrize("point", ["step", "after_epoch_checkpoint"])
def test_a_run_with_a_frozen_prefix_cache_resumes_to_the_same_outcome(point, references, tmp_path, monkeypatch):
    """The states below tiny-bert's trained top block are cached per item and view: rebuilt on resume, equal."""
    cell = (FROZEN, 5, 0)
    monkeypatch.setenv("MMSR_CRASH_HOW", "raise")
    monkeypatch.setenv("MMSR_CRASH_AT", f"{point}:{NTH[point]}")
    with pytest.raises(SimulatedCrash):
        fit(config(*cell), out_dir=tmp_path / "run", results=tmp_path / "log.jsonl", progress=False)
    monkeypatch.delenv("MMSR_CRASH_AT")
    fit(config(*cell), out_dir=tmp_path / "run", results=tmp_path / "log.jsonl", progress=False, resume=True)
    assert outcome(tmp_path / "run", tmp_path / "log.jsonl") == references(cell)


def test_a_finished_run_resumed_trains_nothing_and_says_so(tmp_path, capsys, caplog):
    from mmsr_kit.cli import main

    cell = CELLS[3]
    cfg = config(*cell)
    fit(cfg, out_dir=tmp_path / "run", results=tmp_path / "log.jsonl", progress=False)
    saved = (tmp_path / "run" / "metrics.json").read_text()
    with caplog.at_level("WARNING", logger="mmsr_kit.train"):
        main(["train", "--resume", str(tmp_path / "run"), "--results", str(tmp_path / "log.jsonl"), "--quiet"])
    out = capsys.readouterr().out
    assert "is finished" in caplog.text and "nothing to train" in caplog.text
    assert json.loads(out.strip().splitlines()[-1]) == json.loads(saved)  # the saved metrics, timings included
    assert (tmp_path / "run" / "metrics.json").read_text() == saved
    assert len(read_records(tmp_path / "log.jsonl")) == 1  # not logged twice


def test_a_run_cut_by_the_epoch_cap_resumes_to_the_uncut_runs_metrics(references, tmp_path, monkeypatch):
    """The issue's case: the latest checkpoint is an epoch's (and metrics.json of the cut run is there)."""
    cell = CELLS[3]
    monkeypatch.setenv("MMSR_EPOCH_CAP", "1")
    first = fit(config(*cell), out_dir=tmp_path / "run", results=False, progress=False)
    assert first.metrics["complete"] is False and first.metrics["epochs_run"] == 1
    monkeypatch.delenv("MMSR_EPOCH_CAP")
    fit(config(*cell), out_dir=tmp_path / "run", results=tmp_path / "log.jsonl", progress=False, resume=True)
    got, want = outcome(tmp_path / "run", tmp_path / "log.jsonl"), references(cell)
    assert got[:2] == want[:2]


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(references, tmp_path, monkeypatch, caplog):
    cell = CELLS[0]
    monkeypatch.setenv("MMSR_CRASH_HOW", "raise")
    monkeypatch.setenv("MMSR_CRASH_AT", "between_steps:12")  # checkpoints after steps 5 and 10 are on disk
    with pytest.raises(SimulatedCrash):
        fit(config(*cell), out_dir=tmp_path / "run", results=False, progress=False)
    monkeypatch.delenv("MMSR_CRASH_AT")
    latest = latest_checkpoint(tmp_path / "run")
    assert latest.name == "ckpt-000000010"
    weights = latest / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF  # one flipped bit of a weight: same size, wrong checksum
    weights.write_bytes(bytes(blob))
    with caplog.at_level("WARNING", logger="mmsr_kit.checkpoint"):
        fit(config(*cell), out_dir=tmp_path / "run", results=tmp_path / "log.jsonl", progress=False, resume=True)
    assert "ckpt-000000010 is corrupt (model.safetensors does not match its recorded sha256): resuming from " \
           "ckpt-000000005" in caplog.text
    assert outcome(tmp_path / "run", tmp_path / "log.jsonl")[:2] == references(cell)[:2]


def test_a_checkpoint_whose_files_do_not_match_their_sizes_is_never_trained_on(tmp_path):
    from mmsr_kit.checkpoint import CorruptCheckpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    path = save_checkpoint(tmp_path, 5, model.state_dict(), None, optimizer, {"epoch": 1})
    with open(path / "optimizer.pt", "ab") as f:
        f.write(b"\0")  # a longer file than recorded
    with pytest.raises(CorruptCheckpoint, match="optimizer.pt has .* bytes, .* recorded"):
        latest_checkpoint(tmp_path, check=True)
    (path / "files.json").unlink()
    with pytest.raises(CorruptCheckpoint, match="files.json is missing"):
        latest_checkpoint(tmp_path, check=True)


CLI_RUN = ["--preset", "smoke", "--set", "model.mode=mmsr", "--set", "model.text_encoder=bow", "--set",
           "model.vision_encoder=tiny-cnn", "--set", "model.fusion=concat", "--set", "train.batch_size=32",
           "--set", "train.epochs=2", "--set", "train.checkpoint_steps=5", "--quiet"]


def cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "mmsr_kit.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kwargs)


def test_a_real_sigkill_at_a_random_moment_resumes_to_the_uninterrupted_outcome(tmp_path):
    reference = cli("train", *CLI_RUN, "--out", str(tmp_path / "reference"), "--results", str(tmp_path / "a.jsonl"))
    assert reference.returncode == 0, reference.stderr
    train_s = json.loads(reference.stdout.splitlines()[-1])["wall_time_s"]
    moment = random.Random().uniform(0.1, 1.0) * train_s  # after the imports: somewhere in the run
    print(f"SIGKILL {moment:.2f} s into the run ({train_s:.2f} s)")
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "mmsr_kit.cli", "train", *CLI_RUN, "--out", str(killed),
                                "--results", str(tmp_path / "b.jsonl")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "config.yaml").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)  # config.yaml is written once the run has started (imports done)
    time.sleep(moment)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = cli("train", "--resume", str(killed), "--results", str(tmp_path / "b.jsonl"))
    assert resumed.returncode == 0, resumed.stderr
    assert outcome(killed, tmp_path / "b.jsonl") == outcome(tmp_path / "reference", tmp_path / "a.jsonl")


def torchrun(*args, env=None):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29519", "-m", "mmsr_kit.cli", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_two_processes_stopped_and_resumed_end_like_two_uninterrupted_ones(tmp_path):
    done = torchrun("train", *CLI_RUN, "--out", str(tmp_path / "reference"), "--results", str(tmp_path / "a.jsonl"))
    assert done.returncode == 0, done.stderr[-3000:]
    want = outcome(tmp_path / "reference", tmp_path / "a.jsonl")
    assert want[0]["processes"] == 2
    for point in ("between_steps:8", "after_epoch_checkpoint:1"):  # both ranks die there
        killed, log = tmp_path / point.replace(":", "-"), tmp_path / f"{point.replace(':', '-')}.jsonl"
        crashed = torchrun("train", *CLI_RUN, "--out", str(killed), "--results", str(log),
                           env={"MMSR_CRASH_AT": point})
        assert crashed.returncode != 0 and not (killed / "metrics.json").exists(), point
        resumed = torchrun("train", "--resume", str(killed), "--results", str(log))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert outcome(killed, log) == want, point
