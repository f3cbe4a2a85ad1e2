"""The bag-of-tricks sweep: grid expansion, errors before any run, points x modes x seeds in the log, the pivot,
the `mmsr sweep` command and the trick panel."""
import json

import pytest

from mmsr_kit import make_config, read_results, sweep as sweep_module
from mmsr_kit.cli import main
from mmsr_kit.compare import table_from_log
from mmsr_kit.registry import ConfigError, UnknownNameError
from mmsr_kit.sweep import TRICKS, by_mode, grid, pivot, sweep, with_modes

FAST = {"train.epochs": 1, "model.text_encoder": "bow", "model.vision_encoder": "tiny-cnn", "model.fusion": "concat"}


def test_grid_is_the_cartesian_product_in_order_with_readable_labels():
    assert grid({"train.lr": [0.001, 0.0001], "train.encoder_lr": [0.0001, 1e-05]}) == {
        "lr=0.001, encoder_lr=0.0001": {"train.lr": 0.001, "train.encoder_lr": 0.0001},
        "lr=0.001, encoder_lr=1e-05": {"train.lr": 0.001, "train.encoder_lr": 1e-05},
        "lr=0.0001, encoder_lr=0.0001": {"train.lr": 0.0001, "train.encoder_lr": 0.0001},
        "lr=0.0001, encoder_lr=1e-05": {"train.lr": 0.0001, "train.encoder_lr": 1e-05},
    }
    assert list(grid({"train.lr": [1, 2], "train.encoder_lr": [3, 4]})) == [  # the last key varies fastest
        "lr=1, encoder_lr=3", "lr=1, encoder_lr=4", "lr=2, encoder_lr=3", "lr=2, encoder_lr=4"]
    assert grid({"model.text_len": [10]}) == {"text_len=10": {"model.text_len": 10}}
    assert grid({"model.text_blocks+model.vision_blocks": ["1", "all"]}) == {  # "a+b": both keys, one value
        "text_blocks+vision_blocks=1": {"model.text_blocks": "1", "model.vision_blocks": "1"},
        "text_blocks+vision_blocks=all": {"model.text_blocks": "all", "model.vision_blocks": "all"}}
    assert list(grid({"train.batch_size": [8], "eval.batch_size": [16]})) == [  # short names would clash
        "train.batch_size=8, eval.batch_size=16"]
    assert with_modes(grid({"model.text_len": [4, 8]}), ["mmsr_t", "mmsr"]) == {
        "mmsr_t · text_len=4": {"model.mode": "mmsr_t", "model.text_len": 4},
        "mmsr_t · text_len=8": {"model.mode": "mmsr_t", "model.text_len": 8},
        "mmsr · text_len=4": {"model.mode": "mmsr", "model.text_len": 4},
        "mmsr · text_len=8": {"model.mode": "mmsr", "model.text_len": 8}}
    for empty in ({}, {"model.text_len": []}, {"model.text_len": "10,30"}):
        with pytest.raises(ConfigError, match="at least one value"):
            grid(empty)


@pytest.mark.parametrize("knobs, message", [
    ({"model.text_lenn": [4, 8]}, "did you mean 'model.text_len'"),
    ({"model.text_len": [4, 0]}, "model.text_len must be at least 1"),  # the last point is wrong
    ({"model.mask_ratio": [0.5, "high"]}, "model.mask_ratio expects float"),
])
def test_a_wrong_key_or_value_fails_before_any_run(monkeypatch, tmp_path, knobs, message):
    import mmsr_kit.train

    def no_training(*_, **__):
        raise AssertionError("a run started")

    monkeypatch.setattr(mmsr_kit.train, "fit", no_training)
    with pytest.raises(ConfigError, match=message) as error:
        sweep("smoke", knobs, FAST, modes=["mmsr_t", "mmsr_v"], results=tmp_path / "r.jsonl")
    if isinstance(error.value, UnknownNameError):
        assert "model.text_encoder, model.text_len" in str(error.value)  # the valid keys are listed
    assert not (tmp_path / "r.jsonl").exists()


def test_every_trick_is_a_valid_config_for_each_mode_under_each_preset():
    for trick in TRICKS.values():
        for own in with_modes(grid(trick.knobs), trick.modes).values():
            for preset in ("smoke", "workshop", "paper"):
                make_config(preset, overrides={**trick.overrides, **own})


def test_fine_tuning_top_k_trains_fewer_parameters_than_all():
    """Top-k must differ from full fine-tuning with the CPU encoders (whose own default is: train everything)."""
    from mmsr_kit import load_split
    from mmsr_kit.modes import build_model

    trick, counts = TRICKS["fine-tuning"], {}
    for label, own in grid(trick.knobs).items():
        cfg = make_config("smoke", overrides={**FAST, **trick.overrides, **own, "model.mode": "mmsr"})
        model = build_model(cfg, load_split(cfg.data))
        counts[label] = (sum(p.numel() for p in model.items.text.parameters() if p.requires_grad),
                         sum(p.numel() for p in model.items.vision.parameters() if p.requires_grad))
    top, full = counts["text_blocks+vision_blocks=1"], counts["text_blocks+vision_blocks=all"]
    assert 0 < top[0] < full[0] and 0 < top[1] < full[1]


