"""Content item encoders: each distinct item encoded once (same loss and gradients as every occurrence),
per-encode augmentation in training only, every mode with every fusion and sequence model."""
import logging

import pytest
import torch

from mmsr_kit import fit, load_split, make_config
from mmsr_kit import items as items_module
from mmsr_kit.encoders.vision import VISION_ENCODERS, VisionSpec
from mmsr_kit.fusion import FUSIONS
from mmsr_kit.modes import build_model
from mmsr_kit.registry import ConfigError

SMALL = {"data.n_items": 120, "data.n_users": 150, "model.hidden": 16, "train.epochs": 1}


def small(**overrides):
    return make_config("smoke", overrides={**SMALL, **overrides})


def batch(data, n=8):
    from mmsr_kit.data.batches import TrainWindows

    torch.manual_seed(0)
    return TrainWindows(data).collate(list(range(n)))


def loss_and_grads(cfg, data, one_batch, **settings):
    """One training step's loss and gradients with dropout off, after setting `settings` on the config
    (model.*) or on the item encoder (attributes); returns (loss, {name: grad}, model)."""
    torch.manual_seed(0)
    for key, value in settings.items():
        if hasattr(cfg.model, key):
            setattr(cfg.model, key, value)
    model = build_model(cfg, data).train()
    for key, value in settings.items():
        if hasattr(model.items, key):
            setattr(model.items, key, value)
    for module in model.modules():  # the encoders' own dropout too: nothing random in either path
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    torch.manual_seed(1)  # the same views drawn in both paths
    loss = model(*one_batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, model


def assert_same(a, b, loss_atol, rel=1e-4, floor=1.0):
    (loss_a, grads_a, _), (loss_b, grads_b, _) = a, b
    assert torch.allclose(loss_a, loss_b, atol=loss_atol)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        scale = grads_a[name].abs().max().item()  # sums over many tokens: compare relative to their size
        assert torch.allclose(grads_a[name], grads_b[name], rtol=1e-3, atol=rel * max(scale, floor)), name


@pytest.mark.parametrize("mode", ["mmsr", "mmsr_t", "mmsr_v"])
def test_unique_item_encoding_matches_every_occurrence(mode):
    cfg = small(**{"model.mode": mode, "model.dropout": 0.0, "data.views": 0})
    data = load_split(cfg.data)
    one = batch(data)
    unique, every = (loss_and_grads(cfg, data, one, encode_every_occurrence=e) for e in (False, True))
    assert len(unique[1]) > 10
    assert_same(unique, every, loss_atol=1e-6)


def test_per_encode_views_in_training_only():
    cfg = small(**{"model.mode": "mmsr", "data.views": 4})
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    content = model.items.content
    assert content.input_ids.shape[:2] == (data.n_items + 1, 5) and content.images.shape[:2] == (data.n_items + 1, 5)
    assert not torch.equal(content.images[1, 0], content.images[1, 1])  # another view of the same item
    items = torch.arange(1, 30)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model.items(items), model.items(items))  # evaluation: the canonical view
        model.train()
        torch.manual_seed(1)
        views = content.pick_views(items, training=True)
        assert views.min() >= 1 and views.max() <= 4  # training never sees view 0 (with its fixed noise)
    # view 0 is exactly what the item table holds
    first = torch.from_numpy(__import__("numpy").array(data.dataset.items[0]["image"])).permute(2, 0, 1)
    assert torch.equal(content.images[1, 0], first)


def test_training_views_get_fresh_noise_and_view_0_none():
    cfg = small(**{"model.mode": "mmsr_v", "data.views": 2})
    content = build_model(cfg, load_split(cfg.data)).items.content
    items = torch.tensor([3, 3, 3, 3])
    view = torch.tensor([1, 1, 1, 0])
    torch.manual_seed(0)
    a, b = content.pictures(items, view), content.pictures(items, view)
    clean = content.images[3, 1].to(torch.int16)
    # the same view of the same item, encoded twice, differs by noise from a bank not tied to the item
    assert not torch.equal(a[0], b[0]) and not torch.equal(a[0], a[1])
    assert (a[0].to(torch.int16) - clean).abs().float().mean() > 5
    assert (a[0].to(torch.int16) - clean).float().mean().abs() < 5  # zero-mean noise, away from clipping
    assert torch.equal(a[3], content.images[3, 0]) and torch.equal(b[3], content.images[3, 0])
    # the training views themselves are rendered noise-free: flat background stays flat
    assert len(torch.unique(content.images[3, 1][:, 0, 0])) == 1


