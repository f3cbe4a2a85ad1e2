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

    With `cap` (the largest cut-off k): a target scoring below the cap-th best score ranks at cap or lower and
    counts nothing at any k <= cap, so it gets (cap, 0) from one top-k pass; only the other rows are counted.
    """
    target_scores = scores.gather(1, targets[:, None])  # (B, 1)
    if cap is not None and cap < scores.shape[1]:
        kth = torch.topk(scores, cap, dim=1, sorted=False).values.min(1, keepdim=True).values  # (B, 1)
        near = (target_scores >= kth).squeeze(1)
        greater = torch.full_like(targets, cap)
        equal = torch.zeros_like(targets)
        if bool(near.any()):
            greater[near], equal[near] = rank_counts(scores[near], targets[near])
        return greater, equal
    # int32 sums: about twice as fast as summing bools into int64 on a CPU; exact below 2**31 items
    greater = torch.sum(scores > target_scores, 1, dtype=torch.int32)
    equal = torch.sum(scores == target_scores, 1, dtype=torch.int32) - 1
    return greater.long(), equal.long()


def metrics_from_ranks(greater, equal, ks):
    """Sums over cases of expected HR@k and NDCG@k under random tie-breaking: {"hr@10": sum, ...}."""
    greater = greater.double()
    slots = equal.double() + 1  # ranks the target may take: greater .. greater + equal
    sums = {}
    for k in ks:
        # discount[j] = sum of 1 / log2(rank + 2) over ranks 0 .. j-1
        discount = torch.tensor([0.0] + [1 / math.log2(r + 2) for r in range(k)], dtype=torch.float64,
                                device=greater.device).cumsum(0)
        first = greater.clamp(max=k)
        last = (greater + slots).clamp(max=k)  # one past the last rank inside the top k
        sums[f"hr@{k}"] = ((last - first) / slots).sum()
        sums[f"ndcg@{k}"] = ((discount[last.long()] - discount[first.long()]) / slots).sum()
    return sums


def score_batch(model, item_vectors, evalset, start, stop, device):
    """Scores (B, N+1) of cases start..stop, with padding and each case's history at -inf."""
    inputs = torch.as_tensor(evalset.inputs[start:stop], device=device)
    users = model.last_user_vectors(inputs, item_vectors).to(item_vectors.dtype)  # (B, D)
    scores = users @ item_vectors.T  # (B, N+1)
    scores[:, 0] = -torch.inf
    rows, items = evalset.masked(start, stop)
    scores[torch.as_tensor(rows, device=device), torch.as_tensor(items, device=device)] = -torch.inf
    return scores


def model_device(model):
    return next(iter(list(model.parameters()) + list(model.buffers()))).device


@torch.no_grad()
def full_ranking_metrics(model, evalset, n_items, ks=(10, 20, 50), batch_size=256, accelerator=None):
    """Mean HR@k and NDCG@k over the cases of `evalset`, plus "n" (the number of cases).

    Cases are scored `batch_size` at a time, so no full users x items matrix is ever held.
    Under several processes each takes one contiguous share of the cases (no case twice,
    none dropped) and the sums are added up.
    """
    was_training = model.training
    model.eval()
    device = model_device(model)
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    bounds = np.linspace(0, len(evalset), world + 1).astype(int)
    item_vectors = model.all_item_vectors(n_items).float()  # (N+1, D), once per evaluation
    sums = {f"{m}@{k}": torch.zeros((), dtype=torch.float64, device=device) for k in ks for m in METRICS}
    for start in range(bounds[rank], bounds[rank + 1], batch_size):
        stop = min(start + batch_size, bounds[rank + 1])
        scores = score_batch(model, item_vectors, evalset, start, stop, device)
        targets = torch.as_tensor(evalset.targets[start:stop], device=device)
        if not torch.isfinite(scores.gather(1, targets[:, None])).all():
            raise FloatingPointError("the model produced non-finite scores; training has diverged")
        greater, equal = rank_counts(scores, targets, cap=max(ks))
        for key, value in metrics_from_ranks(greater, equal, ks).items():
            sums[key] += value
    if world > 1:
        sums = {k: accelerator.reduce(v, "sum") for k, v in sums.items()}
    model.train(was_training)
    n = len(evalset)
    return {"n": n, **({k: float(v / n) for k, v in sums.items()} if n else {})}
