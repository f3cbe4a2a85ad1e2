"""Config: presets, merge order, YAML round-trip, errors that name the valid choices."""
import re

import pytest

from mmsr_kit.config import Config, from_yaml, make_config, parse_sets
from mmsr_kit.registry import ConfigError, UnknownNameError


def test_yaml_round_trip(tmp_path):
    cfg = make_config("smoke", overrides={"model.sequence": "gru4rec", "model.layers": 3, "eval.ks": "5,10",
                                          "train.metric": "hr@5"})
    cfg.save(tmp_path / "c.yaml")
    back = from_yaml(tmp_path / "c.yaml")
    assert back == cfg and back.hash() == cfg.hash()
    assert back.eval.ks == [5, 10] and back.model.layers == 3


def test_merge_order_preset_then_file_then_overrides(tmp_path):
    (tmp_path / "f.yaml").write_text("train:\n  epochs: 7\n  batch_size: 16\n")
    cfg = make_config("smoke", file=tmp_path / "f.yaml", overrides={"train.epochs": "9"})
    assert cfg.train.epochs == 9  # override beats file
    assert cfg.train.batch_size == 16  # file beats preset (128)
    assert cfg.data.n_items == 300  # preset beats default (2000)
    assert Config().data.n_items == 2000


def test_types_are_checked_and_converted():
    cfg = make_config("smoke", overrides=parse_sets(["train.lr=3e-4", "model.layers=none", "train.bf16=false"]))
    assert cfg.train.lr == 3e-4 and cfg.model.layers is None and cfg.train.bf16 is False
    with pytest.raises(ConfigError, match="train.epochs expects int"):
        make_config("smoke", overrides={"train.epochs": "1.5"})
    with pytest.raises(ConfigError, match="expects bool"):
        make_config("smoke", overrides={"train.bf16": "maybe"})
    with pytest.raises(ConfigError, match="at least 1"):
        make_config("smoke", overrides={"train.epochs": 0})
    with pytest.raises(ConfigError, match="data.views must be at least 0"):
        make_config("smoke", overrides={"data.views": -1})
    assert make_config("smoke", overrides={"data.views": 0}).data.views == 0  # 0: no augmentation, allowed


@pytest.mark.parametrize("key, value, message", [
    ("train.epoch", 3, "did you mean 'train.epochs'"),
    ("trian.epochs", 3, "did you mean 'train'"),
    ("model.mode", "idrs", "unknown mode 'idrs'; choose one of: carca++, fdsa, idsr, mmsr, mmsr_t, mmsr_v, morec++, mostpop, vlp, vqrec"),
    ("model.sequence", "sasrek", "did you mean 'sasrec'"),
    ("data.name", "ml-1m", "unknown dataset 'ml-1m'"),
    ("train.metric", "ndcg@7", "unknown metric"),
])
def test_unknown_names_list_the_valid_ones(key, value, message):
    with pytest.raises(UnknownNameError if "metric" not in message else ConfigError, match=re.escape(message)):
        make_config("smoke", overrides={key: value})


def test_unknown_preset():
    with pytest.raises(UnknownNameError, match="choose one of: paper, smoke, workshop"):
        make_config("smok")


def test_set_needs_key_value():
    with pytest.raises(ConfigError, match="key=value"):
        parse_sets(["train.epochs"])


def test_example_configs_load():
    from pathlib import Path

    files = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    assert files
    for file in files:
        cfg = make_config("workshop", file=file)
        assert cfg.data.name and cfg.model.mode == "idsr"
