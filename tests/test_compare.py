"""The Table 5 runner: several seeds per configuration, mean and spread, best marked, and the same table from the
results log alone."""
import json
import logging
import re

import numpy as np
import pytest

from mmsr_kit import read_results
from mmsr_kit.cli import main
from mmsr_kit.compare import (compare, improvement, popularity_table, render, seed_table, table_from_log,
                              transfer_pivot, transfer_study)
from mmsr_kit.config import make_config
from mmsr_kit.results import read_records, reference_lines
from mmsr_kit.registry import ConfigError

FAST = {"train.epochs": 1, "model.text_encoder": "bow", "model.vision_encoder": "tiny-cnn"}
MODELS = {"SASRec": {"model.mode": "idsr"}, "MMSR": {"model.mode": "mmsr", "model.fusion": "concat"}}


def test_compare_gives_mean_and_spread_over_seeds_and_the_log_gives_it_back(tmp_path, capsys):
    log = tmp_path / "results.jsonl"
    table = compare("smoke", FAST, seeds=(0, 1, 2), models=MODELS, results=log, tag="t1")
    assert list(table.index) == ["SASRec", "MMSR"] and table.attrs["seeds"] == {"SASRec": 3, "MMSR": 3}
    runs = read_results(log)
    assert len(runs) == 6 and set(runs["compare.label"]) == {"SASRec", "MMSR"}
    for label in ("SASRec", "MMSR"):  # against a hand computation from the log
        values = runs.loc[runs["compare.label"] == label, "metrics.test.ndcg@10"]
        assert table.loc[label, ("ndcg@10", "mean")] == pytest.approx(values.mean())
        assert table.loc[label, ("ndcg@10", "std")] == pytest.approx(values.std(ddof=1))
    assert (table.xs("std", axis=1, level=1) > 0).any().any()  # seeds differ
    gain = improvement(table)
    means = table.xs("mean", axis=1, level=1)
    assert gain["hr@10"] == pytest.approx(100 * (means.loc["MMSR", "hr@10"] / means.loc["SASRec", "hr@10"] - 1))
    text = render(table)
    best = means["hr@20"].idxmax()
    assert text.loc[best, "hr@20"].startswith("**") and "MMSR vs best other" in text.index
    # the CLI prints the same table from the log, metrics JSON on the last line
    main(["compare", "--from-log", "--tag", "t1", "--results", str(log)])
    out = capsys.readouterr().out.strip().splitlines()
    assert "mean ± std over 3 seeds" in out[0]
    assert json.loads(out[-1])["MMSR"]["hr@10"] == pytest.approx(means.loc["MMSR", "hr@10"], abs=1e-6)  # 6 decimals
    # rows gathered by a notebook (runs trained now beside reference lines): every cell against numpy
    by_label = {}
    for line in read_records(log):
        by_label.setdefault(line["compare"]["label"], []).append(line["metrics"])
    gathered = seed_table({"MMSR": by_label["MMSR"][:2], "SASRec": by_label["SASRec"]}, split="cold")
    for label, lines in (("MMSR", by_label["MMSR"][:2]), ("SASRec", by_label["SASRec"])):
        for metric in ("hr@10", "hr@20", "hr@50", "ndcg@10", "ndcg@20", "ndcg@50"):
            values = np.array([m["cold"][metric] for m in lines])
            assert gathered.loc[label, (metric, "mean")] == pytest.approx(values.mean(), rel=1e-12)
            assert gathered.loc[label, (metric, "std")] == pytest.approx(values.std(ddof=1), rel=1e-12)
    assert list(gathered.index) == ["MMSR", "SASRec"] and gathered.attrs["seeds"] == {"MMSR": 2, "SASRec": 3}
    one = seed_table({"SASRec": by_label["SASRec"][:1]})
    assert np.isnan(one.loc["SASRec", ("hr@10", "std")]) and "(1 seed)" in render(one).loc["SASRec", "hr@10"]
    with pytest.raises(ValueError, match="at least one run"):
        seed_table({"SASRec": []})
    # and a notebook finds the reference line of each config it would train by the config's hash
    wanted = {(label, seed): make_config("smoke", overrides={**FAST, **MODELS[label], "train.seed": seed})
              for label in MODELS for seed in (0, 7)}
    found = reference_lines(log, wanted)
    assert sorted(found) == [("MMSR", 0), ("SASRec", 0)]  # seed 7 was never trained
    assert all(line["compare"]["label"] == label and line["compare"]["seed"] == 0
               for (label, _), line in found.items())


