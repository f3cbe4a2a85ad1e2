"""Every sequence model: build, forward, backward, one step; causality; unique-item encoding."""
import pytest
import torch

from mmsr_kit.config import ModelConfig
from mmsr_kit.model import IDEmbedding, MostPop, Recommender
from mmsr_kit.registry import SEQUENCES
from mmsr_kit.sequence import build_sequence

L, D, N = 8, 16, 30


def make(name, dropout=0.0):
    torch.manual_seed(0)
    return Recommender(IDEmbedding(N, D), build_sequence(ModelConfig(sequence=name, hidden=D, dropout=dropout), L))


def batch():
    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(1, N + 1, (4, L), generator=g)
    inputs[0, :3] = 0  # left padding
    targets = torch.randint(1, N + 1, (4, L), generator=g) * (inputs > 0)
    negatives = torch.randint(1, N + 1, (4, L), generator=g) * (inputs > 0)
    return inputs, targets, negatives


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_forward_backward_step(name):
    model = make(name, dropout=0.1)
    inputs, targets, negatives = batch()
    assert model.user_vectors(inputs).shape == (4, L, D)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = model(inputs, targets, negatives)
    first.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "position" not in n)
    optimizer.step()
    optimizer.zero_grad()
    for _ in range(20):
        loss = model(inputs, targets, negatives)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss < first  # it learns the batch


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_causal_later_items_do_not_change_earlier_outputs(name):
    model = make(name).eval()
    inputs, _, _ = batch()
    changed = inputs.clone()
    changed[:, 5:] = (changed[:, 5:] % N) + 1
    a, b = model.user_vectors(inputs), model.user_vectors(changed)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-5)
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-5)


def test_sasrec_attends_to_every_earlier_real_item():
    model = make("sasrec").eval()
    inputs, _, _ = batch()
    # the item vectors at padding are zeros anyway; the attention mask keeps real positions off them
    out = model.user_vectors(inputs)
    assert torch.isfinite(out).all()
    shorter = inputs.clone()
    shorter[0, :4] = 0  # drop one more early item of row 0: later outputs must change (it was attended to)
    assert not torch.allclose(model.user_vectors(shorter)[0, -1], out[0, -1])


def test_unique_item_encoding_equals_direct_lookup():
    model = make("sasrec")
    inputs, _, _ = batch()
    direct = model.items.table(inputs) * (inputs > 0)[..., None]
    assert torch.equal(model.item_vectors(inputs), direct)


def test_user_vectors_from_the_item_table_equal_encoding_again():
    model = make("sasrec").eval()
    inputs, _, _ = batch()
    table = model.all_item_vectors(N)
    assert torch.allclose(model.last_user_vectors(inputs, table), model.last_user_vectors(inputs), atol=1e-6)


def test_all_item_vectors_and_mostpop():
    model = make("gru4rec")
    vectors = model.all_item_vectors(N, batch_size=7)
    assert vectors.shape == (N + 1, D) and torch.equal(vectors[0], torch.zeros(D))
    assert torch.equal(vectors[1:], model.items.table.weight[1:])
    pop = MostPop([0, 5, 1, 9])
    scores = pop.last_user_vectors(torch.zeros(2, 3, dtype=torch.long)) @ pop.all_item_vectors(3).T
    assert scores[0].tolist() == [0, 5, 1, 9]


def test_sequence_longer_than_positions_is_an_error():
    model = make("sasrec")
    with pytest.raises(ValueError, match="longer than the model's 8 positions"):
        model.user_vectors(torch.ones(2, L + 1, dtype=torch.long))
