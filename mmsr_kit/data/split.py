"""From interactions to what models train and are evaluated on.

Item indices run 1..n_items in item-table order; 0 is padding. For each user (with at
least `min_interactions` interactions), in time order:
- training part: all but the last two items; trained as windows of max_len + 1 items;
- validation: input = training part, target = second-to-last item;
- test: input = everything before the last item, target = the last item;
- cold test (`cold`): for each held-out position (validation or test) whose item is cold
  (fewer than `cold_threshold` occurrences in all training parts), the sequence cut right
  after it, the cold item being the target;
- `cold_test`: the same, test positions only (no case shared with model selection, which
  reads the validation targets): the cold set to trust;
- `cold_paper`: the paper's construction (section 4.1, Table 1 "#cold"): every position of
  the complete sequence, training part included, whose item is cold, the prefix before it
  as input. Its training positions were trained on, so it is no held-out test; it is there
  to set the case counts beside the paper's.
Evaluation masks the input's items (its history) except the target itself.

New items (beyond the paper; `new_items`: a share > 0, or item ids): that share of the items, drawn at random, is
taken out of every sequence before all of the above, so training never sees them, not even
as negatives. The new-item test: per user, the last occurrence of a new item with at least
one other item before it; input = the other items before it, target = the new item. An ID
table holds nothing learned for such items; only content models can place them.
"""
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def left_pad(rows, length):
    """Right-align each row's last `length` items in a zero-padded (n, length) array."""
    out = np.zeros((len(rows), length), dtype=np.int64)
    for r, row in enumerate(rows):
        row = row[-length:]
        if len(row):
            out[r, length - len(row) :] = row
    return out