def test_a_sweep_logs_points_times_modes_times_seeds_and_its_table_is_the_logs(tmp_path):
    log = tmp_path / "results.jsonl"
    knobs, modes = {"model.text_len": [4, 8]}, ["mmsr_t", "mmsr"]
    table = sweep("smoke", knobs, FAST, seeds=(0, 1), modes=modes, results=log, tag="s1")
    runs = read_results(log)
    assert len(runs) == 2 * 2 * 2 and set(runs["compare.tag"]) == {"s1"}
    assert list(table.index) == ["mmsr_t · text_len=4", "mmsr_t · text_len=8",
                                 "mmsr · text_len=4", "mmsr · text_len=8"]
    assert table.attrs["seeds"] == dict.fromkeys(table.index, 2)
    for label, group in runs.groupby("compare.label"):  # each label's runs carry its config
        mode, length = label.split(" · text_len=")
        assert set(group["config.model.mode"]) == {mode} and set(group["config.model.text_len"]) == {int(length)}
    for label, group in runs.groupby("compare.label"):  # each cell is the mean over its label's logged seeds
        assert table.loc[label, ("ndcg@10", "mean")] == pytest.approx(group["metrics.test.ndcg@10"].mean(), rel=1e-12)
    per_mode = by_mode(table, knobs, modes)
    assert list(per_mode.index) == ["text_len=4", "text_len=8"]
    assert per_mode[("mmsr", "hr@10")].tolist() == table[("hr@10", "mean")].iloc[2:].tolist()


def test_the_cli_sweeps_a_two_key_grid_and_the_pivot_has_its_shape(tmp_path, capsys):
    log = tmp_path / "results.jsonl"
    main(["sweep", "--preset", "smoke", "--set", "train.epochs=1", "--grid", "train.lr=1e-3,1e-4",
          "--grid", "model.dropout=0.1,0.3", "--results", str(log), "--tag", "cli", "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()
    means = json.loads(out[-1])
    labels = ["lr=1e-3, dropout=0.1", "lr=1e-3, dropout=0.3", "lr=1e-4, dropout=0.1", "lr=1e-4, dropout=0.3"]
    assert list(means) == labels and len(read_results(log)) == 4
    table = table_from_log("cli", log)
    assert means["lr=1e-4, dropout=0.3"]["hr@10"] == pytest.approx(table.loc[labels[3], ("hr@10", "mean")], abs=1e-6)
    knobs = {"train.lr": ["1e-3", "1e-4"], "model.dropout": ["0.1", "0.3"]}
    matrix = pivot(table, knobs, "ndcg@10")
    assert matrix.shape == (2, 2) and matrix.index.name == "train.lr" and matrix.columns.name == "model.dropout"
    assert matrix.loc["1e-4", "0.1"] == table.loc["lr=1e-4, dropout=0.1", ("ndcg@10", "mean")]
    assert "model.dropout" in "\n".join(out)  # the pivot is printed too
    from mmsr_kit import viz

    assert viz.sweep_heatmap(matrix).data[0].z.shape == (2, 2)
    bars = viz.sweep_bars(table, knobs)
    assert list(bars.data[0].x) == labels and list(bars.data[0].y) == table[("hr@10", "mean")].tolist()
    with pytest.raises(ConfigError, match="two keys"):
        pivot(table, {"train.lr": ["1e-3", "1e-4"]})


def test_the_cli_runs_a_trick_with_its_modes_and_overrides(tmp_path, capsys):
    log = tmp_path / "results.jsonl"
    main(["sweep", "--preset", "smoke", "--trick", "mask ratio", "--grid", "model.mask_ratio=0.5", "--set",
          "train.epochs=1", "--set", "data.views=0", "--results", str(log), "--quiet"])
    assert list(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == [
        "mmsr_v · mask_ratio=0.5", "mmsr · mask_ratio=0.5"]
    runs = read_results(log)  # the trick's MAE encoder (any other refuses a mask ratio), the --set values
    assert set(runs["config.model.vision_encoder"]) == {"tiny-mae"} and set(runs["config.model.mask_ratio"]) == {0.5}
    assert set(runs["config.data.views"]) == {0}


@pytest.mark.parametrize("argv, message", [
    (["--grid", "model.text_lenn=4,8"], "did you mean 'model.text_len'"),
    (["--grid", "model.text_len"], "--grid expects KEY=V1,V2"),
    ([], "needs --grid"),
    (["--trick", "text lenght"], "unknown trick 'text lenght'"),
    (["--grid", "model.text_len=4,8", "--metric", "hr@5"], "unknown metric 'hr@5'"),
])
def test_cli_mistakes_exit_2_before_training(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--preset", "smoke", "--results", str(tmp_path / "r.jsonl"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def test_the_trick_panel_sweeps_the_selected_values(monkeypatch):
    from mmsr_kit.widgets import trick_panel

    calls = []
    monkeypatch.setattr(sweep_module, "sweep_trick", lambda *args: calls.append(args) or "table")
    panel = trick_panel("smoke", {"train.epochs": 1}, (0,), trick="mask ratio")
    values = panel.controls["values"]
    assert values.value == (("model.mask_ratio", 0.0), ("model.mask_ratio", 0.5), ("model.mask_ratio", 0.75))
    panel.controls["trick"].value = "learning rates"  # the values follow the trick
    assert [label for label, _ in values.options] == ["lr=0.001", "lr=0.0001", "encoder_lr=0.001", "encoder_lr=0.0001"]
    values.value = (("train.lr", 0.001), ("train.encoder_lr", 0.001), ("train.encoder_lr", 0.0001))
    panel.button.click()
    assert calls == [("learning rates", "smoke", {"train.lr": [0.001], "train.encoder_lr": [0.001, 0.0001]},
                      {"train.epochs": 1}, (0,), None)]
    assert panel.returned == ["table"] and panel.status.value == "done"
