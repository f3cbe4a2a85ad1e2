"""Adaptors (`model.adaptor`): a pooled vector -> the item vector, for one modality (issue 20)."""
import pytest
import torch

from mmsr_kit import fit, load_run, make_config
from mmsr_kit.adaptors import ADAPTORS, FROZEN_DEFAULT, Linear, MoE, Whiten, build_adaptor
from mmsr_kit.encoders import TextEncoder
from mmsr_kit.registry import UnknownNameError


@pytest.mark.parametrize("name, trained", [
    ("linear", 48 * 16 + 16),
    ("mlp", 48 * 32 + 32 + 32 * 16 + 16),
    ("whiten", 48 * 16 + 16),  # the statistics are buffers, not parameters
    ("moe", 8 * 48 + 8 * 48 * 16 + 48 * 8),
])
def test_each_adaptor_maps_the_width_to_the_item_width(name, trained):
    adaptor = build_adaptor(name, 48, 16, dropout=0.0)
    assert adaptor(torch.randn(5, 3, 48)).shape == (5, 3, 16)
    assert sum(p.numel() for p in adaptor.parameters() if p.requires_grad) == trained


def test_whitening_gives_centred_vectors_of_unit_covariance():
    x = torch.randn(400, 12) @ torch.randn(12, 12) + 3.0  # correlated, off-centre
    whiten = Whiten(12, 4, dropout=0.0)
    assert torch.equal((x - whiten.mean) @ whiten.transform, x)  # unfitted: the identity
    whiten.fit(x)
    y = (x - whiten.mean) @ whiten.transform
    assert torch.allclose(y.mean(0), torch.zeros(12), atol=1e-4)
    assert torch.allclose(torch.cov(y.T), torch.eye(12), atol=1e-3)
    assert bool(whiten.fitted) and {"mean", "transform", "fitted"} <= set(whiten.state_dict())


def test_the_moe_gate_starts_even_and_each_expert_whitens_its_own_way():
    moe = MoE(6, 3, dropout=0.0, experts=4)
    with torch.no_grad():
        moe.bias.normal_()  # learned centres, as after training (they start at 0)
    x = torch.randn(7, 6)
    experts = torch.stack([(x - moe.bias[k]) @ moe.weight[k] for k in range(4)])  # by hand
    assert torch.allclose(moe(x), experts.mean(0), atol=1e-6)
    with torch.no_grad():
        moe.gate.weight[2, 0] = 50.0  # a gate that picks expert 2 where x_0 > 0
    picked = x[:, 0] > 0.5
    assert torch.allclose(moe(x)[picked], experts[2][picked], atol=1e-4)


def test_a_run_fits_whitening_once_on_the_catalogue_and_keeps_it_with_its_weights(tmp_path):
    cfg = make_config("smoke", overrides={"model.mode": "mmsr_t", "model.text_encoder": "tiny-bert",
                                          "model.text_blocks": "0", "model.adaptor": "whiten", "train.epochs": 1,
                                          "data.views": 0})
    run = fit(cfg, out_dir=tmp_path / "run", results=False, progress=False)
    items = run.model.items
    assert isinstance(items.proj, Whiten) and bool(items.proj.fitted)
    with torch.no_grad():  # the frozen encoder's vector of every catalogue item, by hand
        pooled = items.text(items.content.input_ids[1:, 0], items.content.attention_mask[1:, 0])[2]
    assert torch.allclose(items.proj.mean, pooled.mean(0), atol=1e-5)
    loaded = load_run(tmp_path / "run")
    assert torch.equal(loaded.model.items.proj.transform, items.proj.transform)
    assert loaded.catalogue_vectors().shape == (run.data.n_items + 1, cfg.model.hidden)


def test_adaptors_are_names_the_config_and_the_cli_know(capsys):
    from mmsr_kit.cli import main

    with pytest.raises(UnknownNameError, match="unknown adaptor 'moee'.*did you mean 'moe'"):
        make_config("smoke", overrides={"model.adaptor": "moee"})
    main(["list", "adaptors"])
    assert capsys.readouterr().out.split() == ["adaptors:", "auto", *sorted(ADAPTORS)]
    linear = build_adaptor("linear", 8, 4)
    assert list(linear.state_dict()) == ["1.weight", "1.bias"]  # the projection's keys before adaptors: old runs load


def test_auto_is_the_frozen_default_behind_a_frozen_pretrained_encoder_and_linear_behind_any_other():
    frozen, trained = TextEncoder("minilm", 8, train_blocks=0), TextEncoder("minilm", 8, train_blocks=1)
    scratch = TextEncoder("tiny-bert", 8, train_blocks=0)  # frozen, but random: nothing pretrained to adapt
    assert type(build_adaptor("auto", 384, 16, encoder=frozen)) is ADAPTORS[FROZEN_DEFAULT]
    assert type(build_adaptor("auto", 384, 16, encoder=trained)) is Linear
    assert type(build_adaptor("auto", 64, 16, encoder=scratch)) is Linear
    assert type(build_adaptor("mlp", 384, 16, encoder=frozen)) is ADAPTORS["mlp"]  # a name given is kept
    with pytest.raises(ValueError, match="auto needs the encoder"):
        build_adaptor("auto", 384, 16)


def test_the_default_config_puts_the_frozen_default_behind_frozen_minilm(tmp_path):
    from mmsr_kit import load_split
    from mmsr_kit.builders import content_encoder

    assert make_config("smoke").model.adaptor == "auto"
    cfg = make_config("smoke", overrides={"model.mode": "mmsr_t", "model.text_encoder": "minilm",
                                          "model.text_blocks": "0", "data.views": 0})
    data = load_split(cfg.data)
    assert type(content_encoder(cfg, data, True, False).proj) is ADAPTORS[FROZEN_DEFAULT]
    cfg = make_config("smoke", overrides={"model.mode": "mmsr_t", "model.text_encoder": "minilm"})  # top 2 trained
    assert type(content_encoder(cfg, data, True, False).proj) is Linear
