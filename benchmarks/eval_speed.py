"""Evaluation speed: the kit's full ranking vs a naive per-user loop over a full score matrix, side by side.

    python benchmarks/eval_speed.py [--items 10000 100000] [--users 2000] [--device cpu|cuda]

Both rank every target against all items with the case's history masked, on the same SASRec (random weights)
and the same cases, and must agree on HR@10, NDCG@10 and HR@1000; the kit is timed at its default cut-offs
(10, 20, 50). The naive path is what peer code does: one users x items score matrix, then per user a Python
loop that masks the history, sorts the row and finds the target. The kit: item vectors once, users scored in
batches into one buffer, a sample of the items settles the cases ranked below every cut-off (from 20k items),
top-k on the device for the rest (no sort; below 16k items two comparisons over each whole row instead).

Where targets rank matters to the kit (the sample settles low-ranked ones cheaply), so two kinds of targets:
"trained-like": a share `--top-share` of the targets among each user's 50 best-scored items, the others at a
rank drawn log-uniformly from 50 to all items (a trained model's pattern: HR@50 of about that share; default
0.15, mid-range of the paper's Table 5, where HR@50 is 0.06 to 0.22 on 39k to 85k items);
"uniform": targets drawn at random (what random weights give; cheap for the kit).
The kit's time is the median of three runs. Memory: on CUDA the peak allocated during the path; on CPU the
largest score block the path holds at once.
"""
import argparse
import math
import time
from types import SimpleNamespace

import numpy as np
import torch

from mmsr_kit.data.split import eval_set
from mmsr_kit.evaluate import full_ranking_metrics, masked_scores
from mmsr_kit.model import IDEmbedding, Recommender
from mmsr_kit.sequence import build_sequence


def naive(model, evalset, n_items, k=10, wide=1000):
    with torch.no_grad():
        item_vectors = model.all_item_vectors(n_items)
        inputs = torch.as_tensor(evalset.inputs, device=item_vectors.device)
        scores = (model.last_user_vectors(inputs, item_vectors) @ item_vectors.T).cpu().numpy()  # (U, N+1)
    hits = ndcg = wide_hits = 0.0
    for u in range(len(evalset)):
        row = scores[u].copy()
        row[0] = -np.inf
        rows, items = evalset.masked(u, u + 1)
        for item in items:
            row[item] = -np.inf
        order = np.argsort(-row)
        rank = int(np.where(order == evalset.targets[u])[0][0])
        if rank < k:
            hits += 1
            ndcg += 1 / math.log2(rank + 2)
        wide_hits += rank < wide
    n = len(evalset)
    return {"hr@10": hits / n, "ndcg@10": ndcg / n, f"hr@{wide}": wide_hits / n}, scores.nbytes


def trained_like_targets(model, evalset, n_items, top_share, rng, batch_size=256):
    """Per case an item at a chosen rank of its (history-masked) score row: rank < 50 with probability
    top_share, else log-uniform in [50, #items)."""
    device = next(model.parameters()).device
    targets = np.empty(len(evalset), np.int64)
    with torch.no_grad():
        item_vectors = model.all_item_vectors(n_items)
        for start in range(0, len(evalset), batch_size):
            stop = min(start + batch_size, len(evalset))
            users = model.last_user_vectors(torch.as_tensor(evalset.inputs[start:stop], device=device), item_vectors)
            rows, items = (torch.as_tensor(x, device=device) for x in evalset.masked(start, stop))
            order = torch.argsort(masked_scores(users, item_vectors, rows, items), dim=1, descending=True).cpu()
            for row in range(stop - start):
                allowed = n_items - int((rows == row).sum())  # ranks past this are history or padding
                rank = (rng.integers(0, 50) if rng.random() < top_share
                        else int(np.exp(rng.uniform(np.log(50), np.log(allowed)))))
                targets[start + row] = order[row, min(rank, allowed - 1)]
    return targets


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-naive-above", type=int, default=200_000, help="the naive path only up to this size")
    parser.add_argument("--top-share", type=float, default=0.15,
                        help="trained-like targets: share in the top 50 (the paper's Table 5: HR@50 0.06 to 0.22)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    print(f"{args.users} users, SASRec hidden {args.hidden}, {torch.get_num_threads()} threads, device {device}")
    print(f"{'items':>9}{'targets':>14}{'path':>7}{'users/s':>11}{'seconds':>9}{'MiB':>8}{'HR@50':>8}{'speed-up':>10}")
    for n_items in args.items:
        rng = np.random.default_rng(0)
        torch.manual_seed(0)
        cfg = SimpleNamespace(sequence="sasrec", hidden=args.hidden, layers=None, heads=2, dropout=0.0)
        model = Recommender(IDEmbedding(n_items, args.hidden), build_sequence(cfg, args.max_len)).to(device).eval()
        lengths = rng.integers(5, args.max_len + 1, args.users)
        prefixes = [rng.choice(n_items, size=n, replace=False) + 1 for n in lengths]
        uniform = eval_set(prefixes, rng.integers(1, n_items + 1, args.users), np.arange(args.users), args.max_len)
        trained = eval_set(prefixes, trained_like_targets(model, uniform, n_items, args.top_share, rng),
                           np.arange(args.users), args.max_len)
        for kind, evalset in (("trained-like", trained), ("uniform", uniform)):
            # untimed: warm-up, and the metrics checked against the naive loop (HR@1000 is rarely 0)
            check = full_ranking_metrics(model, evalset, n_items, ks=(10, 1000), batch_size=args.batch_size)
            runs = [timed(lambda: full_ranking_metrics(model, evalset, n_items, ks=(10, 20, 50),
                                                       batch_size=args.batch_size), device) for _ in range(3)]
            kit, kit_s = sorted(runs, key=lambda run: run[1])[1]  # the median of three
            memory = torch.cuda.max_memory_allocated() if cuda else args.batch_size * (n_items + 1) * 4
            print(f"{n_items:>9}{kind:>14}{'kit':>7}{args.users / kit_s:>11.0f}{kit_s:>9.2f}{memory / 2**20:>8.0f}"
                  f"{kit['hr@50']:>8.3f}")
            if n_items > args.skip_naive_above:
                continue
            (reference, nbytes), seconds = timed(lambda: naive(model, evalset, n_items), device)
            for key in ("hr@10", "ndcg@10", "hr@1000"):  # random weights: no ties, so both must agree exactly
                assert abs(reference[key] - check[key]) < 1e-9, (key, reference, check)
            memory = torch.cuda.max_memory_allocated() if cuda else nbytes
            print(f"{n_items:>9}{kind:>14}{'naive':>7}{args.users / seconds:>11.0f}{seconds:>9.2f}"
                  f"{memory / 2**20:>8.0f}{'':>8}{seconds / kit_s:>9.1f}x")


if __name__ == "__main__":
    main()
