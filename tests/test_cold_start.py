"""The true new-item setting: items held out of training entirely, their test cases, and the chance floor."""
import numpy as np
import pytest
import torch

from mmsr_kit.data import SplitData, interaction_table, item_table
from mmsr_kit.data.batches import TrainWindows
from mmsr_kit.data.tables import RecDataset
from mmsr_kit.evaluate import chance_metrics, full_ranking_metrics
from mmsr_kit.registry import ConfigError


def hand_split(new_items):
    """Two users over items i1..i6; i5 and i6 are the candidates for new items."""
    a = ["i1", "i5", "i2", "i3", "i6", "i4", "i1"]
    b = ["i2", "i3", "i4", "i5", "i1", "i2", "i3"]
    users = ["a"] * len(a) + ["b"] * len(b)
    inter = interaction_table(users, a + b, list(range(len(a))) + list(range(len(b))))
    items = item_table([f"i{i}" for i in range(1, 7)], [f"title {i}" for i in range(1, 7)])
    return SplitData(RecDataset("hand", items, inter), max_len=4, min_interactions=3, cold_threshold=2,
                     new_items=new_items)


def names(data, indices):
    return [data.item_ids[i - 1] for i in indices if i > 0]


def test_new_items_leave_training_and_get_their_own_cases_by_hand():
    data = hand_split(["i5", "i6"])
    assert [names(data, s) for s in data.sequences] == [["i1", "i2", "i3", "i4", "i1"], ["i2", "i3", "i4", "i1", "i2", "i3"]]
    assert data.train_counts[data.new].sum() == 0
    # a: last new item i6, after i1 i5 i2 i3 -> input i1 i2 i3 (i5 is new too); b: i5 after i2 i3 i4
    assert [names(data, row) for row in data.new_test.inputs] == [["i1", "i2", "i3"], ["i2", "i3", "i4"]]
    assert names(data, data.new_test.targets) == ["i6", "i5"]
    assert data.stats["new_items"] == 2 and data.stats["new_cases"] == 2
    # among new items only: every trained item is masked as well, so the candidates are i5 and i6
    rows, masked = data.new_among_new.masked(0, 2)
    assert sorted(names(data, masked[rows == 0])) == ["i1", "i2", "i3", "i4"]
    assert chance_metrics(data.new_among_new, data.n_items, [1])["hr@1"] == pytest.approx(0.5)


def test_without_new_items_nothing_changes(tiny_dir):
    from mmsr_kit.data import load_atomic

    plain = SplitData(load_atomic(tiny_dir), max_len=3, cold_threshold=2)
    none = SplitData(load_atomic(tiny_dir), max_len=3, cold_threshold=2, new_items=0.0)
    assert len(none.new_test) == 0 and none.negative_pool is None
    assert np.array_equal(plain.train_windows, none.train_windows)


def test_unknown_new_item_id_is_an_error():
    with pytest.raises(ConfigError, match="not in the item table"):
        hand_split(["i5", "zz"])


def test_new_items_on_the_synthetic_world_never_train_not_even_as_negatives(smoke_config):
    from mmsr_kit import load_split

    data = load_split(smoke_config(data__new_items=0.1).data)
    assert data.new.sum() == 30 and len(data.new_test) > 100
    assert not data.new[np.concatenate(data.sequences)].any()
    assert data.new[data.new_test.targets].all() and not data.new[data.new_test.inputs].any()
    windows = TrainWindows(data)
    generator = torch.Generator().manual_seed(0)
    for start in range(0, len(windows), 256):
        _, _, negatives = windows.collate(list(range(start, min(start + 256, len(windows)))), generator=generator)
        assert not data.new[negatives.numpy()].any()


def test_chance_by_hand_and_a_model_that_knows_nothing_scores_it():
    data = hand_split(["i5", "i6"])
    # new_test: case a masks i1 i2 i3 (3 of 6) -> 3 candidates; case b masks i2 i3 i4 -> 3 candidates
    chance = chance_metrics(data.new_test, data.n_items, [1, 2])
    assert chance["hr@1"] == pytest.approx(1 / 3) and chance["hr@2"] == pytest.approx(2 / 3)
    assert chance["ndcg@2"] == pytest.approx((1 + 1 / np.log2(3)) / 3)

    class Constant(torch.nn.Module):  # every item the same vector: all scores tie
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def all_item_vectors(self, n_items, batch_size=0):
            return torch.ones(n_items + 1, 2)

        def last_user_vectors(self, inputs, item_vectors=None):
            return torch.ones(len(inputs), 2)

    measured = full_ranking_metrics(Constant(), data.new_test, data.n_items, [1, 2])
    assert measured["hr@1"] == pytest.approx(chance["hr@1"]) and measured["ndcg@2"] == pytest.approx(chance["ndcg@2"])


def test_idsr_has_no_vector_for_new_items_and_scores_exactly_chance_on_them(smoke_config):
    from mmsr_kit.train import fit

    run = fit(smoke_config(data__new_items=0.1, train__epochs=2), results=False, progress=False)
    assert run.metrics["new"]["n"] == run.metrics["new_among_new"]["n"] == len(run.data.new_test)
    table = run.model.items.table.weight.detach()
    new = torch.as_tensor(run.data.new)
    assert (table[new] == 0).all() and (table[~new][1:] != 0).any(1).all()  # never trained, still zero
    chance = chance_metrics(run.data.new_among_new, run.data.n_items, run.config.eval.ks)
    assert run.metrics["new_among_new"]["hr@10"] == pytest.approx(chance["hr@10"])  # all new items tie
    assert run.metrics["new_among_new"]["ndcg@50"] == pytest.approx(chance["ndcg@50"])
