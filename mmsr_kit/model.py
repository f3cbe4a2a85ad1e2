"""A recommender = an item encoder (item index -> vector) + a sequence encoder; scores are dot products."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def distinct_items(ids):
    """ids (any shape) -> (the distinct real items (U,), inverse (ids.numel(),)): ids.flatten() equals
    cat([0], real)[inverse], so row 0 of a table of their vectors is padding."""
    unique, inverse = torch.unique(ids.reshape(-1), return_inverse=True)
    if len(unique) and unique[0] == 0:
        return unique[1:], inverse
    return unique, inverse + 1


def training_ids(inputs, targets, negatives):
    """The item indices of a training batch as one (2 + k, B, L) tensor: inputs, targets, then the k negatives of
    each position (negatives (B, L), or (B, L, k) with train.negatives = k > 1). Encoded in one pass."""
    negatives = negatives.unsqueeze(-1) if negatives.dim() == 2 else negatives
    return torch.cat([inputs[None], targets[None], negatives.permute(2, 0, 1)])


class IDEmbedding(nn.Module):
    """IDSR's item encoder: a learned vector per item index (row 0 is padding)."""

    def __init__(self, n_items, hidden, unseen=None):
        super().__init__()
        self.table = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        nn.init.normal_(self.table.weight, std=hidden**-0.5)  # unit-norm vectors on average
        with torch.no_grad():
            self.table.weight[0].zero_()
            if unseen is not None:  # (N+1,) bool: items training never shows (new items) have no learned vector:
                self.table.weight[torch.as_tensor(unseen)] = 0  # zero, so they tie (chance), not a random draw's luck

    def forward(self, items):  # (U,) -> (U, D)
        return self.table(items)

    def encoder_parameters(self):
        return []  # nothing pretrained: the table trains at the main learning rate


class Recommender(nn.Module):
    """Encodes each distinct item of a batch once, runs the sequence encoder, scores by dot product."""

    def __init__(self, item_encoder, sequence_encoder, encode_every_occurrence=False):
        super().__init__()
        self.items = item_encoder
        self.sequence = sequence_encoder
        self.encode_every_occurrence = encode_every_occurrence  # the reference path, for tests and benchmarks

    def item_vectors(self, ids, distinct=None):
        """Vectors for item indices of any shape (..., D); padding (0) gives zeros and is never encoded.
        `distinct`: `distinct_items(ids)` when the data loader computed it already (on the host, in its workers:
        no synchronisation with the GPU inside the step)."""
        flat = ids.reshape(-1)
        if self.encode_every_occurrence:
            real = flat > 0
            vectors = self.items(flat[real])  # (occurrences, D)
            out = vectors.new_zeros(len(flat), vectors.shape[-1])
            out[real] = vectors
            return out.reshape(*ids.shape, -1)
        real, inverse = distinct if distinct is not None else distinct_items(ids)
        vectors = self.items(real)  # (U, D): each distinct item once
        vectors = torch.cat([vectors.new_zeros(1, vectors.shape[-1]), vectors])  # row 0: padding
        return vectors.index_select(0, inverse).reshape(*ids.shape, -1)  # backward: one index_add, ~5x vectors[inverse]

    def candidates(self, vectors):
        """What a user vector scores an item by, from its item vector: the item vector itself (FDSA: a part)."""
        return vectors

    def user_vectors(self, inputs):
        """(B, L) left-padded item indices -> (B, L, D); the last position is the user vector."""
        return self.sequence(self.item_vectors(inputs), inputs > 0)

    def training_scores(self, h, valid, positive, negatives):
        """The scores of each position's positive (B, L) and of its k negatives (k, B, L): dot products of the user
        vector at that position with the candidates' vectors (CARCA scores by cross-attention instead)."""
        pos = (h * self.candidates(positive)).sum(-1)
        return pos, torch.stack([(h * self.candidates(v)).sum(-1) for v in negatives])

    def forward(self, inputs, targets, negatives, distinct=None):
        """BCE of each positive and its negatives (one, the paper's, or k: their mean), averaged over the
        non-padding positions. `distinct`: `distinct_items(training_ids(...))`, as `TrainWindows.collate` gives it."""
        vectors = self.item_vectors(training_ids(inputs, targets, negatives), distinct)  # (2 + k, B, L, D): one encode
        seen, positive, *negative = vectors.unbind(0)  # its backward is one stack (slices would each zero-fill a copy)
        h = self.sequence(seen, inputs > 0)  # (B, L, D)
        pos, neg = self.training_scores(h, inputs > 0, positive, negative)
        mask = ((inputs > 0) & (targets > 0)).to(h.dtype)  # a real item predicting a real next item
        loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos), reduction="none")
        loss = loss + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none").mean(0)
        return (loss * mask).sum() / mask.sum().clamp(min=1)

    @torch.no_grad()
    def all_item_vectors(self, n_items, batch_size=4096):
        """(n_items + 1, D) vectors of every item, row 0 zeros; computed once per evaluation."""
        device = next(self.parameters()).device
        vectors = None
        for s in range(1, n_items + 1, batch_size):
            chunk = self.items(torch.arange(s, min(s + batch_size, n_items + 1), device=device))
            if vectors is None:  # filled in place: no second copy of a large table
                vectors = chunk.new_empty(n_items + 1, chunk.shape[-1])
                vectors[0] = 0
            vectors[s : s + len(chunk)] = chunk
        return vectors

    @torch.no_grad()
    def last_user_vectors(self, inputs, item_vectors=None):
        """(B, L) -> (B, D). With `item_vectors` (every item's, from `all_item_vectors`) the inputs are looked up
        there instead of encoded again: what evaluation does, once per evaluation."""
        if item_vectors is None:
            return self.user_vectors(inputs)[:, -1]
        return self.sequence(item_vectors[inputs], inputs > 0)[:, -1]  # (B, D)


class MostPop(nn.Module):
    """The popularity floor: every user scores items by their training count.

    It fits the same scoring path: the user vector is 1, the item vector is the count.
    """

    trainable = False

    def __init__(self, train_counts):
        super().__init__()
        self.register_buffer("counts", torch.as_tensor(train_counts, dtype=torch.float32)[:, None])  # (N+1, 1)

    @torch.no_grad()
    def all_item_vectors(self, n_items, batch_size=4096):
        return self.counts

    @torch.no_grad()
    def last_user_vectors(self, inputs, item_vectors=None):
        return self.counts.new_ones(len(inputs), 1)