@pytest.mark.parametrize("mode", ["mmsr", "mmsr_t", "mmsr_v"])
def test_training_views_kept_on_disk_are_the_views_drawn_afresh(mode, tmp_path, monkeypatch):
    """The views a world draws for a run are read back from the cache folder by the next run on that world: the
    same buffers bit for bit, the very views `training_views` draws without a cache, and no drawing again."""
    monkeypatch.setenv("MMSR_CACHE", str(tmp_path))
    cfg = small(**{"model.mode": mode, "data.views": 3})
    data = load_split(cfg.data)
    fresh = dict(build_model(cfg, data).items.content.named_buffers())  # draws them and writes the file
    assert len(list((tmp_path / "views").glob("*.safetensors"))) == 1

    def no_drawing(*args, **kwargs):
        raise AssertionError("drawn again")

    monkeypatch.setattr(type(data.dataset.world), "titles", no_drawing)
    monkeypatch.setattr(type(data.dataset.world), "images", no_drawing)
    again = dict(build_model(cfg, data).items.content.named_buffers())
    assert fresh.keys() == again.keys() and all(torch.equal(fresh[k], again[k]) for k in fresh)
    monkeypatch.undo()
    monkeypatch.setenv("MMSR_CACHE", str(tmp_path))
    encoders = build_model(cfg, data).items
    reference = items_module.training_views(data.dataset.world, data.n_items, 3, cfg.data.world_seed, encoders.text,
                                            encoders.vision, cache=False)
    assert all(torch.equal(fresh[k][1:, 1:], reference[k]) for k in reference)  # views 1..3 of items 1..N
    cfg.data.views = 2  # another number of views: drawn afresh, in a file of its own
    build_model(cfg, data)
    assert len(list((tmp_path / "views").glob("*.safetensors"))) == 2


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_mmsr_trains_with_every_fusion(fusion):
    run = fit(small(**{"model.mode": "mmsr", "model.fusion": fusion}), results=False, progress=False)
    assert run.metrics["test"]["n"] == run.data.stats["users"] and run.history[0]["loss"] > 0


@pytest.mark.parametrize("sequence", ["sasrec", "gru4rec", "nextitnet"])
@pytest.mark.parametrize("mode", ["mmsr", "mmsr_t", "mmsr_v"])
def test_every_mode_with_every_sequence_model(mode, sequence):
    run = fit(small(**{"model.mode": mode, "model.sequence": sequence}), results=False, progress=False)
    assert 0 <= run.metrics["test"]["hr@10"] <= 1


def test_pretrained_encoders_get_their_own_learning_rate():
    from mmsr_kit.train import param_groups

    cfg = small(**{"model.mode": "mmsr", "model.text_encoder": "minilm", "model.text_len": 12,
                   "train.encoder_lr": 5e-5, "train.lr": 1e-3})
    model = build_model(cfg, load_split(cfg.data))
    groups = {g["name"]: g for g in param_groups(model, cfg.train)}
    assert {id(p) for p in groups["encoder"]["params"]} == {id(p) for p in model.items.text.parameters() if p.requires_grad}
    assert groups["encoder"]["lr"] == 5e-5 and groups["encoder"]["weight_decay"] == 0 and groups["decay"]["lr"] == 1e-3
    main = {id(p) for g in ("decay", "no_decay") for p in groups[g]["params"]}
    assert {id(p) for p in model.items.vision.parameters()} <= main  # tiny-vit starts from scratch: main rate
    assert {id(p) for p in model.items.fusion.parameters()} <= main


def test_image_modes_need_images():
    with pytest.raises(ConfigError, match="has no images"):
        fit(make_config("smoke", overrides={"data.name": "ml-100k", "model.mode": "mmsr_v"}), results=False)


def test_mmsr_t_with_real_minilm_on_atomic_files(tiny_dir):
    # (an epoch of MovieLens-100k through MiniLM takes minutes on a CPU: the hand-made fixture keeps this quick)
    cfg = make_config("smoke", overrides={"data.name": str(tiny_dir), "model.mode": "mmsr_t", "model.text_encoder": "minilm",
                                          "train.epochs": 2, "model.text_len": 16, "data.cold_threshold": 2})
    run = fit(cfg, results=False, progress=False)
    assert run.model.items.text.name == "minilm" and run.metrics["test"]["n"] == 3
    assert run.metrics["cold"]["n"] == 5


def test_evaluation_looks_inputs_up_in_the_item_table():
    cfg = small(**{"model.mode": "mmsr"})
    data = load_split(cfg.data)
    model = build_model(cfg, data).eval()
    inputs = torch.as_tensor(data.test.inputs[:16])
    table = model.all_item_vectors(data.n_items, batch_size=50)
    assert torch.allclose(model.last_user_vectors(inputs, table), model.last_user_vectors(inputs), atol=1e-5)


