"""The split: leave-one-out without leaks, training windows, cold items and the cold test set."""
import numpy as np
import pandas as pd
import pytest

from mmsr_kit.data import SplitData, item_table, interaction_table, load_atomic
from mmsr_kit.data.tables import RecDataset


def tiny_split(tiny_dir, **kw):
    return SplitData(load_atomic(tiny_dir), **{"max_len": 3, "min_interactions": 5, "cold_threshold": 2, **kw})


def ids(data, indices):
    return [data.item_ids[i - 1] for i in indices if i > 0]


def test_users_filtered_and_unknown_items_counted(tiny_dir):
    data = tiny_split(tiny_dir)
    assert data.user_ids == ["a", "b", "d"]  # c has 4 interactions
    assert data.stats["dropped_users"] == 1
    assert data.stats["dropped_unknown_items"] == 1  # d's "zz"
    assert [ids(data, s) for s in data.sequences][2] == ["i1", "i9", "i2", "i3", "i5"]  # time order, not file order


def test_leave_one_out_by_hand(tiny_dir):
    data = tiny_split(tiny_dir)
    a = 0
    assert ids(data, data.test.inputs[a]) == ["i4", "i5", "i6"]  # last 3 before the test item
    assert ids(data, [data.test.targets[a]]) == ["i7"]
    assert ids(data, data.valid.inputs[a]) == ["i3", "i4", "i5"]
    assert ids(data, [data.valid.targets[a]]) == ["i6"]
    # masks: the whole history (not only the last max_len), never the target
    rows, items = data.test.masked(0, 1)
    assert sorted(ids(data, items)) == ["i1", "i2", "i3", "i4", "i5", "i6"]


def test_training_windows_cover_each_training_transition_once(tiny_dir):
    data = tiny_split(tiny_dir)
    # user a's training part i1..i5 with max_len 3 -> windows [i2 i3 i4 i5] and [0 0 i1 i2]
    a_windows = data.train_windows[data.window_users == 0]
    assert [ids(data, w) for w in a_windows] == [["i2", "i3", "i4", "i5"], ["i1", "i2"]]
    for u, seq in enumerate(data.sequences):
        pairs = [(w[t], w[t + 1]) for w in data.train_windows[data.window_users == u] for t in range(3) if w[t] > 0]
        expected = list(zip(seq[:-3], seq[1:-2]))  # transitions inside the training part only
        assert sorted(pairs) == sorted(expected)


def test_no_target_leaks_into_its_input(smoke_config):
    from mmsr_kit import load_split

    data = load_split(smoke_config().data)
    for u, seq in enumerate(data.sequences):
        train_items = data.train_windows[data.window_users == u]
        assert seq[-1] not in train_items and seq[-2] not in train_items
        assert seq[-1] not in data.test.inputs[u] and seq[-2] not in data.valid.inputs[u]
        assert data.test.inputs[u][-1] == seq[-2]  # test input ends right before the target
    assert data.train_counts.sum() == sum(len(s) - 2 for s in data.sequences)


def test_cold_items_and_cold_cases_by_hand(tiny_dir):
    data = tiny_split(tiny_dir)
    # training counts: i1 3, i2 3, i3 2, i4 1, i5 1, i9 1, i6..i8 0 -> cold (< 2): i4 i5 i6 i7 i8 i9
    assert sorted(ids(data, np.flatnonzero(data.cold))) == ["i4", "i5", "i6", "i7", "i8", "i9"]
    # held-out positions: a: i6 i7, b: i8 i4, d: i3 (warm) i5 -> five cold cases
    assert ids(data, data.cold_test.targets) == ["i6", "i7", "i8", "i4", "i5"]
    assert ids(data, data.cold_test.inputs[1]) == ["i4", "i5", "i6"]  # a cut right after i6, target i7
    assert data.stats["cold_cases"] == 5 and data.stats["cold_items"] == 6


def test_the_cold_test_positions_and_the_papers_cold_construction_by_hand(tiny_dir):
    data = tiny_split(tiny_dir)  # sequences a: i1..i7, b: i2 i3 i1 i8 i4, d: i1 i9 i2 i3 i5; cold: i4..i9
    assert ids(data, data.cold_test_only.targets) == ["i7", "i4", "i5"]  # the test positions only
    # the paper's: every position of a whole sequence whose item is cold, training part included, the prefix
    # before it as input (its last max_len = 3 items); the first position has no prefix
    assert ids(data, data.cold_paper.targets) == ["i4", "i5", "i6", "i7", "i8", "i4", "i9", "i5"]
    assert [ids(data, x) for x in data.cold_paper.inputs[:3]] == [["i1", "i2", "i3"], ["i2", "i3", "i4"],
                                                                  ["i3", "i4", "i5"]]
    assert ids(data, data.cold_paper.inputs[6]) == ["i1"]  # d's i9, right after its first item
    rows, items = data.cold_paper.masked(1, 2)  # the whole prefix is masked, not only its last 3 items
    assert sorted(ids(data, items)) == ["i1", "i2", "i3", "i4"]
    assert (data.stats["cold_cases_test"], data.stats["cold_cases_paper"]) == (3, 8)


def test_history_for_negatives_is_the_training_part(tiny_dir):
    data = tiny_split(tiny_dir)
    assert [ids(data, h) for h in data.history([1])] == [["i1", "i2", "i3"]]


def test_bad_tables_fail_clearly():
    items = item_table(["x", "x"], ["one", "two"])
    inter = interaction_table(["u"], ["x"], [0])
    with pytest.raises(ValueError, match="repeats item ids"):
        RecDataset("bad", items, inter)
    with pytest.raises(ValueError, match="lacks column"):
        RecDataset("bad", item_table(["x"], ["one"]), pd.DataFrame({"user_id": ["u"]}))
    dataset = RecDataset("few", item_table(["x", "y"], ["one", ""]), interaction_table(["u", "u"], ["x", "y"], [0, 1]))
    assert dataset.notes["empty_texts"] == 1
    with pytest.raises(ValueError, match="no user has 5 or more"):
        SplitData(dataset)
