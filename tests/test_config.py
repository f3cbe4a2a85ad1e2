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


# The paper's default MMSR (section 4 and the row Tables 11-14 share, Bili HR@10 4.0810): RoBERTa + MAE, SASRec,
# width 768, 50 text tokens (Table 13), MAE mask ratio 75% (Table 14), top-2 blocks of each encoder (Table 11),
# one learning rate 1e-4 for encoders and the rest (Table 12's default row), AdamW 150 epochs decaying linearly to
# 10% after 120, weight decay 0 for encoders and 0.1 for the rest, users with 5+ interactions, cold below 10.
PAPER = {"model.text_encoder": "roberta", "model.vision_encoder": "mae", "model.sequence": "sasrec",
         "model.hidden": 768, "model.text_len": 50, "model.mask_ratio": 0.75, "model.text_blocks": "default",
         "model.vision_blocks": "default", "train.lr": 1e-4, "train.encoder_lr": 1e-4, "train.epochs": 150,
         "train.decay_after": 120, "train.final_lr_ratio": 0.1, "train.encoder_weight_decay": 0.0,
         "train.weight_decay": 0.1, "train.negatives": 1, "data.min_interactions": 5, "data.cold_threshold": 10,
         "data.image_size": 224}


def test_the_paper_preset_is_the_papers_default_mmsr():
    from mmsr_kit.encoders.text import TEXT_ENCODERS
    from mmsr_kit.encoders.vision import VISION_ENCODERS

    cfg = make_config("paper")
    got = {key: getattr(getattr(cfg, key.split(".")[0]), key.split(".")[1]) for key in PAPER}
    assert got == PAPER
    assert cfg.train.batch_size in (64, 128, 256) and cfg.model.dropout in (0.1, 0.3, 0.5)  # the paper's searched sets
    assert TEXT_ENCODERS["roberta"].default_blocks == VISION_ENCODERS["mae"].default_blocks == 2  # "default" is top 2

    # Table 2's other vision encoders under the same preset: the mask ratio is MAE's, so it is 0 for them unless set
    assert make_config("paper", overrides={"model.vision_encoder": "resnet50"}).model.mask_ratio == 0.0
    assert make_config("paper", overrides={"model.vision_encoder": "facebook/vit-mae-large"}).model.mask_ratio == 0.75
    asked = make_config("paper", overrides={"model.vision_encoder": "tiny-cnn", "model.mask_ratio": 0.5})
    assert asked.model.mask_ratio == 0.5  # asked for by name it stays, and the encoder refuses it (test_bad_input)