@pytest.mark.parametrize("mode, fusion", [("mmsr_t", "concat"), ("mmsr_v", "concat"), ("mmsr", "merge_attention_1")])
def test_frozen_encoder_outputs_computed_once_give_the_same_loss_and_gradients(mode, fusion):
    cfg = small(**{"model.mode": mode, "model.fusion": fusion, "model.dropout": 0.0, "data.views": 0,
                   "model.text_blocks": "0", "model.vision_blocks": "0"})
    data = load_split(cfg.data)
    one = batch(data)
    cached, uncached = (loss_and_grads(cfg, data, one, cache_frozen=c) for c in (True, False))
    assert cached[2].items._frozen_outputs and not uncached[2].items._frozen_outputs
    assert not any(n.startswith(("items.text.", "items.vision.")) for n in cached[1])  # the encoders do not train
    assert_same(cached, uncached, loss_atol=1e-5, rel=1e-5, floor=1.0)


def test_what_is_cached_follows_what_trains():
    ids = torch.arange(1, 10)
    for blocks, expected in (("all", set()), ("1", {("text", "prefix")}), ("0", {("text", "outputs")})):
        cfg = small(**{"model.mode": "mmsr_t", "model.text_blocks": blocks})
        model = build_model(cfg, load_split(cfg.data)).train()
        model.items(ids)
        assert set(model.items._frozen_outputs) == expected, blocks


def test_frozen_outputs_are_shared_between_runs_only_for_the_same_weights_and_inputs():

    items_module.FROZEN_MEMO.clear()
    cfg = small(**{"model.mode": "mmsr_t", "model.text_blocks": "0", "data.views": 0})
    data = load_split(cfg.data)
    ids = torch.arange(1, 20)
    first, second = build_model(cfg, data), build_model(cfg, data)
    with torch.no_grad():
        first.items(ids), second.items(ids)
    assert len(items_module.FROZEN_MEMO) == 1  # the same encoder on the same items: computed once
    assert second.items._frozen_outputs["text", "outputs"][0][2] is first.items._frozen_outputs["text", "outputs"][0][2]
    third = build_model(cfg, data)
    with torch.no_grad():
        for p in third.items.text.parameters():
            p.add_(0.01)  # other weights: another fingerprint, computed again
        third.items(ids)
    assert len(items_module.FROZEN_MEMO) == 2
    assert not torch.equal(third.items._frozen_outputs["text", "outputs"][0][2],
                           first.items._frozen_outputs["text", "outputs"][0][2])


# CPU-sized stand-ins with the structure of each architecture (random weights, no download)
TEST_VISION = {
    "test-resnet": VisionSpec("timm", "resnet50", "ResNet50's structure, one bottleneck per stage", 3, 32,
                              kwargs={"layers": (1, 1, 1, 1), "base_width": 16}, pretrained=False),
    "test-swin": VisionSpec("timm", "swin_tiny_patch4_window7_224", "Swin's structure, 2 stages", 2, None,
                            kwargs={"embed_dim": 16, "depths": (1, 2), "num_heads": (1, 2), "window_size": 4},
                            pretrained=False),
}


@pytest.mark.parametrize("encoder, blocks, first_trained", [
    ("tiny-vit", "1", "items.vision.model.blocks.1."),
    ("tiny-cnn", "1", "items.vision.model.blocks.1."),
    ("tiny-mae", "1", "items.vision.model.layers.1."),
    ("test-resnet", "2", "items.vision.model.layer3."),
    ("test-swin", "1", "items.vision.model.layers.1.blocks.1."),
])
def test_cached_vision_prefix_gives_the_same_loss_and_gradients(encoder, blocks, first_trained, monkeypatch):
    """Only the top blocks train: the states entering them are computed once per picture and the forward starts
    there; loss and gradients are those of the full forward, for every architecture (ViT, CNN stages, ViT-MAE,
    ResNet stages, Swin blocks inside a stage)."""
    for name, spec in TEST_VISION.items():
        monkeypatch.setitem(VISION_ENCODERS, name, spec)
    cfg = small(**{"model.mode": "mmsr_v", "model.vision_encoder": encoder, "model.vision_blocks": blocks,
                   "model.dropout": 0.0, "data.views": 0})
    data = load_split(cfg.data)
    one = batch(data, n=16)
    cached, uncached = (loss_and_grads(cfg, data, one, cache_frozen=c) for c in (True, False))
    assert ("vision", "prefix") in cached[2].items._frozen_outputs and not uncached[2].items._frozen_outputs
    trained = {n for n in cached[1] if n.startswith("items.vision.")}
    assert any(n.startswith(first_trained) for n in trained)
    below = [n for n, p in cached[2].items.vision.named_parameters() if not p.requires_grad]
    assert below  # something is frozen, and it gets no gradient
    assert_same(cached, uncached, loss_atol=1e-5, floor=1e-3)


