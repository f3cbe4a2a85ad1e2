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


@pytest.mark.parametrize("padded", [True, False])
def test_distinct_items_rebuild_the_ids_with_row_0_for_padding(padded):
    from mmsr_kit.model import distinct_items

    ids = torch.tensor([[5, 3, 5, 9], [3, 3, 7, 5]]) * (torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]) if padded else 1)
    real, inverse = distinct_items(ids)
    assert sorted(real.tolist()) == sorted(set(ids[ids > 0].tolist()))  # each real item once, never 0
    assert torch.equal(torch.cat([torch.zeros(1, dtype=ids.dtype), real])[inverse], ids.reshape(-1))


def test_distinct_items_from_the_loader_give_the_same_loss(smoke_config):
    """The training loader computes the distinct items on the host; the model uses them as they are."""
    from mmsr_kit import load_split
    from mmsr_kit.data.batches import TrainWindows

    cfg = smoke_config(model__mode="mmsr_t", model__text_encoder="bow", model__dropout=0.0)
    data = load_split(cfg.data)
    from mmsr_kit.modes import build_model

    torch.manual_seed(0)
    model = build_model(cfg, data).eval()
    with_distinct = TrainWindows(data).collate(list(range(16)), distinct=True)
    assert len(with_distinct) == 4
    assert torch.equal(model(*with_distinct), model(*with_distinct[:3]))


class Shard:
    """What full_ranking_metrics needs of an Accelerator: this process's place; `reduce` is done by the test."""

    def __init__(self, index, processes):
        self.process_index, self.num_processes = index, processes

    def reduce(self, value, how):
        return value


@pytest.mark.parametrize("processes", [2, 3, 30])
def test_evaluation_shards_cover_every_case_once(processes):
    """Each process takes a contiguous share of the cases; the shares' sums add up to the one-process metrics
    (no case twice, none dropped), also when the cases do not divide evenly and a share is empty."""
    import numpy as np

    from mmsr_kit.data.split import eval_set
    from mmsr_kit.evaluate import full_ranking_metrics

    model = make("sasrec").eval()
    rng = np.random.default_rng(0)
    cases = 23
    evalset = eval_set([rng.choice(np.arange(1, N + 1), 4, replace=False) for _ in range(cases)],
                       rng.integers(1, N + 1, cases), np.arange(cases), L)
    whole = full_ranking_metrics(model, evalset, N, ks=(1, 5, 10))
    shares = [full_ranking_metrics(model, evalset, N, ks=(1, 5, 10), batch_size=2, accelerator=Shard(i, processes))
              for i in range(processes)]
    for key in whole:
        if key != "n":
            assert sum(share[key] for share in shares) == pytest.approx(whole[key]), key
    assert 0 < whole["hr@10"] < 1  # some hits, some misses


@pytest.mark.parametrize("name", ["gru4rec", "sasrec"])
def test_more_padding_before_a_history_leaves_its_vectors_unchanged(name):
    """GRU4Rec reads only the real items (packed sequences), from a zero state at the first; SASRec masks padding.
    The same history left-padded to 8 or to 6 positions, or not padded at all, gives the same vectors."""
    model = make(name).eval()
    history = torch.tensor([7, 3, 12, 5])
    padded = torch.zeros(2, L, dtype=torch.long)
    padded[0, -4:] = history
    padded[1, -6:] = torch.tensor([9, 1, 7, 3, 12, 5])  # another row, longer: the batch's lengths differ
    shorter = torch.cat([torch.zeros(2, dtype=torch.long), history])[None]  # 2 padding positions instead of 4
    with torch.no_grad():
        full = model.user_vectors(padded)[0, -4:]
        assert torch.allclose(model.user_vectors(shorter)[0, -4:], full, atol=1e-6)
        assert torch.allclose(model.user_vectors(history[None])[0], full, atol=1e-6)
        assert not torch.allclose(model.user_vectors(padded)[1, -4:], full, atol=1e-3)  # earlier items count