def csr(rows):
    """Ragged rows -> (offsets (n+1,), flat values)."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.concatenate(rows).astype(np.int64) if len(rows) else np.zeros(0, np.int64)
    return offsets, flat


@dataclass
class EvalSet:
    """Cases to rank: inputs (n, max_len) left-padded, targets (n,), the users they belong to,
    and each case's items to mask (its history minus the target) as CSR."""

    inputs: np.ndarray
    targets: np.ndarray
    users: np.ndarray
    mask_offsets: np.ndarray
    mask_items: np.ndarray

    def __len__(self):
        return len(self.targets)

    def masked(self, start, stop):
        """(row, item) pairs to mask for cases start..stop, rows relative to start."""
        lo, hi = self.mask_offsets[start], self.mask_offsets[stop]
        counts = np.diff(self.mask_offsets[start : stop + 1])
        rows = np.repeat(np.arange(stop - start), counts)
        return rows, self.mask_items[lo:hi]


    def with_masked(self, items):
        """The same cases, each also masking `items` (1-d item indices), except a case's own target."""
        items = np.unique(np.asarray(items, dtype=np.int64))
        masks = []
        for r, target in enumerate(self.targets):
            own = self.mask_items[self.mask_offsets[r] : self.mask_offsets[r + 1]]
            masks.append(np.union1d(own, items[items != target]))
        offsets, flat = csr(masks)
        return EvalSet(self.inputs, self.targets, self.users, offsets, flat)

    def subset(self, rows):
        """The cases `rows` (indices or a boolean mask) as an EvalSet of their own."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, dtype=np.int64)
        masks = [self.mask_items[self.mask_offsets[r] : self.mask_offsets[r + 1]] for r in rows]
        offsets, flat = csr(masks)
        return EvalSet(self.inputs[rows], self.targets[rows], self.users[rows], offsets, flat)


# Popularity buckets by a target's training occurrences (beyond the paper's cold / not cold): (name, low, high)
POPULARITY_BUCKETS = (("0", 0, 0), ("1-4", 1, 4), ("5-9", 5, 9), ("10-49", 10, 49), ("50+", 50, None))


def popularity_groups(train_counts, evalset, buckets=POPULARITY_BUCKETS):
    """(bucket names, each case's bucket index): for `full_ranking_metrics(..., groups=...)`."""
    counts = train_counts[evalset.targets]
    of_case = np.full(len(counts), -1, dtype=np.int64)
    for g, (_, low, high) in enumerate(buckets):
        of_case[(counts >= low) & ((counts <= high) if high is not None else True)] = g
    return [name for name, _, _ in buckets], of_case


def eval_set(prefixes, targets, users, max_len):
    histories = [np.unique(p[p != t]) for p, t in zip(prefixes, targets)]
    offsets, flat = csr(histories)
    return EvalSet(left_pad(prefixes, max_len), np.asarray(targets, np.int64), np.asarray(users, np.int64), offsets, flat)


class SplitData:
    """A RecDataset split for training and leave-one-out evaluation (see the module docstring)."""

    def __init__(self, dataset, max_len=20, min_interactions=5, cold_threshold=10, new_items=0.0, new_seed=0):
        self.dataset = dataset
        self.max_len = max_len
        self.item_ids = list(dataset.items["item_id"])
        self.n_items = len(self.item_ids)
        inter = dataset.interactions
        index = pd.Index(self.item_ids).get_indexer(inter["item_id"]) + 1  # 0 where unknown
        unknown = int((index == 0).sum())
        if unknown:
            examples = inter["item_id"][index == 0].unique()[:3].tolist()
            log.warning("%s: dropped %d interaction(s) with item ids missing from the item table, e.g. %s",
                        dataset.name, unknown, examples)
        frame = pd.DataFrame({"user": inter["user_id"].to_numpy(), "item": index, "t": inter["timestamp"].to_numpy()})
        frame = frame[frame["item"] > 0]
        frame = frame.sort_values(["user", "t"], kind="stable")
        self.new = np.zeros(self.n_items + 1, dtype=bool)  # (N+1,) by item index: held out of training entirely
        if isinstance(new_items, (int, float)):  # a share, drawn at random
            if new_items > 0:
                rng = np.random.default_rng(new_seed)
                self.new[1 + rng.choice(self.n_items, size=max(1, round(new_items * self.n_items)), replace=False)] = True
        else:  # item ids
            where = pd.Index(self.item_ids).get_indexer(list(new_items))
            if (where < 0).any():
                from ..registry import ConfigError

                raise ConfigError(f"new items not in the item table: {list(np.asarray(list(new_items))[where < 0][:3])}")
            self.new[where + 1] = True
        new_cases = self._new_item_cases(frame)
        frame = frame[~self.new[frame["item"].to_numpy()]]
        sizes = frame.groupby("user", sort=False).size()
        keep = sizes[sizes >= min_interactions].index
        dropped_users = int(len(sizes) - len(keep))
        frame = frame[frame["user"].isin(keep)]
        if frame.empty:
            from ..registry import ConfigError

            raise ConfigError(
                f"{dataset.name}: no user has {min_interactions} or more interactions; "
                "lower data.min_interactions or check the interaction table"
            )
        users, starts = np.unique(frame["user"].to_numpy(), return_index=True)
        order = np.argsort(starts)
        self.user_ids = users[order].tolist()
        bounds = np.sort(starts)
        self.sequences = np.split(frame["item"].to_numpy().astype(np.int64), bounds[1:])
        self._build(cold_threshold)
        row_of = {u: r for r, u in enumerate(self.user_ids)}  # users dropped by the size filter have no case
        new_cases = [(row_of[u], prefix, target) for u, prefix, target in new_cases if u in row_of]
        self.new_test = eval_set([p for _, p, _ in new_cases], [t for _, _, t in new_cases],
                                 [u for u, _, _ in new_cases], max_len)
        self.negative_pool = np.flatnonzero(~self.new[1:]) + 1 if self.new.any() else None  # None: every item
        # the same cases ranked among the new items only: which new item, not whether new beats trained
        self.new_among_new = self.new_test.with_masked(self.negative_pool if self.new.any() else [])
        self.stats = {
            "users": len(self.sequences),
            "items": self.n_items,
            "interactions": int(sum(len(s) for s in self.sequences)),
            "avg_len": float(np.mean([len(s) for s in self.sequences])),
            "cold_items": int(self.cold[1:].sum()),
            "cold_cases": len(self.cold_test),  # validation and test positions
            "cold_cases_test": len(self.cold_test_only),
            "cold_cases_paper": len(self.cold_paper),  # the paper's Table 1 "#cold" construction
            "train_windows": len(self.train_windows),
            "dropped_users": dropped_users,
            "dropped_unknown_items": unknown,
            "new_items": int(self.new.sum()),
            "new_cases": len(self.new_test),
            **dataset.notes,
        }

    def _new_item_cases(self, frame):
        """[(user id, input items, new target)]: each user's last new item with another item before it."""
        if not self.new.any():
            return []
        cases = []
        for user, items in frame.groupby("user", sort=False)["item"]:
            items = items.to_numpy()
            is_new = self.new[items]
            for p in np.flatnonzero(is_new)[::-1]:
                before = items[:p][~is_new[:p]]
                if len(before):
                    cases.append((user, before.astype(np.int64), int(items[p])))
                    break
        return cases

    def _build(self, cold_threshold):
        L = self.max_len
        train_parts = [s[:-2] for s in self.sequences]
        self.train_counts = np.bincount(np.concatenate(train_parts), minlength=self.n_items + 1)
        self.train_counts[0] = 0
        self.cold = self.train_counts < cold_threshold  # (N+1,) by item index
        self.cold[0] = False
        self.history_offsets, self.history_items = csr([np.unique(p) for p in train_parts])  # sorted per user

        windows, window_users = [], []
        for u, part in enumerate(train_parts):
            for end in range(len(part), 1, -L):  # windows of L+1 items overlapping by one, from the end
                windows.append(part[max(0, end - L - 1) : end])
                window_users.append(u)
        self.train_windows = left_pad(windows, L + 1)
        self.window_users = np.asarray(window_users, np.int64)

        users = np.arange(len(self.sequences))
        self.valid = eval_set([s[:-2] for s in self.sequences], [s[-2] for s in self.sequences], users, L)
        self.test = eval_set([s[:-1] for s in self.sequences], [s[-1] for s in self.sequences], users, L)
        cut = lambda cases: eval_set([self.sequences[u][:p] for u, p in cases],  # noqa: E731
                                     [self.sequences[u][p] for u, p in cases], [u for u, _ in cases], L)
        s = self.sequences
        self.cold_test = cut([(u, p) for u in users for p in (len(s[u]) - 2, len(s[u]) - 1) if self.cold[s[u][p]]])
        self.cold_test_only = cut([(u, len(s[u]) - 1) for u in users if self.cold[s[u][-1]]])
        self.cold_paper = cut([(u, p) for u in users for p in np.flatnonzero(self.cold[s[u]]) if p >= 1])

    def history(self, users):
        """Sorted training items of each user in `users`, as a list of arrays."""
        o = self.history_offsets
        return [self.history_items[o[u] : o[u + 1]] for u in users]

    def __repr__(self):
        s = self.stats
        return (
            f"SplitData({self.dataset.name!r}: {s['users']} users, {s['items']} items, avg len {s['avg_len']:.1f}, "
            f"{s['cold_items']} cold items, {s['cold_cases']} cold cases)"
        )