def test_no_vision_prefix_for_noisy_pictures_or_mae_masking(caplog):
    cfg = small(**{"model.mode": "mmsr_v", "model.vision_encoder": "tiny-vit", "model.vision_blocks": "1",
                   "model.dropout": 0.0, "data.views": 2})
    data = load_split(cfg.data)
    # training views with per-encode noise are not a fixed function of the item: no vision prefix there
    for blocks in ("1", "0"):  # neither the prefix nor a frozen encoder's outputs
        cfg.model.vision_blocks = blocks
        noisy = build_model(cfg, data).train()
        noisy.items(torch.arange(1, 5))
        assert not noisy.items._frozen_outputs, blocks
    # MAE masking draws patches at random before the first block: the full forward runs
    cfg.data.views, cfg.model.vision_encoder, cfg.model.mask_ratio = 0, "tiny-mae", 0.5
    cfg.model.vision_blocks = "1"
    masked = build_model(cfg, load_split(cfg.data)).train()
    with caplog.at_level(logging.INFO, logger="mmsr_kit.items"):
        masked.items(torch.arange(1, 5))
    assert not masked.items._frozen_outputs and not masked.items.vision.prefix_cacheable
    assert "MAE masking (model.mask_ratio=0.5)" in caplog.text  # the kit says why it runs in full


@pytest.mark.parametrize("text_encoder, blocks, fusion", [("tiny-bert", "1", "concat"), ("tiny-bert", "2", "merge_attention_1"),
                                                           ("minilm", "2", "concat")])
def test_cached_text_prefix_gives_the_same_loss_and_gradients(text_encoder, blocks, fusion):
    """Only the top blocks train: the states below them are computed once; loss and gradients are those of a full
    forward through the text encoder on the same seed."""
    cfg = small(**{"model.mode": "mmsr_t" if fusion == "concat" else "mmsr", "model.text_encoder": text_encoder,
                   "model.text_blocks": blocks, "model.fusion": fusion, "model.dropout": 0.0, "data.views": 2})
    data = load_split(cfg.data)
    one = batch(data, n=16)
    cached, uncached = (loss_and_grads(cfg, data, one, cache_frozen=c) for c in (True, False))
    assert ("text", "prefix") in cached[2].items._frozen_outputs and not uncached[2].items._frozen_outputs
    trained = {n for n in cached[1] if n.startswith("items.text.")}
    assert trained and all(".embeddings." not in n for n in trained)  # the embeddings stay frozen
    assert_same(cached, uncached, loss_atol=1e-5, floor=1e-3)


def test_frozen_states_in_files_give_the_same_loss_and_are_reused_by_a_later_run(tmp_path, monkeypatch):
    """States larger than model.cache_memory_gb go to memory-mapped files keyed by the fingerprint; the loss is
    the in-memory one, and a fresh process (an empty memo) opens the files instead of computing them again."""
    monkeypatch.setenv("MMSR_CACHE", str(tmp_path))
    cfg = small(**{"model.mode": "mmsr", "model.text_encoder": "tiny-bert", "model.text_blocks": "1",
                   "model.vision_encoder": "tiny-vit", "model.vision_blocks": "0", "model.fusion": "merge_attention_1",
                   "model.dropout": 0.0, "data.views": 0})
    data = load_split(cfg.data)
    one = batch(data, n=16)
    items_module.FROZEN_MEMO.clear()
    in_memory = loss_and_grads(cfg, data, one)
    items_module.FROZEN_MEMO.clear()
    cfg.model.cache_memory_gb = 0.0
    in_files = loss_and_grads(cfg, data, one)
    assert all(on_disk for _, on_disk in in_files[2].items._frozen_outputs.values())
    assert len(list((tmp_path / "frozen").glob("*.json"))) == 2  # text prefix, vision outputs
    assert_same(in_memory, in_files, loss_atol=1e-6, floor=1e-3)

    items_module.FROZEN_MEMO.clear()

    def no_computing(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(items_module.ContentItemEncoder, "_fill", no_computing)
    again = loss_and_grads(cfg, data, one)
    assert torch.equal(again[0], in_files[0])
    cfg.model.text_len = 12  # other inputs: another fingerprint, computed afresh
    with pytest.raises(AssertionError, match="computed again"):
        loss_and_grads(cfg, data, one)


def test_frozen_states_kept_in_bfloat16_are_close_and_half_the_size():
    cfg = small(**{"model.mode": "mmsr_t", "model.text_encoder": "tiny-bert", "model.text_blocks": "1",
                   "model.dropout": 0.0, "data.views": 0})
    data = load_split(cfg.data)
    one = batch(data, n=16)
    full = loss_and_grads(cfg, data, one)
    cfg.model.cache_dtype = "bfloat16"
    half = loss_and_grads(cfg, data, one)
    (states,), _ = half[2].items._frozen_outputs["text", "prefix"]
    assert states.dtype == torch.bfloat16
    assert torch.allclose(full[0], half[0], rtol=2e-2) and not torch.equal(full[0], half[0])
