"""Training batches: windows of item indices with one random negative per position."""
import numpy as np
import torch
from torch.utils.data import Dataset

from ..model import distinct_items


def sample_negatives(history, shape, n_items, generator=None, max_rounds=100):
    """Uniform item indices in 1..n_items, none in the row's history.

    history: (B, H) sorted item indices per row, padded with values > n_items.
    shape: (B, L). Rejection sampling, vectorised: redraw only the collisions.
    """
    negatives = torch.randint(1, n_items + 1, shape, generator=generator)
    for _ in range(max_rounds):
        pos = torch.searchsorted(history, negatives).clamp(max=history.shape[1] - 1)  # (B, L)
        hit = history.gather(1, pos) == negatives
        if not hit.any():
            return negatives
        negatives[hit] = torch.randint(1, n_items + 1, (int(hit.sum()),), generator=generator)
    raise RuntimeError("could not draw negatives outside the history: a user has interacted with almost every item")


class TrainWindows(Dataset):
    """Each training window of a SplitData: (L+1,) item indices and the window's user."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data.train_windows)

    def __getitem__(self, i):
        return i

    def collate(self, indices, distinct=False):
        """Window indices -> inputs (B, L), targets (B, L), negatives (B, L); padding is 0 everywhere. With
        `distinct`, also `distinct_items` of the three stacked: computed here, on the host (in the loader's
        workers), so the training step never waits for it on a GPU."""
        windows = torch.as_tensor(self.data.train_windows[indices])  # (B, L+1)
        inputs, targets = windows[:, :-1], windows[:, 1:]
        histories = self.data.history(self.data.window_users[indices])
        width = max(len(h) for h in histories)
        padded = np.full((len(histories), width), self.data.n_items + 1, dtype=np.int64)
        for r, h in enumerate(histories):
            padded[r, : len(h)] = h
        negatives = sample_negatives(torch.as_tensor(padded), targets.shape, self.data.n_items) * (targets > 0)
        if distinct:
            return inputs, targets, negatives, distinct_items(torch.stack([inputs, targets, negatives]))
        return inputs, targets, negatives
