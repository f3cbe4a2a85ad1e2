"""Full-ranking evaluation: every target ranked against all items, the user's history masked.

Ties are broken at random in expectation: a target with g items scoring higher and e
other items scoring the same sits at each of ranks g .. g+e with probability 1/(e+1),
so a model that scores everything equally gets exactly chance (HR@k = k / #items).
"""
import math

import numpy as np
import torch

from .registry import ConfigError

METRICS = ("hr", "ndcg")


def parse_metric(name, ks):
    """"ndcg@10" -> ("ndcg", 10), checked against the metrics and cut-offs that are computed."""
    kind, _, k = name.partition("@")
    if kind not in METRICS or not k.isdigit() or int(k) not in ks:
        valid = [f"{m}@{k}" for m in METRICS for k in ks]
        raise ConfigError(f"unknown metric {name!r}; choose one of: {', '.join(valid)}")
    return kind, int(k)


def rank_counts(scores, targets, cap=None):
    """scores (B, N), targets (B,) -> (#items scoring higher, #other items scoring the same), each (B,).

    With `cap` (the largest cut-off k), one top-k pass does it: every item scoring above a target that scores
    above the cap-th best is among the top cap, so both counts come from those cap values. A target below the
    cap-th best ranks at cap or lower and counts nothing at any k <= cap: (cap, 0). Only a target tied with the
    cap-th best (its ties may reach past the top cap) is counted over its whole row.
    """
    target_scores = scores.gather(1, targets[:, None])  # (B, 1)
    if cap is not None and cap < scores.shape[1]:
        top = torch.topk(scores, cap, dim=1, sorted=False).values  # (B, cap)
        kth = top.min(1, keepdim=True).values
        greater = torch.sum(top > target_scores, 1).clamp(max=cap)
        equal = (torch.sum(top == target_scores, 1) - 1).clamp(min=0)
        below = (target_scores < kth).squeeze(1)
        greater[below], equal[below] = cap, 0
        edge = (target_scores == kth).squeeze(1)
        if bool(edge.any()):
            equal[edge] = rank_counts(scores[edge], targets[edge])[1]
        return greater, equal
    # int32 sums: about twice as fast as summing bools into int64 on a CPU; exact below 2**31 items
    greater = torch.sum(scores > target_scores, 1, dtype=torch.int32)
    equal = torch.sum(scores == target_scores, 1, dtype=torch.int32) - 1
    return greater.long(), equal.long()


def metrics_from_ranks(greater, equal, ks, reduce=True):
    """Sums over cases of expected HR@k and NDCG@k under random tie-breaking: {"hr@10": sum, ...}; with
    reduce=False each case's value, (B,) per metric."""
    greater = greater.double()
    slots = equal.double() + 1  # ranks the target may take: greater .. greater + equal
    sums = {}
    for k in ks:
        # discount[j] = sum of 1 / log2(rank + 2) over ranks 0 .. j-1
        discount = torch.tensor([0.0] + [1 / math.log2(r + 2) for r in range(k)], dtype=torch.float64,
                                device=greater.device).cumsum(0)
        first = greater.clamp(max=k)
        last = (greater + slots).clamp(max=k)  # one past the last rank inside the top k
        sums[f"hr@{k}"] = (last - first) / slots
        sums[f"ndcg@{k}"] = (discount[last.long()] - discount[first.long()]) / slots
    return {key: value.sum() for key, value in sums.items()} if reduce else sums


def chance_metrics(evalset, n_items, ks=(10, 20, 50)):
    """Expected metrics of a model that knows nothing (every item scores the same): per case, the target among the
    items not masked, at a uniformly random rank. The floor for the new-item test."""
    candidates = n_items - np.diff(evalset.mask_offsets)  # the target and every unmasked item, (n,)
    equal = torch.as_tensor(candidates - 1, dtype=torch.int64)
    sums = metrics_from_ranks(torch.zeros_like(equal), equal, ks)
    return {key: float(value) / max(1, len(evalset)) for key, value in sums.items()}


def scores_into(users, vectors, out=None):
    """users (B, D) @ vectors (M, D).T in fp32, into `out[:B]` when given (also inside autocast)."""
    with torch.autocast(users.device.type, enabled=False):
        return torch.mm(users, vectors.T, out=None if out is None else out[: len(users)])


