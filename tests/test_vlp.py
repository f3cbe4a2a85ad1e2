"""Vision-language models as item encoders (mode vlp): which parameters train per paradigm, loading through the
real from_pretrained path, VisualBERT's four visual inputs, their cache, and clear errors for bad names."""
import collections
import shutil

import pytest
import torch

from mmsr_kit import make_config
from mmsr_kit.encoders.vlp import (VISUAL_INPUTS, VLP_ENCODERS, RegionFeatures, VLPEncoder, tiny_vlp_path,
                                   visual_extractor)
from mmsr_kit.registry import ConfigError, UnknownNameError
from mmsr_kit.train import fit

# What trains in each tiny model (3 blocks per tower, 5 in ViLT / VisualBERT): the paper's choice per paradigm.
TRAINED = {
    "clip": ["text_model.encoder.layers.1.", "text_model.encoder.layers.2.", "text_model.final_layer_norm.",
             "text_projection.", "vision_model.encoder.layers.1.", "vision_model.encoder.layers.2.",
             "vision_model.post_layernorm.", "visual_projection."],
    # GroupViT's stages hold one layer each here; the top two layers bring their stage's grouping and group tokens
    "groupvit": ["text_model.encoder.layers.1.", "text_model.encoder.layers.2.", "text_model.final_layer_norm.",
                 "text_projection.", "vision_model.encoder.stages.1.", "vision_model.encoder.stages.2.",
                 "vision_model.layernorm.", "visual_projection."],
    "vilt": [f"encoder.layer.{i}." for i in (1, 2, 3, 4)] + ["layernorm.", "pooler."],
    "visualbert": [f"encoder.layer.{i}." for i in (1, 2, 3, 4)] + ["pooler."],
    "flava": ["text_model.encoder.layer.1.", "text_model.encoder.layer.2.", "text_model.layernorm.",
              "text_to_mm_projection.", "image_model.encoder.layer.1.", "image_model.encoder.layer.2.",
              "image_model.layernorm.", "image_to_mm_projection.", "multimodal_model."],
}


