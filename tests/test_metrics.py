"""Metrics against numbers worked out by hand, ties and masking included."""
import math

import numpy as np
import pytest
import torch

from mmsr_kit.data.split import eval_set
from mmsr_kit.evaluate import full_ranking_metrics, metrics_from_ranks, parse_metric, rank_counts
from mmsr_kit.registry import ConfigError


def metrics(scores, targets, ks):
    g, e = rank_counts(torch.tensor(scores, dtype=torch.float32), torch.tensor(targets))
    return {k: float(v) for k, v in metrics_from_ranks(g, e, ks).items()}


def test_single_rank_by_hand():
    # target item 1 scores 0.5; items 2 (0.9) and 4 (0.7) score higher -> 0-based rank 2
    m = metrics([[-1.0, 0.5, 0.9, 0.1, 0.7]], [1], ks=[1, 2, 3])
    assert m["hr@1"] == 0 and m["hr@2"] == 0 and m["hr@3"] == 1
    assert m["ndcg@3"] == pytest.approx(1 / math.log2(4))  # rank 2 -> 1/log2(2+2)
    assert m["ndcg@2"] == 0


def test_ties_are_broken_at_random_in_expectation():
    # target 0.5; one item higher, two others equal -> ranks 1, 2, 3 with probability 1/3 each
    m = metrics([[0.9, 0.5, 0.5, 0.5, 0.1]], [2], ks=[1, 2, 3, 10])
    assert m["hr@1"] == 0
    assert m["hr@2"] == pytest.approx(1 / 3)
    assert m["hr@3"] == pytest.approx(2 / 3)
    assert m["hr@10"] == pytest.approx(1)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 3)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)) / 3)


def test_constant_scores_give_chance():
    n = 40
    m = metrics([[0.0] * n], [7], ks=[10])
    assert m["hr@10"] == pytest.approx(10 / n)


def test_sums_over_cases():
    m = metrics([[0.1, 0.9, 0.2], [0.1, 0.2, 0.9]], [1, 1], ks=[1])
    assert m["hr@1"] == 1  # first case hits, second misses: a sum, not a mean


class FixedModel(torch.nn.Module):
    """User vector (1, 0): an item's score is its first coordinate."""

    def __init__(self, item_scores):
        super().__init__()
        self.vectors = torch.nn.Parameter(torch.tensor([[s, 0.0] for s in item_scores]))

    def all_item_vectors(self, n_items, batch_size=4096):
        return self.vectors

    def last_user_vectors(self, inputs, item_vectors=None):
        return torch.tensor([[1.0, 0.0]]).expand(len(inputs), 2)


def test_history_is_masked_but_not_the_target():
    # items 1..5 score 5,4,3,2,1 (row 0 is padding). Target 3 with history {1, 3, 4}:
    # 1 is masked, 3 is the target itself (kept), 4 scores lower -> only item 2 is above: rank 1.
    model = FixedModel([0, 5, 4, 3, 2, 1])
    evalset = eval_set([np.array([1, 3, 4])], [3], [0], max_len=4)
    m = full_ranking_metrics(model, evalset, n_items=5, ks=[1, 2], batch_size=8)
    assert m["n"] == 1 and m["hr@1"] == 0 and m["hr@2"] == 1
    assert m["ndcg@2"] == pytest.approx(1 / math.log2(3))
    # without history the target sits behind items 1 and 2
    m = full_ranking_metrics(model, eval_set([np.array([5])], [3], [0], max_len=4), n_items=5, ks=[2, 3])
    assert m["hr@2"] == 0 and m["hr@3"] == 1


def test_padding_item_never_ranks():
    model = FixedModel([100, 1, 2])  # padding row scores highest but is never a candidate
    m = full_ranking_metrics(model, eval_set([np.array([1])], [2], [0], max_len=2), n_items=2, ks=[1])
    assert m["hr@1"] == 1


def test_batching_does_not_change_results():
    rng = np.random.default_rng(0)
    model = FixedModel(rng.normal(size=51).tolist())
    prefixes = [rng.choice(np.arange(1, 51), size=5, replace=False) for _ in range(37)]
    targets = rng.integers(1, 51, size=37)
    evalset = eval_set(prefixes, targets, np.arange(37), max_len=5)
    one = full_ranking_metrics(model, evalset, 50, ks=[10], batch_size=1000)
    small = full_ranking_metrics(model, evalset, 50, ks=[10], batch_size=4)
    assert one == pytest.approx(small)