def masked_scores(users, item_vectors, rows, items, out=None):
    """Scores (B, N+1) of user vectors (B, D), with padding and each case's history (`rows`, `items`: tensors of
    pairs to mask, rows counted from 0) at -inf; written into `out` (at least B rows) when given: one buffer for
    every batch saves the allocator a large block per batch."""
    return mask_history(scores_into(users, item_vectors, out), rows, items)


def mask_history(scores, rows, items):
    """Padding (column 0) and each case's history (`rows`, `items`) at -inf, in place; returns `scores`."""
    scores[:, 0] = -torch.inf
    scores[rows, items] = -torch.inf
    return scores


def rank_rows(scores, targets, rows, items, cap):
    """Rank counts (see `rank_counts`) of full score rows (B, N+1), history masked in place; top-k from `TOPK_FROM`."""
    mask_history(scores, rows, items)
    check_finite(scores.gather(1, targets[:, None]))
    return rank_counts(scores, targets, cap if scores.shape[1] >= TOPK_FROM else None)


class Probe:
    """A sample of the items (the eighth with the largest vectors) that settles most cases cheaply.

    A case with at least `cap` sampled items (outside its history) scoring above its target ranks at cap or
    lower: all the metrics need to know of it. Only the other cases are scored against every item. Any sample
    would be exact; the items with the largest vectors are the ones that can score highest (|u.v| <= |u| |v|),
    so they settle the most. The target's score here comes from another computation than the full score row,
    so "above" means above by more than the two can differ through float rounding (a margin from the vector
    norms): a case the probe settles is one the full pass settles the same way, ties and all. Off below
    `min_items` items, where the full pass is cheap.
    """

    min_items = 20_000

    def __init__(self, item_vectors, cap):
        n = len(item_vectors) - 1
        size = n // 8
        self.active = n >= self.min_items and size >= 8 * cap
        if not self.active:
            return
        device = item_vectors.device
        sample = torch.topk(item_vectors[1:].norm(dim=1), size).indices.cpu() + 1  # never row 0 (padding)
        self.column = torch.full((n + 1,), -1, dtype=torch.long)
        self.column[sample] = torch.arange(size)
        self.column = self.column.to(device)
        self.vectors = item_vectors[sample.to(device)]  # (size, D)
        self.cap = cap
        # |fl(u.v) - u.v| <= D * eps * |u| * |v| for a D-term dot product; two computations, so twice that, again x2
        eps = {"highest": 2.0**-24, "high": 2.0**-11}.get(torch.get_float32_matmul_precision(), 2.0**-8)
        self.tolerance = 4 * item_vectors.shape[1] * eps * float(item_vectors.norm(dim=1).max())

    def settled(self, users, target_scores, rows, items):
        """(B,) bool: cases certainly ranked at cap or lower; target_scores (B,) as u.v of each target."""
        margin = self.tolerance * users.norm(dim=1)
        if getattr(self, "buffer", None) is None or len(self.buffer) < len(users):
            self.buffer = users.new_empty(len(users), len(self.vectors))
        scores = scores_into(users, self.vectors, self.buffer)  # (B, size)
        columns = self.column[items]
        sampled = columns >= 0
        scores[rows[sampled], columns[sampled]] = -torch.inf  # history items do not count against the target
        # how many score above target + margin: x - bar, clipped at 0, then its sign is 1 exactly for those
        # (in place, in the probe's buffer; about 5x a top-k of the same rows on a CPU; a NaN settles nothing)
        above = scores.sub_((target_scores + margin)[:, None]).clamp_(min=0).sign_().sum(1)
        return above >= self.cap


# Below this many items two comparisons over each whole score row cost less than one top-k (a CPU, 256 cases:
# 1.3 vs 4.0 ms at 2,001 items, 15.0 vs 13.4 ms at 20,001): the exact counts, the same metrics at every k <= cap.
TOPK_FROM = 16_384