def trained_names(module):
    return {n for n, p in module.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("family", list(TRAINED))
def test_each_vlp_trains_what_the_paper_fine_tunes(family):
    vlp = VLPEncoder(f"tiny-{family}", max_tokens=12)
    expected = {n for n, _ in vlp.model.named_parameters() if n.startswith(tuple(TRAINED[family]))}
    assert {n.removeprefix("model.") for n in trained_names(vlp)} == expected
    assert any(not p.requires_grad for p in vlp.parameters())  # the bottom blocks and embeddings stay frozen
    vlp.train()
    assert vlp.training and not vlp.towers[0].blocks[0].training  # frozen parts run in eval mode (no dropout)
    batch = vlp.tokenize(["red wool scarf", "a blue cotton shirt"])
    pictures = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    if family == "visualbert":
        out = vlp(**batch, visual=(torch.randn(2, 5, vlp.visual_width), torch.ones(2, 5, dtype=torch.bool)))
    else:
        out = vlp(**batch, pictures=pictures)
    assert out.shape == (2, vlp.width)
    out.square().sum().backward()
    got_grad = {n for n, p in vlp.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert got_grad and got_grad <= trained_names(vlp)
    everything = VLPEncoder(f"tiny-{family}", train_blocks=None)
    assert trained_names(everything) == {n for n, _ in everything.named_parameters()}
    assert not trained_names(VLPEncoder(f"tiny-{family}", train_blocks=0)) - {
        n for n, _ in vlp.named_parameters() if n.startswith("model.multimodal_model.")}  # FLAVA's fusion always trains


def test_a_vlp_loads_from_a_saved_folder_like_a_hub_id(tmp_path):
    folder = tmp_path / "my-clip"
    shutil.copytree(tiny_vlp_path("clip"), folder)
    vlp = VLPEncoder(str(folder))
    assert vlp.family == "clip" and vlp.paradigm == "two-stream, shallow fusion" and vlp.pretrained
    reference = VLPEncoder("tiny-clip")
    assert all(torch.equal(a, b) for a, b in zip(vlp.state_dict().values(), reference.state_dict().values()))


def test_bad_vlp_names_and_models_get_clear_errors(tmp_path):
    # a name neither registered nor local is a hub id (checked when loaded): offline, one error with a hint
    assert make_config("smoke", overrides={"model.mode": "vlp", "model.vlp": "flav"}).model.vlp == "flav"
    with pytest.raises(ConfigError, match="'flav' was not found.*did you mean 'flava'"):
        VLPEncoder("flav")
    with pytest.raises(UnknownNameError, match="grid"):
        make_config("smoke", overrides={"model.mode": "vlp", "model.vlp_visual": "grids"})
    from mmsr_kit.encoders.text import tiny_bert_path

    with pytest.raises(ConfigError, match="'bert' model"):
        VLPEncoder(tiny_bert_path())
    with pytest.raises(ConfigError, match="not found"):  # offline (tests set HF_HUB_OFFLINE): fails at once, clearly
        VLPEncoder("openai/clip-vit-base-patch16")
    with pytest.raises(ConfigError, match="not a torchvision Faster R-CNN"):
        RegionFeatures("maskrcnn_resnet50_fpn@random", 32)
    with pytest.raises(ConfigError, match="no weights file"):
        RegionFeatures("fasterrcnn_resnet50_fpn@/no/such/file.pth", 32)


def test_text_longer_than_a_model_reads_is_cut_to_its_positions():
    vlp = VLPEncoder("tiny-vilt", max_tokens=60)  # ViLT reads at most 40 tokens
    batch = vlp.tokenize(["word " * 100])
    assert vlp.max_tokens == 40 and batch["input_ids"].shape == (1, 40)
    assert vlp(**batch, pictures=torch.zeros(1, 3, 32, 32, dtype=torch.uint8)).shape == (1, vlp.width)


def test_visual_inputs_give_tokens_with_masks():
    pictures = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    widths = {}
    for name in VISUAL_INPUTS:
        extractor = visual_extractor("tiny-visualbert", name, image_size=32)
        tokens, mask, pooled = extractor(pictures)
        assert tokens.shape[0] == 3 and tokens.shape[-1] == extractor.width and mask.shape == tokens.shape[:2]
        assert 1 <= mask.sum(1).min() and mask.sum(1).max() <= tokens.shape[1]
        assert not any(p.requires_grad for p in extractor.parameters()) and not extractor.training
        widths[name] = (tokens.shape[1], extractor.width)
    assert widths["region"] == (49, 1024)  # at most 49 regions, Faster R-CNN box-head features
    assert widths["grid"] == (16, 64)  # tiny-cnn: a 4x4 grid at 32 px
    assert widths["patch-embedding"] == widths["patch-vit"] == (17, 64)  # class token + 4x4 patches
    embed, vit = (visual_extractor("tiny-visualbert", n, image_size=32)(pictures)[0] for n in ("patch-embedding", "patch-vit"))
    assert not torch.allclose(embed, vit)  # with and without CLIP's blocks


def test_a_picture_without_a_confident_box_is_its_own_region():
    extractor = RegionFeatures("fasterrcnn_resnet50_fpn@random", 32, min_score=1.01)  # no score reaches 1.01
    tokens, mask, pooled = extractor(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    assert mask.sum(1).tolist() == [1, 1, 1, 1] and extractor.whole_picture == 4
    assert torch.allclose(pooled, tokens[:, 0])


def smoke(**overrides):
    return make_config("smoke", overrides={"model.mode": "vlp", "train.epochs": 1, **overrides})


@pytest.mark.parametrize("overrides", [
    {"model.vlp": "tiny-clip"}, {"model.vlp": "tiny-groupvit"}, {"model.vlp": "tiny-vilt"},
    {"model.vlp": "tiny-flava"},
    *({"model.vlp": "tiny-visualbert", "model.vlp_visual": v, "data.views": 0} for v in VISUAL_INPUTS),
], ids=lambda o: "-".join(str(v) for v in o.values()))
def test_every_vlp_and_visual_input_trains_an_epoch_at_the_smoke_preset_with_sasrec(overrides):
    run = fit(smoke(**overrides), results=False, progress=False)
    assert run.metrics["epochs_run"] == 1 and run.metrics["test"]["n"] == 400
    assert 0 <= run.metrics["test"]["ndcg@10"] <= run.metrics["test"]["hr@10"] <= 1


@pytest.mark.parametrize("visual, kind, views", [("grid", "GridFeatures", 2), ("region", "RegionFeatures", 0)])
def test_extracted_visual_tokens_are_computed_once_and_reused_in_later_epochs(tmp_path, monkeypatch, visual, kind, views):
    from mmsr_kit import items, train
    from mmsr_kit.encoders import vlp

    monkeypatch.setenv("MMSR_CACHE", str(tmp_path))  # no stored features from earlier runs
    monkeypatch.setattr(items, "FROZEN_MEMO", collections.OrderedDict())
    calls, per_epoch = [], []
    cls = getattr(vlp, kind)
    features = cls.features
    monkeypatch.setattr(cls, "features", lambda self, pictures: calls.append(len(pictures)) or features(self, pictures))
    train_epoch = train.train_epoch
    monkeypatch.setattr(train, "train_epoch", lambda *a, **k: (train_epoch(*a, **k), per_epoch.append(sum(calls)))[0])
    fit(smoke(**{"model.vlp": "tiny-visualbert", "model.vlp_visual": visual, "data.views": views, "train.epochs": 2}),
        results=False, progress=False)
    once = 301 * (views + 1)  # every item (and the padding row) and view
    assert per_epoch == [once, once]  # all in the first epoch, nothing in the second
    assert sum(calls) == once  # evaluation reads the same cache


def test_pictures_are_resized_to_what_the_model_takes(smoke_config):
    from mmsr_kit.data import load_split
    from mmsr_kit.modes import build_model

    cfg = smoke(**{"model.vlp": "tiny-clip", "data.image_size": 24})  # the tiny CLIP takes 32 px, nothing else
    model = build_model(cfg, load_split(cfg.data))
    assert model.items.content.images.shape[-2:] == (32, 32)
    assert model.items(torch.arange(1, 5)).shape == (4, cfg.model.hidden)


def test_cached_visual_tokens_give_the_vectors_of_a_direct_forward():
    """Both patch inputs come from the same CLIP weights and pictures: each must get its own cache entry."""
    from mmsr_kit.data import load_split
    from mmsr_kit.modes import build_model

    items = torch.arange(1, 40)
    for visual in ("patch-embedding", "patch-vit"):  # in this order: the second must not read the first's tokens
        cfg = smoke(**{"model.vlp": "tiny-visualbert", "model.vlp_visual": visual, "data.views": 0})
        data = load_split(cfg.data)
        cached = build_model(cfg, data).eval()
        cfg.model.cache_frozen = False
        direct = build_model(cfg, data).eval()
        direct.load_state_dict(cached.state_dict())
        with torch.no_grad():
            assert torch.allclose(cached.items(items), direct.items(items), atol=1e-5), visual
        assert cached.items.encoder_parameters() == []  # tiny models are random: they train at the main learning rate


def test_mmsr_list_encoders_names_the_vlps_and_visual_inputs(capsys):
    from mmsr_kit.cli import main

    main(["list", "encoders"])
    out = capsys.readouterr().out
    for name in ("clip", "groupvit", "vilt", "visualbert", "flava", "region", "grid", "patch-embedding", "patch-vit"):
        assert f"  {name}\n" in out
    assert set(VLP_ENCODERS) >= {"clip", "groupvit", "vilt", "visualbert", "flava"}
