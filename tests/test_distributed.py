"""Two processes on CPU (torchrun, gloo): the weights stay identical across ranks and the evaluation equals a
one-process evaluation of the same weights: no user counted twice or missed."""
import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from mmsr_kit.config import from_yaml
from mmsr_kit.data import load_split
from mmsr_kit.evaluate import full_ranking_metrics
from mmsr_kit.modes import build_model


def test_two_processes_train_in_sync_and_evaluate_like_one(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "mmsr_kit.cli", "train", "--preset", "smoke", "--set", "model.mode=mmsr", "--set",
         "model.text_encoder=bow", "--set", "model.vision_encoder=tiny-cnn", "--set", "train.epochs=2",
         "--out", str(out), "--no-log", "--quiet"], capture_output=True, text=True, env=env, timeout=600)
    assert launch.returncode == 0, launch.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2  # really two processes, not one or two unsynced copies
    assert len(metrics["weight_sums"]) == 2 and metrics["weight_sums"][0] == metrics["weight_sums"][1]

    cfg = from_yaml(out / "config.yaml")
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    model.load_state_dict(load_file(str(out / "model.safetensors")))
    for split, evalset in (("valid", data.valid), ("test", data.test), ("cold", data.cold_test)):
        alone = full_ranking_metrics(model, evalset, data.n_items, cfg.eval.ks, cfg.eval.batch_size)
        assert metrics[split]["n"] == alone["n"] == len(evalset)  # every case once
        for name, value in alone.items():
            assert metrics[split][name] == pytest.approx(value, rel=1e-9, abs=1e-12), (split, name)
