"""Evaluation speed: the kit's full ranking vs a naive per-user loop over a full score matrix, side by side.

    python benchmarks/eval_speed.py [--items 10000 100000] [--users 2000] [--device cpu|cuda]

Both rank every target against all items with the case's history masked, on the same SASRec (random weights)
and the same random cases, and must agree on HR@10, NDCG@10 and HR@1000; the kit is timed at its default
cut-offs (10, 20, 50). The naive path is what peer code does: one users x items
score matrix, then per user a Python loop that masks the history, sorts the row and finds the target.
The kit: item vectors once, users scored in batches, ranks from comparisons on the device (no sort).
"Largest block" is the biggest score matrix each path holds at once.
"""
import argparse
import math
import time
from types import SimpleNamespace

import numpy as np
import torch

from mmsr_kit.data.split import eval_set
from mmsr_kit.evaluate import full_ranking_metrics
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-naive-above", type=int, default=200_000, help="the naive path only up to this size")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(f"{args.users} users, SASRec hidden {args.hidden}, {torch.get_num_threads()} threads, device {device}")
    print(f"{'items':>9}{'path':>7}{'users/s':>11}{'seconds':>9}{'largest block MiB':>19}{'HR@1000':>9}{'speed-up':>10}")
    for n_items in args.items:
        rng = np.random.default_rng(0)
        torch.manual_seed(0)
        cfg = SimpleNamespace(sequence="sasrec", hidden=args.hidden, layers=None, heads=2, dropout=0.0)
        model = Recommender(IDEmbedding(n_items, args.hidden), build_sequence(cfg, args.max_len)).to(device).eval()
        lengths = rng.integers(5, args.max_len + 1, args.users)
        prefixes = [rng.choice(n_items, size=n, replace=False) + 1 for n in lengths]
        targets = rng.integers(1, n_items + 1, args.users)
        evalset = eval_set(prefixes, targets, np.arange(args.users), args.max_len)
        # untimed: warm-up, and the metrics checked against the naive loop (HR@1000 is rarely 0 with random weights)
        check = full_ranking_metrics(model, evalset, n_items, ks=(10, 1000), batch_size=args.batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        kit = full_ranking_metrics(model, evalset, n_items, ks=(10, 20, 50), batch_size=args.batch_size)  # the default
        if device.type == "cuda":
            torch.cuda.synchronize()
        kit_s = time.perf_counter() - start
        block = args.batch_size * (n_items + 1) * 4 / 2**20
        print(f"{n_items:>9}{'kit':>7}{args.users / kit_s:>11.0f}{kit_s:>9.2f}{block:>19.0f}{check['hr@1000']:>9.4f}")
        if n_items > args.skip_naive_above:
            continue
        start = time.perf_counter()
        reference, nbytes = naive(model, evalset, n_items)
        naive_s = time.perf_counter() - start
        for key in ("hr@10", "ndcg@10", "hr@1000"):  # random weights: no ties, so both must agree exactly
            assert abs(reference[key] - check[key]) < 1e-9, (key, reference, check)
        print(f"{n_items:>9}{'naive':>7}{args.users / naive_s:>11.0f}{naive_s:>9.2f}{nbytes / 2**20:>19.0f}"
              f"{reference['hr@1000']:>9.4f}{naive_s / kit_s:>9.1f}x")


if __name__ == "__main__":
    main()
