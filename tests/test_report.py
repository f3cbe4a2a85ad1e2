"""`mmsr report`: the paper's tables from the results log as one self-contained HTML page."""
import json
import re

import pytest

from mmsr_kit import fit, make_config, read_results
from mmsr_kit.cli import main
from mmsr_kit.compare import TABLE5, table_from_log
from mmsr_kit.registry import ConfigError
from mmsr_kit.report import build_report
from mmsr_kit.results import append_result
from mmsr_kit.sweep import grid, with_modes

TAG5 = "table 5 <b>&"  # a tag is text from the user: escaped on the page
FAST = {"train.epochs": 1, "data.n_users": 150, "model.text_encoder": "bow", "model.vision_encoder": "tiny-cnn",
        "model.fusion": "concat"}


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """Four real runs (SASRec IDSR and GRU4Rec MMSR, seeds 0 and 1), then comparisons tagged as compare,
    transfer_study and sweep tag them, carrying those runs' metrics (no more training)."""
    path = tmp_path_factory.mktemp("report") / "results.jsonl"
    metrics = {}
    for mode, sequence in (("idsr", "sasrec"), ("mmsr", "gru4rec")):
        for seed in (0, 1):
            cfg = make_config("smoke", overrides={**FAST, "model.mode": mode, "model.sequence": sequence,
                                                  "train.seed": seed})
            metrics[mode, seed] = fit(cfg, results=path, progress=False).metrics

    def tagged(tag, label, own, seed=0, init_from=None):
        cfg = make_config("smoke", overrides={**FAST, **own, "train.seed": seed})
        cfg.train.init_from = init_from  # (a real source folder is checked by make_config)
        append_result(cfg, metrics[cfg.model.mode, seed], path=path,
                      extra={"compare": {"tag": tag, "label": label, "seed": seed}})

    for label in ("SASRec", "MMSR"):
        for seed in (0, 1):
            tagged(TAG5, label, TABLE5[label], seed)
    tagged("transfer/pretrain", "shop-100", {"model.mode": "mmsr", "data.n_users": 100})
    tagged("transfer", "shop-100 → video-150", {"model.mode": "mmsr", "data.domain": "video"}, init_from="runs/shop")
    tagged("transfer", "scratch → video-150", {"model.mode": "mmsr", "data.domain": "video"})
    for label, own in with_modes(grid({"model.text_len": [4, 8]}), ["mmsr"]).items():
        tagged("text-length", label, own)
    return path


def section(page, table_id):
    return re.search(rf'<section id="{table_id}">(.*?)</section>', page, re.S).group(1)


def test_the_page_holds_every_table_the_log_has_runs_for(log, tmp_path):
    out = tmp_path / "report.html"
    counts = build_report(log, out)
    assert counts == {"table4": 2, "table5": 2, "table8": 2, "table9": 2, "table13": 2}
    page = out.read_text()
    for table_id, rows in counts.items():
        assert section(page, table_id).count('<tr class="row">') == rows
        assert section(page, table_id).count("<summary>config</summary>") == rows  # each row opens its config
    assert "Table 2 (Text and vision encoders" in section(page, "skipped")  # what is missing, and why
    assert "shop-100 → video-150" in section(page, "table9") and "mmsr · text_len=8" in section(page, "table13")
    assert "tag table 5 &lt;b&gt;&amp;" in section(page, "table5") and TAG5 not in page
    runs = read_results(log)
    shown = runs[~runs["compare.tag"].fillna("").str.endswith("/pretrain")]  # (sources are listed by label)
    assert all(h in page for h in shown["config_hash"])  # every run's config hash, under its row
    # self-contained: no script loaded from elsewhere, plotly.js once, one chart per table
    assert not re.search(r"<script[^>]*\ssrc\s*=", page)
    assert page.count("Plotly.newPlot(") == len(counts)


def test_a_row_is_the_mean_and_spread_of_its_seeds(log, tmp_path):
    out = tmp_path / "report.html"
    build_report(log, out)
    runs = read_results(log)
    plain = runs[runs["compare.tag"].isna()]
    row = re.search(r'<tr class="row"><td>sasrec · IDSR</td>(.*?)</tr>', section(out.read_text(), "table4"), re.S)
    row = row.group(1)
    for metric in ("hr@10", "ndcg@10"):  # by hand, from the log
        values = plain.loc[plain["config.model.mode"] == "idsr", f"metrics.test.{metric}"].tolist()
        assert len(values) == 2
        mean = sum(values) / 2
        std = (sum((v - mean) ** 2 for v in values)) ** 0.5  # sample std of two values: n - 1 = 1
        assert f"{mean:.4f} ± {std:.4f}" in row
    assert "<td>2 (0, 1)</td>" in row  # two seeds
    table = table_from_log(TAG5, log)  # a tagged comparison's row: compare's own table, from the same log
    row = re.search(r'<tr class="row"><td>MMSR</td>(.*?)</tr>', section(out.read_text(), "table5"), re.S).group(1)
    assert f"{table.loc['MMSR', ('hr@10', 'mean')]:.4f} ± {table.loc['MMSR', ('hr@10', 'std')]:.4f}" in row


def test_the_cli_prints_the_counts_last_and_refuses_an_empty_log(log, tmp_path, capsys):
    out = tmp_path / "page.html"
    main(["report", "--results", str(log), "--out", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert str(out) in lines[0] and json.loads(lines[-1]) == build_report(log, tmp_path / "again.html")
    (tmp_path / "empty.jsonl").write_text("")
    for empty in (tmp_path / "none.jsonl", tmp_path / "empty.jsonl"):
        with pytest.raises(ConfigError, match="train something first"):
            build_report(empty, tmp_path / "x.html")
        with pytest.raises(SystemExit) as exit_:
            main(["report", "--results", str(empty), "--out", str(tmp_path / "x.html")])
        assert exit_.value.code == 2 and str(empty) in capsys.readouterr().err