def rank_batch(users, item_vectors, targets, rows, items, cap, buffer=None, probe=None):
    """(#items scoring higher, #other items scoring the same) of each case's target, clipped at `cap` from
    `TOPK_FROM` items; the cases a `probe` settles get (cap, 0) without a full score row."""
    if probe is None or not probe.active:
        return rank_rows(scores_into(users, item_vectors, buffer), targets, rows, items, cap)
    target_scores = (users * item_vectors[targets]).sum(1)  # (B,)
    check_finite(target_scores)
    open_ = torch.nonzero(~probe.settled(users, target_scores, rows, items)).squeeze(1)
    greater = torch.full_like(targets, cap)
    equal = torch.zeros_like(targets)
    if len(open_):
        row_of = torch.full_like(targets, -1)
        row_of[open_] = torch.arange(len(open_), device=targets.device)
        keep = row_of[rows] >= 0
        scores = masked_scores(users[open_], item_vectors, row_of[rows[keep]], items[keep], buffer)
        greater[open_], equal[open_] = rank_counts(scores, targets[open_], cap)
    return greater, equal


def check_finite(target_scores):
    if not torch.isfinite(target_scores).all():
        raise FloatingPointError("the model produced non-finite scores; training has diverged")


def model_device(model):
    return next(iter(list(model.parameters()) + list(model.buffers()))).device


@torch.no_grad()
def full_ranking_metrics(model, evalset, n_items, ks=(10, 20, 50), batch_size=256, accelerator=None, probe=True,
                         groups=None):
    """Mean HR@k and NDCG@k over the cases of `evalset`, plus "n" (the number of cases). `groups`: (names, each
    case's group index (n,)) adds "groups": {name: {"n", metrics}} from the same pass (e.g. popularity buckets).

    Cases are scored `batch_size` at a time, so no full users x items matrix is ever held; with `probe` (from
    20k items) a sample of the items settles first the cases whose target ranks below every cut-off (`Probe`).
    Under several processes each takes one contiguous share of the cases (no case twice, none dropped) and the
    sums are added up.
    """
    was_training = model.training
    model.eval()
    device = model_device(model)
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    bounds = np.linspace(0, len(evalset), world + 1).astype(int)
    item_vectors = model.all_item_vectors(n_items).float()  # (N+1, D), once per evaluation
    candidates = model.candidates(item_vectors) if hasattr(model, "candidates") else item_vectors
    scorer = getattr(model, "all_scores", None)  # a model whose scores are no dot products (CARCA): its own rows
    sums = {f"{m}@{k}": torch.zeros((), dtype=torch.float64, device=device) for k in ks for m in METRICS}
    buffer = torch.empty(min(batch_size, len(evalset)), len(item_vectors), device=device) if scorer is None else None
    sampler = Probe(candidates, max(ks)) if probe and scorer is None else None
    if groups is not None:
        names, of_case = groups
        group_sums = {key: torch.zeros(len(names), dtype=torch.float64, device=device) for key in sums}
    for start in range(bounds[rank], bounds[rank + 1], batch_size):
        stop = min(start + batch_size, bounds[rank + 1])
        inputs = torch.as_tensor(evalset.inputs[start:stop], device=device)
        targets = torch.as_tensor(evalset.targets[start:stop], device=device)
        rows, items = (torch.as_tensor(x, device=device) for x in evalset.masked(start, stop))
        if scorer is not None:
            greater, equal = rank_rows(scorer(inputs, item_vectors).float(), targets, rows, items, max(ks))
        else:
            users = model.last_user_vectors(inputs, item_vectors).float()  # (B, D)
            greater, equal = rank_batch(users, candidates, targets, rows, items, max(ks), buffer, sampler)
        for key, value in metrics_from_ranks(greater, equal, ks, reduce=False).items():
            sums[key] += value.sum()
            if groups is not None:
                group_sums[key].index_add_(0, torch.as_tensor(of_case[start:stop], device=device), value)
    if world > 1:
        sums = {k: accelerator.reduce(v, "sum") for k, v in sums.items()}
        if groups is not None:
            group_sums = {k: accelerator.reduce(v, "sum") for k, v in group_sums.items()}
    model.train(was_training)
    n = len(evalset)
    out = {"n": n, **({k: float(v / n) for k, v in sums.items()} if n else {})}
    if groups is not None:
        counts = np.bincount(np.asarray(of_case, dtype=np.int64), minlength=len(names))
        out["groups"] = {name: {"n": int(c), **({k: float(v[g] / c) for k, v in group_sums.items()} if c else {})}
                         for g, (name, c) in enumerate(zip(names, counts))}
    return out
