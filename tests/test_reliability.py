"""Reliability: resume needs a run folder (kill and resume: test_kill_matrix.py), determinism, atomic checkpoints,
safe loading, a diverged run stopped with its step named, gradient clipping."""
import os
import pickle

import pytest
import torch

from mmsr_kit import make_config
from mmsr_kit.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from mmsr_kit.train import TrainingDiverged, fit


def test_resume_needs_a_run_folder_and_takes_no_overrides(tmp_path, capsys):
    from mmsr_kit.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["train", "--resume", str(tmp_path)])
    assert exit.value.code == 2 and "no config.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["train", "--resume", str(tmp_path), "--set", "train.epochs=3"])
    assert exit.value.code == 2 and "takes no --set" in capsys.readouterr().err


def test_the_same_config_and_seed_give_identical_metrics_twice():
    cfg = make_config("smoke", overrides={"model.mode": "mmsr", "model.text_encoder": "bow",
                                          "model.vision_encoder": "tiny-cnn", "train.epochs": 2})
    first, second = (fit(cfg, results=False, progress=False) for _ in range(2))
    for split in ("valid", "test", "cold"):
        assert first.metrics[split] == second.metrics[split]
    assert [h["loss"] for h in first.history] == [h["loss"] for h in second.history]


def test_a_non_finite_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch,
                                                                                           capsys):
    from mmsr_kit.model import Recommender

    forward, calls = Recommender.forward, []

    def poisoned(self, *args, **kwargs):
        calls.append(1)
        loss = forward(self, *args, **kwargs)
        return loss * float("nan") if len(calls) == 8 else loss

    monkeypatch.setattr(Recommender, "forward", poisoned)
    cfg = make_config("smoke", overrides={"train.batch_size": 32, "train.checkpoint_steps": 5})
    with pytest.raises(TrainingDiverged, match="non-finite at step 8 .epoch 1.*ckpt-000000005"):
        fit(cfg, out_dir=tmp_path / "run", results=False, progress=False)
    weights, *_ = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert all(torch.isfinite(w).all() for w in weights.values())

    from mmsr_kit.cli import main

    calls.clear()
    with pytest.raises(SystemExit) as exit:
        main(["train", "--preset", "smoke", "--set", "train.batch_size=32", "--no-log", "--quiet"])
    assert exit.value.code == 1
    assert "non-finite at step 8" in capsys.readouterr().err  # one line, no traceback


def test_an_interrupted_checkpoint_write_leaves_the_previous_one_as_latest(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    first = save_checkpoint(tmp_path, 5, model.state_dict(), None, optimizer, {"epoch": 1})
    real_save = torch.save

    def crash(obj, path, *args, **kwargs):
        if str(path).endswith("optimizer.pt"):
            raise KeyboardInterrupt  # as if killed halfway through writing checkpoint 10
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 10, model.state_dict(), None, optimizer, {"epoch": 2})
    assert latest_checkpoint(tmp_path) == first
    assert load_checkpoint(first)[3] == {"epoch": 1}
    monkeypatch.setattr(torch, "save", real_save)
    third = save_checkpoint(tmp_path, 15, model.state_dict(), None, optimizer, {"epoch": 3})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [first.name, third.name, "latest.json"]


class Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_checkpoints_load_without_unpickling_code(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path, 1, model.state_dict(), None, torch.optim.AdamW(model.parameters()), {})
    torch.save({"state": Payload()}, path / "optimizer.pt")  # a tampered file
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)


def test_gradients_are_clipped_to_train_grad_clip_and_the_norm_is_logged():
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from mmsr_kit.data import load_split
    from mmsr_kit.data.batches import TrainWindows
    from mmsr_kit.modes import build_model
    from mmsr_kit.train import train_epoch

    cfg = make_config("smoke")
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    windows = TrainWindows(data)
    loader = DataLoader(windows, batch_size=64, collate_fn=lambda idx: windows.collate(idx, distinct=True))
    seen = []

    class Recording(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()
                                                                     if p.grad is not None]))))
            return super().step(closure)

    optimizer = Recording(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    totals = train_epoch(model, loader, optimizer, scheduler, Accelerator(cpu=True), clip=1e-3)
    assert len(seen) == len(loader) and max(seen) <= 1e-3 * 1.001
    assert float(totals["grad_norm"]) / totals["steps"] > 1e-2  # the logged norm is the one before clipping
    seen.clear()
    train_epoch(model, loader, optimizer, scheduler, Accelerator(cpu=True))  # no clipping: the norms as they are
    assert min(seen) > 1e-2
