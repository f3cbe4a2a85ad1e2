"""Nearest items at catalogue scale: queries per second and recall@10 of the kit's faiss indexes against exact
search, side by side with a plain matrix product (torch), on the same random vectors and queries.

    python benchmarks/neighbours_speed.py [--items 100000 1000000] [--width 64] [--queries 1000]

Paths: "matmul" (torch: queries @ items.T, then topk; exact), "faiss flat" (IndexFlatIP; exact), "faiss ivf"
(what `neighbours.build_index` picks above 200k items: IVFFlat, 4 sqrt(N) lists, 1 in 16 searched). Recall@10
is against the matrix product's top 10; build is the index's construction (k-means training included). Random
Gaussian vectors of the kit's width are the hard case for an IVF index (no clusters): a trained model's item
vectors cluster, and recall there is higher.
"""
import argparse
import time

import numpy as np
import torch

from mmsr_kit.neighbours import build_index, search


def timed(fn, repeat=3):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def recall(found, exact):
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact)]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{args.queries} queries, top {args.k}, width {args.width}, {torch.get_num_threads()} threads")
    print(f"{'items':>9} {'path':12} {'build s':>8} {'queries/s':>10} {'recall@10':>9} {'vs matmul':>9}")
    for n in args.items:
        items = rng.standard_normal((n, args.width), dtype=np.float32)
        queries = rng.standard_normal((args.queries, args.width), dtype=np.float32)
        t_items, t_queries = torch.from_numpy(items), torch.from_numpy(queries)
        seconds, exact = timed(lambda: torch.topk(t_queries @ t_items.T, args.k).indices.numpy())
        rows = [("matmul", 0.0, seconds, 1.0)]
        for name, exact_up_to in (("faiss flat", n), ("faiss ivf", 0)):
            start = time.perf_counter()
            index = build_index(items, exact_up_to=exact_up_to)
            build = time.perf_counter() - start
            seconds, (_, found) = timed(lambda: search(index, queries, args.k))
            rows.append((name, build, seconds, recall(found, exact)))
        base = rows[0][2]
        for name, build, seconds, r in rows:
            print(f"{n:>9,} {name:12} {build:>8.2f} {args.queries / seconds:>10,.0f} {r:>9.3f} {base / seconds:>8.2f}x")


if __name__ == "__main__":
    main()
