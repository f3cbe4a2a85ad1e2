"""Training batches: windows of item indices with one random negative per position (or k: train.negatives).

`EpochBatches` makes every batch a function of (seed, epoch, batch number) alone: the order of the windows and
each batch's negatives (drawn from the batch's own generator, in whichever process or loader worker collates
it). A run resumed at any step therefore sees exactly the batches an uninterrupted run sees.
"""
import hashlib
import math

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..model import distinct_items, training_ids


def sample_negatives(history, shape, n_items, generator=None, max_rounds=100, pool=None):
    """Uniform item indices in 1..n_items (or from `pool`, a 1-d tensor of allowed items), none in the row's history.

    history: (B, H) sorted item indices per row, padded with values > n_items.
    shape: (B, L). Rejection sampling, vectorised: redraw only the collisions.
    """
    def draw(size):
        if pool is None:
            return torch.randint(1, n_items + 1, size, generator=generator)
        return pool[torch.randint(0, len(pool), size, generator=generator)]

    negatives = draw(shape)
    for _ in range(max_rounds):
        pos = torch.searchsorted(history, negatives).clamp(max=history.shape[1] - 1)  # (B, L)
        hit = history.gather(1, pos) == negatives
        if not hit.any():
            return negatives
        negatives[hit] = draw((int(hit.sum()),))
    raise RuntimeError("could not draw negatives outside the history: a user has interacted with almost every item")


def derived_seed(*parts):
    """A 63-bit seed from any tuple of ints (stable across processes and Python runs, unlike hash())."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


class EpochBatches(Sampler):
    """Batches of window indices in an order drawn from (seed, epoch) alone; each element is (index, batch seed),
    the batch seed feeding that batch's negatives. `set_epoch` before iterating (the training loop does)."""

    drop_last = False

    def __init__(self, n, batch_size, seed):
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 1

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(derived_seed(self.seed, self.epoch)))
        for b, start in enumerate(range(0, self.n, self.batch_size)):
            batch_seed = derived_seed(self.seed, self.epoch, b)
            yield [(i, batch_seed) for i in order[start : start + self.batch_size].tolist()]


class TrainWindows(Dataset):
    """Each training window of a SplitData: (L+1,) item indices and the window's user; `negatives` per position."""

    def __init__(self, data, negatives=1):
        if negatives < 1:
            raise ValueError(f"train.negatives must be at least 1, got {negatives}")
        self.data, self.negatives = data, negatives

    def __len__(self):
        return len(self.data.train_windows)

    def __getitem__(self, key):
        return key  # an index, or (index, batch seed) from EpochBatches: collate does the work, batched

    def collate_keys(self, keys, distinct=False):
        """`collate` for a batch of (index, batch seed) from `EpochBatches`: negatives from the batch's generator."""
        generator = torch.Generator().manual_seed(keys[0][1])
        return self.collate([i for i, _ in keys], distinct, generator)

    def collate(self, indices, distinct=False, generator=None):
        """Window indices -> inputs (B, L), targets (B, L), negatives (B, L), or (B, L, k) for k > 1 negatives;
        padding is 0 everywhere. With `distinct`, also `distinct_items` of them all (`training_ids`): computed here, on the host (in the loader's
        workers), so the training step never waits for it on a GPU. Negatives come from `generator` (default:
        torch's global one)."""
        windows = torch.as_tensor(self.data.train_windows[indices])  # (B, L+1)
        inputs, targets = windows[:, :-1], windows[:, 1:]
        histories = self.data.history(self.data.window_users[indices])
        width = max(len(h) for h in histories)
        padded = np.full((len(histories), width), self.data.n_items + 1, dtype=np.int64)
        for r, h in enumerate(histories):
            padded[r, : len(h)] = h
        pool = self.data.negative_pool  # new items (held out of training) are never negatives either
        k = self.negatives
        negatives = sample_negatives(torch.as_tensor(padded), (len(targets), targets.shape[1] * k), self.data.n_items,
                                     generator, pool=None if pool is None else torch.as_tensor(pool))
        negatives = negatives.reshape(targets.shape) * (targets > 0) if k == 1 else \
            negatives.reshape(*targets.shape, k) * (targets > 0).unsqueeze(-1)
        if distinct:
            return inputs, targets, negatives, distinct_items(training_ids(inputs, targets, negatives))
        return inputs, targets, negatives