def test_parse_metric():
    assert parse_metric("ndcg@10", [10, 20]) == ("ndcg", 10)
    with pytest.raises(ConfigError, match="choose one of"):
        parse_metric("ndcg@5", [10, 20])
    with pytest.raises(ConfigError):
        parse_metric("mrr@10", [10])


def test_capped_rank_counts_give_the_same_metrics():
    """The top-k shortcut changes nothing at any cut-off up to the cap, ties and all."""
    torch.manual_seed(0)
    scores = torch.randint(0, 40, (64, 300)).double()  # many ties
    scores[:, 0] = -torch.inf
    targets = torch.randint(1, 300, (64,))
    scores[:8, :].scatter_(1, targets[:8, None], 1e3)  # some targets on top
    full = metrics_from_ranks(*rank_counts(scores, targets), ks=(1, 10, 50))
    capped = metrics_from_ranks(*rank_counts(scores, targets, cap=50), ks=(1, 10, 50))
    assert full.keys() == capped.keys()
    for key in full:
        assert torch.allclose(full[key], capped[key]), key
    assert full["hr@50"] > 8  # the shortcut is not trivially skipping every row


def test_full_rows_below_topk_from_give_the_top_k_metrics(monkeypatch):
    """Below `TOPK_FROM` items the ranking counts over whole rows instead of a top-k: the same metrics, ties (many
    here) and masked history included."""
    import mmsr_kit.evaluate as evaluate

    rng = np.random.default_rng(1)
    n, cases = 300, 80
    vectors = torch.randint(-2, 3, (n + 1, 4), generator=torch.Generator().manual_seed(1)).float()  # ties everywhere
    vectors[0] = 0
    prefixes = [rng.choice(np.arange(1, n + 1), size=rng.integers(1, 6), replace=False) for _ in range(cases)]
    targets = [int(rng.choice(np.setdiff1d(np.arange(1, n + 1), p))) for p in prefixes]
    evalset = eval_set(prefixes, targets, np.arange(cases), max_len=5)
    model = SumModel(vectors)
    assert n + 1 < evaluate.TOPK_FROM
    rows = full_ranking_metrics(model, evalset, n, ks=[1, 10, 50], batch_size=16, probe=False)
    monkeypatch.setattr(evaluate, "TOPK_FROM", 0)  # the top-k at every size
    topk = full_ranking_metrics(model, evalset, n, ks=[1, 10, 50], batch_size=16, probe=False)
    assert rows == pytest.approx(topk, abs=1e-12)
    assert 0.05 < rows["hr@50"] < 0.95


class SumModel(torch.nn.Module):
    """Item vectors given; a user vector is the sum of its history's item vectors."""

    def __init__(self, vectors):
        super().__init__()
        self.vectors = torch.nn.Parameter(vectors)

    def all_item_vectors(self, n_items, batch_size=4096):
        return self.vectors.detach()

    def last_user_vectors(self, inputs, item_vectors=None):
        return self.vectors.detach()[inputs].sum(1)