def test_workers_train_the_same_runs_and_log_them_in_the_same_order(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("MMSR_RESULTS", str(tmp_path / "unused.jsonl"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers get 2 // 2 = 1 thread each: the same arithmetic as this process
    try:
        one = compare("smoke", FAST, seeds=(0, 1), models=MODELS, results=tmp_path / "one.jsonl", tag="one")
        torch.set_num_threads(2)
        seen = []
        two = compare("smoke", FAST, seeds=(0, 1), models=MODELS, results=tmp_path / "two.jsonl", tag="two", workers=2,
                      on_run=lambda label, seed, run: seen.append((label, seed, run.metrics["test"]["hr@10"])))
    finally:
        torch.set_num_threads(threads)
    assert two.equals(one)
    runs = read_results(tmp_path / "two.jsonl")
    assert list(zip(runs["compare.label"], runs["compare.seed"])) == [("SASRec", 0), ("SASRec", 1), ("MMSR", 0), ("MMSR", 1)]
    assert [(label, seed) for label, seed, _ in seen] == list(zip(runs["compare.label"], runs["compare.seed"]))
    assert [hr for *_, hr in seen] == list(runs["metrics.test.hr@10"])


def test_models_that_need_pictures_are_skipped_with_a_reason(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mmsr_kit.compare"):
        table = compare("smoke", {**FAST, "data.name": "ml-100k"}, seeds=(0,), models=MODELS,
                        results=tmp_path / "r.jsonl", tag="t2")
    assert list(table.index) == ["SASRec"]
    assert "MMSR skipped: model.mode=mmsr needs pictures and ml-100k has none" in caplog.text


def test_an_unknown_comparison_or_model_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no comparison 'nope'"):
        table_from_log("nope", tmp_path / "none.jsonl")
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--models", "SASrec", "--results", str(tmp_path / "r.jsonl")])
    assert exit_.value.code == 2


def test_the_plotly_table_marks_best_and_second():
    import numpy as np
    import pandas as pd

    from mmsr_kit.viz import comparison_table

    columns = pd.MultiIndex.from_product([["hr@10", "ndcg@10"], ["mean", "std"]])
    table = pd.DataFrame([[0.1, 0.01, 0.05, 0.005], [0.2, 0.02, 0.07, 0.004], [0.15, np.nan, 0.06, 0.001]],
                         index=["SASRec", "MMSR", "FDSA"], columns=columns)
    labels, hr, ndcg = comparison_table(table).data[0].cells.values
    assert labels[-1] == "MMSR vs best other" and hr[-1] == "+33.33%" and ndcg[-1] == "+16.67%"
    assert hr[1] == "<b>0.2000 ± 0.0200</b>" and hr[2] == "<i>0.1500 (1 seed)</i>" and hr[0] == "0.1000 ± 0.0100"  # NaN std: 1 seed

    # in a notebook: the same cells, bold and italics as CSS of a pandas Styler, no markers in the text
    from mmsr_kit.compare import styled

    style = styled(table)
    assert list(style.data["hr@10"]) == ["0.1000 ± 0.0100", "0.2000 ± 0.0200", "0.1500 (1 seed)", "+33.33%"]
    html = style.set_uuid("t").to_html()
    assert "**" not in html
    rules = dict((props.strip(), sel) for sel, props in re.findall(r"([^{}]+)\{([^{}]+)\}", html.split("</style>")[0]))
    bold, italic = rules["font-weight: bold;"], rules["font-style: italic;"]  # which cells each rule styles
    assert set(re.findall(r"row(\d)_col(\d)", bold)) == {("1", "0"), ("1", "1")}  # MMSR: best in both metrics
    assert set(re.findall(r"row(\d)_col(\d)", italic)) == {("2", "0"), ("2", "1")}  # FDSA second; gain row plain


def test_table5_morec_differs_from_mmsr_under_every_preset():
    """The workshop preset's MMSR fuses by concat: MoRec++ must not silently become the same model."""
    from mmsr_kit.compare import TABLE5
    from mmsr_kit.config import make_config

    for preset in ("smoke", "workshop", "paper"):
        morec = make_config(preset, overrides=TABLE5["MoRec++"])
        mmsr = make_config(preset, overrides=TABLE5["MMSR"])
        assert morec.model.fusion == "sum" and mmsr.model.fusion != "sum"


def test_a_row_of_one_seed_says_so_instead_of_a_zero_spread(tmp_path):
    table = compare("smoke", FAST, seeds=(0,), models={"SASRec": MODELS["SASRec"]}, results=tmp_path / "r.jsonl")
    text = render(table)
    assert table.attrs["seeds"] == {"SASRec": 1}
    assert text.loc["SASRec", "hr@10"].strip("*_") == f"{table.loc['SASRec', ('hr@10', 'mean')]:.4f} (1 seed)"
    assert not text.stack().str.contains("±").any()


def test_popularity_table_is_the_runs_per_bucket_metrics(tmp_path):
    log = tmp_path / "results.jsonl"
    seen = {}
    compare("smoke", FAST, seeds=(0, 1), models=MODELS, results=log, tag="p",
            on_run=lambda label, seed, run: seen.setdefault(label, []).append(run.metrics["popularity"]))
    table = popularity_table("p", log, metric="ndcg@10")
    assert list(table.index) == ["SASRec", "MMSR"] and list(table.columns) == ["0", "1-4", "5-9", "10-49", "50+"]
    for label, runs in seen.items():
        for bucket in table.columns:
            values = [r[bucket].get("ndcg@10") for r in runs]
            if values[0] is None:  # a bucket without test cases has no metric
                assert np.isnan(table.loc[label, bucket])
            else:
                assert table.loc[label, bucket] == pytest.approx(np.mean(values))
    assert table.attrs["cases"] == {b: seen["MMSR"][0][b]["n"] for b in table.columns}


def test_transfer_study_runs_every_start_logs_it_and_reuses_finished_sources(tmp_path):
    import torch

    log, work = tmp_path / "results.jsonl", tmp_path / "work"
    sources = {"shop-100": {"data.n_users": 100}, "shop-200": {"data.n_users": 200}}
    targets = {"video-100": {"data.domain": "video", "data.world_seed": 1, "data.n_users": 100}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the arithmetic of each of the two one-thread workers below
    try:
        table, curves = transfer_study("smoke", sources, targets, work, overrides=FAST, results=log, tag="tr")
    finally:
        torch.set_num_threads(threads)
    starts = ["shop-100", "shop-200", "IDSR shop-100", "scratch", "IDSR scratch"]
    assert list(table.index) == [f"{s} → video-100" for s in starts] and set(curves) == set(table.index)
    runs = read_results(log)
    assert list(runs.loc[runs["compare.tag"] == "tr/pretrain", "compare.label"]) == ["shop-100", "shop-200",
                                                                                     "IDSR shop-100"]
    fine_tuned = runs[runs["compare.label"] == "shop-200 → video-100"].iloc[0]
    assert fine_tuned["metrics.init_from.source"] == str(work / "shop-200")
    assert fine_tuned["config.data.domain"] == "video" and fine_tuned["config.model.mode"] == "mmsr"
    idsr = runs[runs["compare.label"] == "IDSR shop-100 → video-100"].iloc[0]
    assert idsr["metrics.init_from.skipped"] == 1  # its item table stayed behind
    pivot = transfer_pivot(table, "hr@10")
    assert list(pivot.index) == starts and list(pivot.columns) == ["video-100"]
    assert pivot.loc["scratch", "video-100"] == table.loc["scratch → video-100", ("hr@10", "mean")]
    torch.set_num_threads(2)  # two workers of one thread each
    try:
        table2, curves2 = transfer_study("smoke", sources, targets, work, overrides=FAST, results=log, tag="again",
                                         workers=2)
    finally:
        torch.set_num_threads(threads)
    again = read_results(log)
    assert "again/pretrain" not in set(again["compare.tag"])  # the finished sources were reused
    assert table2.equals(table)  # the target runs two at a time: the same runs ...
    valid = lambda c: {label: [e["valid_hr@10"] for e in history] for label, history in c.items()}  # noqa: E731
    assert valid(curves2) == valid(curves)  # ... epoch by epoch


def test_a_log_line_trains_again_from_its_config_and_the_reference_logs_still_load(tmp_path):
    from mmsr_kit import make_config
    from mmsr_kit.config import from_yaml
    from mmsr_kit.fusion import FUSIONS
    from mmsr_kit.results import REFERENCE, append_result, config_of, read_records

    cfg = make_config("workshop", overrides={"model.fusion": "film", "train.seed": 3, "data.n_users": 700})
    append_result(cfg, {"test": {"hr@10": 0.5}}, path=tmp_path / "log.jsonl")
    again = config_of(read_records(tmp_path / "log.jsonl")[0])
    assert again.hash() == cfg.hash() and again.model.fusion == "film" and again.data.n_users == 700
    again.save(tmp_path / "film.yaml")
    assert from_yaml(tmp_path / "film.yaml").hash() == cfg.hash()  # what `mmsr train --config film.yaml` trains
    logs = sorted(REFERENCE.glob("*.jsonl"))
    assert logs, REFERENCE
    for path in logs:  # every committed reference line still loads, each of its settings meaning what it meant
        for line in read_records(path):
            loaded = config_of(line).to_dict()
            assert {part: {k: loaded[part][k] for k in values} if isinstance(values, dict) else loaded[part]
                    for part, values in line["config"].items()} == line["config"], path
            m = line["config"]["model"]  # a line from before model.adaptor ran `linear`: what `auto` is for it
            frozen = m["mode"] in ("mmsr_t", "mmsr_v", "vlp") and "0" in {
                str(m.get(k)) for k in ("text_blocks", "vision_blocks", "vlp_blocks")}
            assert "adaptor" in m or not frozen, (path, line["config_hash"])
    fusions = [line["config"]["model"]["fusion"] for line in read_records(REFERENCE / "02_fusion.jsonl")]
    assert sorted(fusions) == sorted(FUSIONS)  # notebook 02's grid: every fusion, once
