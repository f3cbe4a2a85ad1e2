"""Training end to end: every sequence model on both embedded sources, determinism, the schedule."""
import json

import pytest
import torch

from mmsr_kit import fit, read_results
from mmsr_kit.config import TrainConfig
from mmsr_kit.train import lr_lambda, param_groups


@pytest.mark.parametrize("dataset", ["synthetic", "ml-100k"])
@pytest.mark.parametrize("sequence", ["sasrec", "gru4rec", "nextitnet"])
def test_every_sequence_model_trains_on_both_sources(smoke_config, dataset, sequence):
    cfg = smoke_config(data__name=dataset, model__sequence=sequence, train__epochs=2)
    run = fit(cfg, results=False, progress=False)
    assert len(run.history) == 2 and run.history[1]["loss"] < run.history[0]["loss"] + 0.05
    for split in ("valid", "test"):
        assert run.metrics[split]["n"] == run.data.stats["users"]
        assert 0 <= run.metrics[split]["ndcg@10"] <= run.metrics[split]["hr@10"] <= run.metrics[split]["hr@50"] <= 1
    assert run.metrics["cold"]["n"] == run.data.stats["cold_cases"]
    assert run.metrics["cold_test"]["n"] == run.data.stats["cold_cases_test"] < run.metrics["cold"]["n"]
    assert run.metrics["cold_paper"]["n"] == run.data.stats["cold_cases_paper"] > run.metrics["cold"]["n"]


def test_same_seed_same_metrics(smoke_config):
    cfg = smoke_config(train__epochs=2)
    a = fit(cfg, results=False, progress=False)
    b = fit(cfg, results=False, progress=False)
    assert a.metrics["test"] == b.metrics["test"] and a.history == b.history
    c = fit(smoke_config(train__epochs=2, train__seed=1), results=False, progress=False)
    assert c.history != a.history


def test_best_checkpoint_is_the_one_tested(smoke_config, tmp_path):
    run = fit(smoke_config(train__epochs=4), out_dir=tmp_path, results=tmp_path / "log.jsonl", progress=False)
    best = max(run.history, key=lambda r: r["valid_ndcg@10"])
    assert run.metrics["best_epoch"] == best["epoch"]
    assert run.metrics["valid"]["ndcg@10"] == pytest.approx(best["valid_ndcg@10"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test"] == run.metrics["test"]
    log = read_results(tmp_path / "log.jsonl")
    assert len(log) == 1 and log["config_hash"][0] == run.config.hash()
    assert log["metrics.test.hr@10"][0] == run.metrics["test"]["hr@10"]


def test_patience_stops_early(smoke_config):
    run = fit(smoke_config(train__epochs=30, train__patience=1, train__lr=0.5), results=False, progress=False)
    assert run.metrics["epochs_run"] < 30


def test_epoch_cap_cuts_a_run_without_changing_its_config_or_schedule(smoke_config, monkeypatch):
    full = fit(smoke_config(train__epochs=3), results=False, progress=False)
    monkeypatch.setenv("MMSR_EPOCH_CAP", "2")
    capped = fit(smoke_config(train__epochs=3), results=False, progress=False)
    assert capped.config.train.epochs == 3 and capped.metrics["epochs_run"] == 2
    assert capped.history == full.history[:2]  # the same losses, learning rates and validations so far
    assert 0 < capped.metrics["valid_time_s"] < capped.metrics["wall_time_s"]
    assert len(capped.metrics["epoch_times_s"]) == 2
    assert sum(capped.metrics["epoch_times_s"]) == pytest.approx(
        capped.metrics["train_time_s"] + capped.metrics["valid_time_s"], rel=0.05)
    monkeypatch.setenv("MMSR_EPOCH_CAP", "two")
    with pytest.raises(ValueError, match="MMSR_EPOCH_CAP"):
        fit(smoke_config(train__epochs=3), results=False, progress=False)


def test_mostpop_needs_no_training(smoke_config):
    run = fit(smoke_config(model__mode="mostpop"), results=False, progress=False)
    assert run.history == [] and run.metrics["test"]["n"] > 0


def test_schedule_is_flat_then_linear_to_ten_percent():
    f = lr_lambda(TrainConfig(epochs=10, decay_after=8, final_lr_ratio=0.1), steps_per_epoch=5)
    assert f(0) == 1 and f(39) == 1
    assert f(45) == pytest.approx(1 - 0.9 * 5 / 10)
    assert f(50) == pytest.approx(0.1)
    g = lr_lambda(TrainConfig(epochs=150), steps_per_epoch=1)  # default: decay after 80% (the paper's 120)
    assert g(119) == 1 and g(150) == pytest.approx(0.1)


def test_param_groups_split_encoders_from_the_rest():
    class Items(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pretrained = torch.nn.Linear(3, 3)
            self.head = torch.nn.Linear(3, 3)

        def encoder_parameters(self):
            return self.pretrained.parameters()

    model = torch.nn.Module()
    model.items = Items()
    groups = {g["name"]: g for g in param_groups(model, TrainConfig(lr=1e-3, encoder_lr=5e-5, weight_decay=0.1))}
    assert len(groups["encoder"]["params"]) == 2 and groups["encoder"]["lr"] == 5e-5
    assert groups["encoder"]["weight_decay"] == 0
    assert groups["decay"]["params"] == [model.items.head.weight] and groups["decay"]["weight_decay"] == 0.1
    assert groups["no_decay"]["params"] == [model.items.head.bias]


def test_a_second_run_may_change_accelerate_settings(smoke_config):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    Accelerator(cpu=True, mixed_precision="bf16")  # what a bf16 run on a GPU leaves behind in a notebook
    run = fit(smoke_config(train__epochs=1), results=False, progress=False)  # asks for mixed_precision="no"
    assert run.metrics["test"]["n"] > 0


def test_compiled_parts_keep_their_names_and_results(smoke_config):
    """train.compile compiles the sequence encoder and the fusion in place: the same parameter names (checkpoints
    load either way) and the same loss (the eager backend here: inductor takes minutes on a CPU)."""
    from mmsr_kit import load_split
    from mmsr_kit.data.batches import TrainWindows
    from mmsr_kit.modes import build_model
    from mmsr_kit.train import compile_parts

    cfg = smoke_config(model__mode="mmsr", model__text_encoder="bow", model__vision_encoder="tiny-cnn",
                       model__fusion="merge_attention_1", model__dropout=0.0)
    data = load_split(cfg.data)
    batch = TrainWindows(data).collate(list(range(8)))
    torch.manual_seed(0)
    plain = build_model(cfg, data).eval()
    torch.manual_seed(0)
    compiled = compile_parts(build_model(cfg, data), backend="eager").eval()
    assert list(compiled.state_dict()) == list(plain.state_dict())
    assert compiled.sequence._compiled_call_impl is not None and compiled.items.fusion._compiled_call_impl is not None
    assert torch.allclose(compiled(*batch), plain(*batch))