def test_the_probe_settles_only_what_the_full_pass_would():
    """From 20k items a sample of the items settles the cases ranked below every cut-off first; the metrics must
    be the same as scoring every case against every item: targets near the cut-off, ties with the target that
    straddle it (duplicated item vectors), and high-scoring history items (masked, so they must not count)."""
    from mmsr_kit.evaluate import Probe

    rng = np.random.default_rng(0)
    n, cases = 24_000, 120
    vectors = torch.randn(n + 1, 16, generator=torch.Generator().manual_seed(0))
    vectors[0] = 0
    prefixes, targets = [], []
    for case in range(cases):
        prefix = rng.choice(np.arange(1, n + 1), size=4, replace=False)
        scores = vectors @ vectors[prefix].sum(0)
        scores[0] = -np.inf
        order = torch.argsort(scores, descending=True).numpy()
        kind = case % 4
        rank = [rng.integers(0, 10), rng.integers(40, 60), rng.integers(60, 600), rng.integers(600, n // 2)][kind]
        target = int(order[rank])
        if target in prefix:
            target = int(order[rank + 1])
        if case % 8 == 1:  # 70 items tied with a target ranked 40-60: its tie group reaches past the cut-off of 50
            vectors[order[rank + 1 : rank + 71]] = vectors[target].clone()
        if case % 8 == 2:  # the 300 best items go into the history (before the 4 the model sees): masked
            prefix = np.concatenate([[i for i in order[:300] if i != target and i not in prefix], prefix])
        prefixes.append(prefix)
        targets.append(target)
    model = SumModel(vectors)
    evalset = eval_set(prefixes, targets, np.arange(cases), max_len=4)
    probed = full_ranking_metrics(model, evalset, n, ks=[10, 50], batch_size=32)
    full = full_ranking_metrics(model, evalset, n, ks=[10, 50], batch_size=32, probe=False)
    assert probed == pytest.approx(full, abs=1e-12)
    assert 0.2 < full["hr@50"] < 0.8  # cases on both sides of the cut-off
    # the probe is not idle: it settles most far cases, and never one the full pass ranks inside the top 50
    from mmsr_kit.evaluate import masked_scores

    probe = Probe(model.all_item_vectors(n), cap=50)
    users = model.last_user_vectors(torch.as_tensor(evalset.inputs))
    rows, items = (torch.as_tensor(x) for x in evalset.masked(0, cases))
    targets = torch.as_tensor(evalset.targets)
    settled = probe.settled(users, (users * vectors[targets]).sum(1), rows, items)
    greater, _ = rank_counts(masked_scores(users, vectors, rows, items), targets)
    assert not settled[greater < 50].any()
    assert settled[greater >= 600].float().mean() > 0.5


def test_metrics_by_popularity_bucket_equal_each_bucket_evaluated_alone(smoke_config):
    from mmsr_kit.data import load_split
    from mmsr_kit.data.split import POPULARITY_BUCKETS, popularity_groups
    from mmsr_kit.evaluate import full_ranking_metrics
    from mmsr_kit.modes import build_model

    cfg = smoke_config()
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    names, of_case = popularity_groups(data.train_counts, data.test)
    assert names == [name for name, _, _ in POPULARITY_BUCKETS] and (of_case >= 0).all()
    counts = data.train_counts[data.test.targets]
    assert ((counts[of_case == 0] == 0).all() and (counts[of_case == 2] >= 5).all() and (counts[of_case == 2] <= 9).all()
            and (counts[of_case == 4] >= 50).all())
    whole = full_ranking_metrics(model, data.test, data.n_items, (10, 50), 64, groups=(names, of_case))
    assert sum(g["n"] for g in whole["groups"].values()) == whole["n"] == len(data.test)
    for g, name in enumerate(names):
        alone = full_ranking_metrics(model, data.test.subset(of_case == g), data.n_items, (10, 50), 64)
        assert whole["groups"][name]["n"] == alone["n"]
        for key in ("hr@10", "ndcg@10", "hr@50", "ndcg@50"):
            if alone["n"]:
                assert whole["groups"][name][key] == pytest.approx(alone[key], abs=1e-12), (name, key)
    for key in ("hr@10", "ndcg@50"):  # the buckets' case-weighted mean is the whole
        total = sum(g["n"] * g[key] for g in whole["groups"].values() if g["n"])
        assert total / whole["n"] == pytest.approx(whole[key], abs=1e-12)
    assert sum(g["n"] > 0 for g in whole["groups"].values()) >= 3  # several buckets are populated


def test_an_evalset_subset_keeps_each_case_with_its_own_history(smoke_config):
    from mmsr_kit.data import load_split

    data = load_split(smoke_config().data)
    rows = [5, 0, 17]
    sub = data.test.subset(rows)
    assert len(sub) == 3 and (sub.targets == data.test.targets[rows]).all() and (sub.inputs == data.test.inputs[rows]).all()
    for i, r in enumerate(rows):
        mine = sub.mask_items[sub.mask_offsets[i] : sub.mask_offsets[i + 1]]
        theirs = data.test.mask_items[data.test.mask_offsets[r] : data.test.mask_offsets[r + 1]]
        assert (mine == theirs).all()
