"""Nearest items by inner product (the score a model ranks by) over a catalogue's vectors, through faiss: an exact
index up to `EXACT_UP_TO` items, an inverted-file one above (k-means lists, `nprobe` of them searched per query).

    index = build_index(vectors)             # (N, D) float32
    scores, rows = search(index, queries, k=10)
"""
import numpy as np

EXACT_UP_TO = 200_000  # exact search (a matrix product in faiss) up to this many items; an IVF index above


def build_index(vectors, exact_up_to=EXACT_UP_TO, nprobe=None, seed=0):
    """A faiss index over `vectors` (N, D) for inner-product search: `IndexFlatIP` (exact) up to `exact_up_to`
    rows, else `IndexIVFFlat` with 4 sqrt(N) lists (faiss's guideline) trained on a sample, `nprobe` of them
    searched per query (default 1 in 16: recall@10 is measured by benchmarks/neighbours_speed.py)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, width = vectors.shape
    if n <= exact_up_to:
        index = faiss.IndexFlatIP(width)
    else:
        lists = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(width), width, lists, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(n, min(n, 64 * lists), replace=False)  # 64 a list: enough
        index.train(vectors[np.sort(sample)])
        index.nprobe = nprobe or max(1, lists // 16)
    index.add(vectors)
    return index


def search(index, queries, k=10):
    """(scores (Q, k), rows (Q, k)) of the `k` rows with the highest inner product per query, best first; rows
    are 0-based positions in the vectors the index was built on (-1 where fewer than k are found)."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    return index.search(queries, min(k, index.ntotal))


def save_index(index, path):
    import faiss

    faiss.write_index(index, str(path))


def load_index(path):
    import faiss

    return faiss.read_index(str(path))
