"""Negatives: uniform over items, never in the user's training history, zero at padding."""
import numpy as np
import pytest
import torch

from mmsr_kit.data.batches import TrainWindows, sample_negatives


def test_negatives_avoid_history_even_when_it_is_most_items():
    n_items = 20
    history = torch.tensor([list(range(1, 19)), [3, 5, 7, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21]])
    torch.manual_seed(0)
    neg = sample_negatives(history, (2, 500), n_items)
    assert set(neg[0].tolist()) == {19, 20}  # the only items outside row 0's history
    assert not set(neg[1].tolist()) & {3, 5, 7}
    assert set(neg[1].tolist()) == set(range(1, 21)) - {3, 5, 7}  # uniform: every other item shows up


def test_history_covering_every_item_is_an_error():
    with pytest.raises(RuntimeError, match="almost every item"):
        sample_negatives(torch.arange(1, 6)[None], (1, 4), 5, max_rounds=5)


def test_collate_on_real_split(smoke_config):
    from mmsr_kit import load_split

    data = load_split(smoke_config().data)
    windows = TrainWindows(data)
    idx = np.arange(64)
    inputs, targets, negatives = windows.collate(idx)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])  # targets are the inputs shifted by one
    assert torch.equal(negatives == 0, targets == 0)  # a negative exactly where there is a target
    for row, user in enumerate(data.window_users[idx]):
        assert not set(negatives[row].tolist()) & set(data.history([user])[0].tolist())


def test_k_negatives_per_position(smoke_config):
    from mmsr_kit import load_split

    data = load_split(smoke_config().data)
    idx = list(range(64))
    keys = [(i, 7) for i in idx]  # one batch seed, as EpochBatches gives it
    inputs, targets, negatives = TrainWindows(data, negatives=3).collate_keys(keys)
    assert negatives.shape == (*targets.shape, 3)
    assert torch.equal((negatives == 0).all(-1), targets == 0) and torch.equal((negatives == 0).any(-1), targets == 0)
    for row, user in enumerate(data.window_users[idx]):
        assert not set(negatives[row].flatten().tolist()) & set(data.history([user])[0].tolist())
    one = TrainWindows(data).collate_keys(keys)[2]
    assert one.shape == targets.shape  # the paper's single negative keeps its (B, L) shape
    with pytest.raises(ValueError, match="at least 1"):
        TrainWindows(data, negatives=0)


def test_k_negatives_loss_is_the_mean_of_single_negative_losses(smoke_config):
    """BCE with k negatives = the positive's BCE + the mean of the k negatives' BCE: the mean of the k losses the
    one-negative path gives, one negative at a time; and the encoded catalogue is shared (one encode)."""
    from mmsr_kit import load_split
    from mmsr_kit.modes import build_model

    cfg = smoke_config(model__mode="mmsr_t", model__text_encoder="bow", model__dropout=0.0)
    data = load_split(cfg.data)
    torch.manual_seed(0)
    model = build_model(cfg, data).eval()
    inputs, targets, negatives, distinct = TrainWindows(data, negatives=4).collate(list(range(32)), distinct=True)
    together = model(inputs, targets, negatives, distinct)
    apart = torch.stack([model(inputs, targets, negatives[..., j]) for j in range(4)]).mean()
    torch.testing.assert_close(together, apart)
    assert torch.equal(together, model(inputs, targets, negatives))  # the loader's distinct items: the same loss
