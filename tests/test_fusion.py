"""Every fusion: build, forward, backward; and what makes each one that fusion."""
import pytest
import torch

from mmsr_kit.fusion import FUSIONS, build_fusion

U, D = 3, 12


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    text = (torch.randn(U, 5, 16, generator=g), torch.tensor([[1, 1, 1, 0, 0]] * U).bool(), torch.randn(U, 16, generator=g))
    image = (torch.randn(U, 4, 8, generator=g), torch.ones(U, 4).bool(), torch.randn(U, 8, generator=g))
    return text, image


def test_the_papers_ten_strategies_are_registered():
    coarse = ["concat", "film", "gate", "sum"]
    expected = coarse + [f"{c}_dnn" for c in coarse] + ["coattention"] + [f"merge_attention_{n}" for n in (1, 2, 4)]
    assert sorted(FUSIONS) == sorted(expected)


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_forward_backward_and_both_modalities_matter(name):
    torch.manual_seed(0)
    fusion = build_fusion(name, D, 16, 8, dropout=0.0)
    text, image = inputs()
    out = fusion(text, image)
    assert out.shape == (U, D)
    out.sum().backward()
    assert fusion.text_proj.weight.grad is not None and fusion.image_proj.weight.grad is not None
    other_text, other_image = inputs(seed=1)
    with torch.no_grad():
        assert not torch.allclose(fusion(other_text, image), out)
        assert not torch.allclose(fusion(text, other_image), out)


def test_sum_and_gate_by_construction():
    text, image = inputs()
    s = build_fusion("sum", D, 16, 8, dropout=0.0)
    assert torch.allclose(s(text, image), s.text_proj(text[2]) + s.image_proj(image[2]))
    g = build_fusion("gate", D, 16, 8, dropout=0.0)
    t, v = g.text_proj(text[2]), g.image_proj(image[2])
    out = g(text, image)
    lo, hi = torch.minimum(t, v), torch.maximum(t, v)
    assert ((out >= lo - 1e-6) & (out <= hi + 1e-6)).all()  # a per-dimension convex mix of the two


def test_merge_attention_adds_modality_type_embeddings_and_ignores_padding():
    torch.manual_seed(0)
    fusion = build_fusion("merge_attention_1", D, 16, 8, dropout=0.0).eval()
    text, image = inputs()
    with torch.no_grad():
        out = fusion(text, image)
        fusion.type_embedding.weight[1] += 1.0  # the image tokens' type embedding changes the result
        assert not torch.allclose(fusion(text, image), out)
        fusion.type_embedding.weight[1] -= 1.0
        padded = (text[0].clone(), text[1], text[2])
        padded[0][:, 3:] = 100.0  # tokens under the mask must not matter
        assert torch.allclose(fusion(padded, image), out, atol=1e-5)
    assert len(build_fusion("merge_attention_4", D, 16, 8).blocks.layers) == 4


def test_unknown_fusion_suggests_a_name():
    from mmsr_kit.registry import UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean 'film'"):
        build_fusion("flim", D, 16, 8)


def test_coarse_fusions_read_only_the_pooled_vectors():
    """`uses_tokens` tells the item encoder whether token states must be kept (frozen outputs): check it is true."""
    for name in FUSIONS:
        fusion = build_fusion(name, 16, 8, 12, dropout=0.0).eval()
        text = (torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool), torch.randn(3, 8))
        image = (torch.randn(3, 4, 12), torch.ones(3, 4, dtype=torch.bool), torch.randn(3, 12))
        if not fusion.uses_tokens:
            out = fusion((None, None, text[2]), (None, None, image[2]))  # fails if tokens are read
            assert torch.allclose(out, fusion(text, image)), name
        else:
            changed = (text[0] + 1, text[1], text[2])
            assert not torch.allclose(fusion(changed, image), fusion(text, image)), name


def test_coattention_is_lxmerts_cross_modality_layer_then_a_merging_block():
    """Each stream's output reads the other modality (cross-attention) and its own other tokens (self-attention);
    the item vector comes from one merging block over both streams' tokens, padding ignored."""
    from mmsr_kit.fusion import CrossModalityLayer, MergeAttention

    torch.manual_seed(0)
    fusion = build_fusion("coattention", D, 16, 8, dropout=0.0).eval()
    assert isinstance(fusion.layer, CrossModalityLayer) and isinstance(fusion.merge, MergeAttention)
    assert len(fusion.merge.blocks.layers) == 1
    text, image = inputs()
    t, v = fusion.text_proj(text[0]), fusion.image_proj(image[0])
    with torch.no_grad():
        t_out, v_out = fusion.layer(t, text[1], v, image[1])
        for changed, stream, other in ((t, 0, 1), (v, 1, 0)):
            moved = changed.clone()
            moved[:, 1] = torch.randn(moved[:, 1].shape)  # token 1 of this stream changes: token 0 must follow
            args = (moved, text[1], v, image[1]) if stream == 0 else (t, text[1], moved, image[1])
            after = fusion.layer(*args)
            assert not torch.allclose(after[stream][:, 0], (t_out, v_out)[stream][:, 0])  # self-attention
            assert not torch.allclose(after[other][:, 0], (t_out, v_out)[other][:, 0])  # cross-attention
        out = fusion(text, image)
        padded = (text[0].clone(), text[1], text[2])
        padded[0][:, 3:] = 100.0  # text tokens under the mask must not matter
        assert torch.allclose(fusion(padded, image), out, atol=1e-5)
