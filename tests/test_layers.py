"""The kit's Dropout: nn.Dropout's behaviour (keep rate, scaling, gradient, evaluation) with a faster CPU mask,
repeatable from torch's seed."""
import pytest
import torch
import torch.nn as nn

from mmsr_kit.layers import Dropout, fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keeps_each_element_with_probability_one_minus_p_and_rescales(p):
    drop = Dropout(p).train()
    y = drop(torch.ones(1_000_000))
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.003  # binomial sd is < 0.0005
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))


def test_gradient_is_the_mask_and_evaluation_is_the_identity():
    x = torch.randn(64, 20, 32, requires_grad=True)
    drop = Dropout(0.1).train()
    y = drop(x)
    y.sum().backward()
    assert torch.allclose(x.grad, (y != 0).float() / 0.9)
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x) and torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))


def test_masks_follow_torch_seed_and_differ_between_calls():
    drop = Dropout(0.3).train()
    x = torch.ones(50, 50)
    torch.manual_seed(3)
    first, second = drop(x), drop(x)
    torch.manual_seed(3)
    assert torch.equal(drop(x), first) and torch.equal(drop(x), second)
    assert not torch.equal(first, second)


def test_fast_dropout_swaps_every_plain_dropout_in_place():
    from transformers import BertConfig, BertModel

    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32))
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2), nn.ModuleList([bert]))
    plain = [m for m in model.modules() if type(m) is nn.Dropout]
    probabilities = [m.p for m in plain]
    assert len(plain) >= 3
    assert fast_dropout(model) is model
    assert all(type(m) is Dropout for m in plain) and [m.p for m in plain] == probabilities
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert model[1].p == 0.2 and not list(model[1].state_dict())
