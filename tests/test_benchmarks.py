"""The benchmarks run end to end at a tiny size (their numbers are for the closing notes, not asserted here)."""
import argparse
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))


def test_gpu_check_runs_at_cpu_size(capsys):
    import gpu_check

    gpu_check.main(["--tiny", "--steps", "1"])
    out = capsys.readouterr().out
    assert "speed-up (sequences/s, kit default / reference)" in out
    for row in ("reference", "kit default", "trained-like", "uniform"):
        assert row in out, row


def test_gpu_check_on_a_cpu_times_the_kit_path_alone_and_an_epoch(capsys):
    import gpu_check

    gpu_check.main(["--tiny", "--cpu"])
    out = capsys.readouterr().out
    assert "kit default" in out and "an epoch of this world" in out
    assert "reference" not in out and "speed-up" not in out and "users/s" not in out  # no evaluation either


def test_gpu_check_refuses_base_size_without_a_gpu():
    import gpu_check
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(SystemExit, match="needs a CUDA device"):
        gpu_check.main([])


def test_train_and_data_benchmarks_run(capsys):
    import data_speed
    import train_speed

    train_speed.main(["--preset", "smoke", "--mode", "mmsr_t", "--steps", "2", "--no-memory",
                      "--set", "model.text_encoder=bow"])
    data_speed.main(["--items", "12", "--occurrences", "16", "--size", "32", "--batch", "8"])
    out = capsys.readouterr().out
    assert "kit default" in out and "kit store" in out and "JPEG, PIL" in out


def test_the_neighbours_benchmark_puts_the_three_paths_side_by_side(capsys):
    import neighbours_speed

    neighbours_speed.main(["--items", "3000", "--queries", "20", "--width", "8"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("3,000")]
    assert [r[1:3] if r[1] == "faiss" else r[1:2] for r in rows] == [["matmul"], ["faiss", "flat"], ["faiss", "ivf"]]
    assert rows[0][-2] == rows[1][-2] == "1.000" and 0 < float(rows[2][-2]) <= 1  # exact twice; IVF measured


def test_prepare_benchmark_runs_at_a_tiny_scale(tmp_path, capsys):
    import json

    import prepare_hm

    rc = prepare_hm.main(["--scale", "0.0002", "--folder", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                          "--image-size", "8", "--workers", "1", "--replace-out"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and report["prepare_rc"] == 0
    assert report["input_rows"]["transactions_train.csv"] == round(31_788_324 * 0.0002)
    assert 0 < report["prepare_report"]["users"] <= round(200_000 * 0.0002) and report["peak_rss_tree_kib"] > 0


def test_notebook_times_extrapolates_capped_runs_by_their_time_per_epoch():
    import notebook_times

    def row(epochs, run, train, valid):
        return {"config": {"train": {"epochs": epochs}},
                "metrics": {"epochs_run": run, "train_time_s": train, "valid_time_s": valid}}

    rows = [row(10, 1, 6.0, 2.0),  # capped at 1: 9 missing epochs at (6 + 2) / 1 = 8 s each
            row(5, 5, 50.0, 5.0),  # ran in full: nothing missing
            row(150, 0, 0.0, 0.0)]  # MostPop: nothing to train, not planned
    assert notebook_times.estimate(rows) == (15, 6, 72.0)
    rows[0]["metrics"].update(epochs_run=2, epoch_times_s=[7.0, 3.0])  # past the first (warm-up) epoch: the last one
    assert notebook_times.estimate(rows) == (15, 7, 24.0)


def test_epoch_profile_counts_every_step_and_its_parts(capsys):
    import math

    import epoch_profile
    from mmsr_kit import load_split, make_config
    from mmsr_kit.data.batches import TrainWindows

    rows = epoch_profile.main(["--preset", "smoke", "--modes", "idsr", "mmsr_t", "--epochs", "1",
                               "--set", "model.text_encoder=bow", "--set", "train.batch_size=100"])
    windows = len(TrainWindows(load_split(make_config("smoke").data)))
    for mode, row in rows.items():
        assert row["steps"] == math.ceil(windows / 100), mode
        assert 0 < row["items"] <= row["catalogue"] == 300
        parts = row["forward"] + row["backward"] + row["optimizer"] + row["data"]
        assert 0 < parts <= row["epoch"] * 1.001 and row["encode"] <= row["forward"] and row["valid"] > 0
    assert rows["mmsr_t"]["encode"] > 0
    out = capsys.readouterr().out
    assert "items/step" in out and "mmsr_t" in out


def test_step_speed_builds_the_old_and_the_new_path_from_one_seed(capsys):
    import step_speed
    from mmsr_kit.layers import Dropout

    old, new = (step_speed.Trainer(path, "mmsr", argparse.Namespace(preset="smoke", set=[])) for path in ("old", "new"))
    assert (old.cfg.model.text_encoder, old.cfg.model.vision_encoder) == ("bow", "tiny-cnn-64")
    assert (new.cfg.model.text_encoder, new.cfg.model.vision_encoder) == ("bag", "tiny-cnn")
    kinds = lambda t: {type(m) for m in t.model.modules() if isinstance(m, torch.nn.Dropout)}  # noqa: E731
    assert kinds(old) == {torch.nn.Dropout} and kinds(new) == {Dropout}
    assert old.cfg.train == new.cfg.train and old.cfg.data == new.cfg.data  # only the encoders and dropout differ
    rows = step_speed.main(["--preset", "smoke", "--modes", "idsr", "mmsr", "--steps", "1"])
    assert set(rows) == {"idsr", "mmsr"} and all(r[p]["epoch"] > 0 and r[p]["valid"] > 0 for r in rows.values() for p in r)
    out = capsys.readouterr().out
    assert "old s/epoch" in out and "speed-up" in out


def test_the_movielens_text_benchmark_logs_each_run_and_tabulates_the_log(tmp_path, capsys):
    import ml100k_text

    log = tmp_path / "log.jsonl"
    ml100k_text.main(["--tiny", "--adaptors", "linear", "moe", "--workers", "1", "--results", str(log)])
    out = capsys.readouterr().out
    rows = [line.split(" | ")[0].strip("| ") for line in out.splitlines() if line.startswith("| ")][1:]
    assert rows == ["IDSR", "MMSR-T minilm frozen, linear", "MMSR-T minilm frozen, moe"]
    assert "(1 seed)" in out and "1.00x" in out
    ml100k_text.main(["--from-log", str(log)])
    again = capsys.readouterr().out
    assert [line for line in again.splitlines() if line.startswith("|")] == [
        line for line in out.splitlines() if line.startswith("|")]


def test_the_movielens_text_benchmark_makes_the_runs_of_notebook_03s_reference_lines():
    import ml100k_text

    from mmsr_kit import make_config
    from mmsr_kit.results import REFERENCE, config_of, read_records

    lines = [line for line in read_records(REFERENCE / "03_architectures.jsonl")
             if line["compare"]["tag"] == "reference-03-ml100k-adaptors"]
    made = {make_config("workshop", overrides={"data.name": "ml-100k", "train.epochs": 40, **own, "train.seed": seed})
            .hash(): label for label, own in ml100k_text.models(False, ["linear", "mlp", "moe", "whiten"]).items()
            for seed in (0, 1, 2)}
    assert {config_of(line).hash(): line["compare"]["label"] for line in lines} == made  # each row, each seed


def test_the_movielens_text_benchmark_needs_a_gpu_for_minilms_trained_blocks():
    import ml100k_text

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(SystemExit, match="--gpu needs a CUDA device"):
        ml100k_text.main(["--gpu"])
    assert list(ml100k_text.models(True, ["linear", "moe"]))[-2:] == ["MMSR-T minilm top 2, linear",
                                                                      "MMSR-T minilm top 2, moe"]
