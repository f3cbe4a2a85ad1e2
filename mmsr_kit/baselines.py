"""The study's baselines (Table 5), trained and evaluated by the same loop, loss, sampling and metrics as MMSR.

- `fdsa`: an item-ID self-attention stream and a feature (text) self-attention stream, concatenated and
  projected into the user vector, which scores candidates by their ID embeddings (FDSA, Zhang et al. 2019).
- `carca++`: items embedded from their ID, text and picture features together; the sequence model encodes the
  user's profile, and each candidate item reads it through cross-attention, whose output is the score (CARCA,
  Rashed et al. 2022, with the paper's multimodal features).
- `vqrec`: item text through a frozen text encoder, quantised into discrete codes by optimized product quantisation
  (faiss's OPQ: a learned rotation, then k-means per sub-space; 32 books x 256 codes, once per dataset); the item
  vector is the sum of the codes' embeddings (VQRec, Hou et al. 2023; its pre-training is left out, see README).
- `morec++`: end-to-end text and vision encoders, their pooled vectors fused by a plain sum (or `concat`):
  the modality-based recommender before MMSR's fusion study (the paper's multimodal MoRec).

IDSR (`idsr` with any sequence model) and `mostpop` complete Table 5; `mmsr` is the model they are compared to.
"""
import copy
import logging

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .builders import content_encoder, content_model
from .model import IDEmbedding, Recommender
from .registry import MODES, ConfigError
from .sequence import build_sequence

log = logging.getLogger(__name__)

BASELINES = {
    "fdsa": "FDSA: item-ID and text-feature self-attention streams, concatenated (needs text)",
    "carca++": "CARCA++: ID + text + picture item embeddings; candidates cross-attend to the profile (needs both)",
    "vqrec": "VQRec: frozen text encoder -> product-quantised codes -> summed code embeddings (needs text)",
    "morec++": "MoRec++: end-to-end text and vision encoders, pooled vectors summed or concatenated (needs both)",
    "idsr": "IDSR: an item-ID embedding table with model.sequence = sasrec, gru4rec or nextitnet",
    "mostpop": "MostPop: training popularity, no model",
}


# ---------------------------------------------------------------------------------------------------- FDSA
class IDAndFeatures(nn.Module):
    """Item -> [ID embedding ; projected pooled text vector] (U, 2D)."""

    def __init__(self, ids, features):
        super().__init__()
        self.ids, self.features = ids, features

    def forward(self, items):
        return torch.cat([self.ids(items), self.features(items)], -1)

    def encoder_parameters(self):
        return self.features.encoder_parameters()


class TwoStreams(nn.Module):
    """FDSA's sequence encoder: one self-attention stack over the ID half of the inputs, one over the feature half;
    their outputs concatenated and projected to the user vector (B, L, D)."""

    def __init__(self, id_stream, feature_stream, hidden):
        super().__init__()
        self.id_stream, self.feature_stream = id_stream, feature_stream
        self.mix = nn.Linear(2 * hidden, hidden)

    def forward(self, x, mask):  # x (B, L, 2D)
        ids, features = x.chunk(2, dim=-1)
        return self.mix(torch.cat([self.id_stream(ids, mask), self.feature_stream(features, mask)], -1))


class FDSA(Recommender):
    """Candidates are scored by their ID embedding (the first half of the item vector) only."""

    def candidates(self, vectors):
        return vectors[..., : vectors.shape[-1] // 2]


@MODES.register("fdsa")
def fdsa(cfg, data):
    """FDSA: item-ID and text-feature self-attention streams, concatenated; scored against ID embeddings."""
    features = content_encoder(cfg, data, use_text=True, use_vision=False)
    items = IDAndFeatures(IDEmbedding(data.n_items, cfg.model.hidden, data.new), features)
    seq = TwoStreams(build_sequence(cfg.model, data.max_len), build_sequence(cfg.model, data.max_len), cfg.model.hidden)
    return FDSA(items, seq, cfg.model.encode_every_occurrence)


# ---------------------------------------------------------------------------------------------------- CARCA++
class IDWithContent(nn.Module):
    """CARCA's item embedding: [ID embedding ; text features ; picture features] through one linear map (U, D)."""

    def __init__(self, ids, content, hidden):
        super().__init__()
        self.ids, self.content = ids, content
        self.join = nn.Linear(hidden + content.text.width + content.vision.width, hidden)

    def forward(self, items):
        view = self.content.content.pick_views(items, self.training)
        text = self.content.encode("text", items, view)[2]
        image = self.content.encode("vision", items, view)[2]
        return self.join(torch.cat([self.ids(items), text.to(self.join.weight.dtype),
                                    image.to(self.join.weight.dtype)], -1))

    def encoder_parameters(self):
        return self.content.encoder_parameters()


class CrossAttentionScorer(nn.Module):
    """CARCA's scoring block: each candidate item's embedding is the query of a cross-attention over the user's
    profile (the sequence encoder's outputs), then a feed-forward layer and one linear output: the score. The
    candidate decides which profile positions it reads, so a score is no dot product with a fixed user vector."""

    def __init__(self, hidden, heads, dropout):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"model.hidden ({hidden}) must be divisible by model.heads ({heads})")
        self.heads, self.dropout = heads, dropout
        self.norm_q, self.norm_kv, self.norm_f = nn.LayerNorm(hidden), nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.q, self.kv, self.proj = nn.Linear(hidden, hidden), nn.Linear(hidden, 2 * hidden), nn.Linear(hidden, hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.out = nn.Linear(hidden, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, queries, profile, allowed):
        """queries (B, Q, D), profile (B, L, D), allowed (B, Q, L) bool -> scores (B, Q)."""
        B, Q, D = queries.shape
        H = self.heads
        q = self.q(self.norm_q(queries)).view(B, Q, H, D // H).transpose(1, 2)  # (B, H, Q, D/H)
        k, v = (t.view(B, -1, H, D // H).transpose(1, 2) for t in self.kv(self.norm_kv(profile)).split(D, -1))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None],
                                           dropout_p=self.dropout if self.training else 0.0)
        z = queries + self.drop(self.proj(y.transpose(1, 2).reshape(B, Q, D)))
        z = z + self.drop(self.ffn(self.norm_f(z)))
        return self.out(z)[..., 0]


class CARCA(Recommender):
    """CARCA (Rashed et al. 2022) with the study's features: items embedded from ID + text + picture, the profile
    encoded by the sequence model (self-attention), and every candidate scored by cross-attention over it. In
    training the candidates of position t read the profile up to t; a full ranking reads the whole profile."""

    def __init__(self, items, sequence, hidden, heads, dropout, encode_every_occurrence=False, item_chunk=None):
        super().__init__(items, sequence, encode_every_occurrence)
        self.scorer = CrossAttentionScorer(hidden, heads, dropout)
        self.item_chunk = item_chunk  # candidates per pass in `all_scores`; None: as many as fit 2**22 numbers

    def training_scores(self, h, valid, positive, negatives):
        B, L, D = h.shape
        candidates = torch.stack([positive, *negatives], 2)  # (B, L, 1 + k, D)
        per = candidates.shape[2]
        positions = torch.arange(L, device=h.device)
        causal = positions[None, :] <= positions[:, None]  # (L, L): position t reads the profile up to t
        allowed = causal[None] & valid[:, None, :] | torch.eye(L, dtype=torch.bool, device=h.device)  # padding: self
        allowed = allowed.repeat_interleave(per, dim=1)  # (B, L * (1 + k), L)
        scores = self.scorer(candidates.reshape(B, L * per, D), h, allowed).view(B, L, per)
        return scores[..., 0], scores[..., 1:].permute(2, 0, 1)

    @torch.no_grad()
    def all_scores(self, inputs, item_vectors):
        """(B, L) histories, (N+1, D) every item's vector -> (B, N+1) scores: every item through the cross-attention,
        `item_chunk` candidates at a time (memory bounded by batch x chunk x D, any catalogue size)."""
        valid = inputs > 0
        h = self.sequence(item_vectors[inputs], valid)  # (B, L, D)
        B, L, D = h.shape
        valid = valid.clone()
        valid[:, -1] = True  # the last position is always a real item in evaluation; never an empty attention row
        chunk = self.item_chunk or max(1, 2**22 // (B * D))
        out = h.new_empty(B, len(item_vectors))
        for s in range(0, len(item_vectors), chunk):
            part = item_vectors[s : s + chunk]  # (C, D)
            allowed = valid[:, None, :].expand(B, len(part), L)
            out[:, s : s + len(part)] = self.scorer(part[None].expand(B, -1, -1), h, allowed)
        return out


@MODES.register("carca++")
def carca(cfg, data):
    """CARCA++: items from ID + text + picture features; candidates scored by cross-attention over the profile."""
    m = cfg.model
    content = content_encoder(cfg, data, use_text=True, use_vision=True, fusion=False, project=False)
    items = IDWithContent(IDEmbedding(data.n_items, m.hidden, data.new), content, m.hidden)
    return CARCA(items, build_sequence(m, data.max_len), m.hidden, m.heads, m.dropout, m.encode_every_occurrence)


# ---------------------------------------------------------------------------------------------------- VQRec
def quantiser_shape(width, n_items, books, codes):
    """VQRec's code books and codes per book for `width`-d vectors of `n_items` items: the asked ones, or the nearest
    that work (logged): the largest number of books <= `books` that divides the width, and the largest power of two
    <= `codes` that the catalogue can fill (each code a cluster of at least one item)."""
    if codes < 2 or codes & (codes - 1):
        raise ConfigError(f"model.vq_codes={codes} must be a power of two (faiss's product quantiser: 2**bits codes)")
    fit_books = max(b for b in range(1, min(books, width) + 1) if width % b == 0)
    fit_codes = min(codes, 1 << max(1, int(np.log2(max(n_items, 2)))))
    if fit_books != books:
        log.info("vqrec: model.vq_books=%d does not divide the text width %d: %d code books", books, width, fit_books)
    if fit_codes != codes:
        log.info("vqrec: %d items cannot fill model.vq_codes=%d codes per book: %d", n_items, codes, fit_codes)
    return fit_books, fit_codes


def product_quantise(vectors, books, codes, seed=0):
    """(N, H) float -> ((N, books) int64 codes, relative squared quantisation error), by optimized product
    quantisation (OPQ, as VQRec): faiss learns a rotation of the H dimensions that lowers the quantisation error,
    splits the rotated vectors into `books` sub-spaces and clusters each into `codes` centroids. `books` must
    divide H and `codes` be a power of two (`quantiser_shape` picks such values)."""
    import faiss

    n, width = vectors.shape
    if width % books:
        raise ConfigError(f"model.vq_books={books} must divide the text encoder's width {width}")
    bits = int(np.log2(codes))
    if 1 << bits != codes or codes > n:
        raise ConfigError(f"{codes} codes per book: must be a power of two and at most the {n} items")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    pq = faiss.ProductQuantizer(width, books, bits)
    pq.cp.seed, pq.cp.min_points_per_centroid = seed, 1  # few items per code is the usual case here: no warning
    opq = faiss.OPQMatrix(width, books)
    opq.pq = pq  # the rotation is learned with this quantiser's shape
    opq.train(x)
    rotated = opq.apply_py(x)
    pq.train(rotated)  # the centroids of the final rotation
    centroids = faiss.vector_to_array(pq.centroids).reshape(books, codes, width // books)
    out, error = np.empty((n, books), dtype=np.int64), 0.0
    for b, part in enumerate(np.split(rotated, books, axis=1)):  # nearest centroid of each sub-vector
        distance = (part**2).sum(1, keepdims=True) - 2 * part @ centroids[b].T + (centroids[b] ** 2).sum(1)
        out[:, b] = distance.argmin(1)
        error += float(((part - centroids[b][out[:, b]]) ** 2).sum())
    return out, error / max(float((rotated**2).sum()), 1e-12)


class CodeEmbedding(nn.Module):
    """Item -> sum of its codes' embeddings: one table of `codes` vectors per code book. The item's index is
    used for nothing but looking its codes up, so items with equal codes get equal vectors."""

    per_item_buffers = ("item_codes",)  # learned per dataset: never transferred (mmsr_kit.transfer)

    def __init__(self, item_codes, codes, hidden):
        super().__init__()
        books = item_codes.shape[1]
        self.register_buffer("item_codes", torch.as_tensor(item_codes), persistent=True)  # (N+1, books)
        self.register_buffer("offsets", torch.arange(books) * codes, persistent=False)
        self.tables = nn.Embedding(books * codes, hidden)
        nn.init.normal_(self.tables.weight, std=(hidden * books) ** -0.5)

    def forward(self, items):
        return self.tables(self.item_codes[items] + self.offsets).sum(1)  # (U, D)

    def encoder_parameters(self):
        return []


@torch.no_grad()
def item_text_vectors(cfg, data):
    """Every item's pooled text vector from the frozen text encoder (the item table's text), (N, H)."""
    from .encoders import TextEncoder

    text = TextEncoder(cfg.model.text_encoder, cfg.model.text_len, cfg.model.pooling, 0).eval()
    texts = list(data.dataset.items["text"])
    parts = []
    for s in range(0, len(texts), 256):
        tokens = text.tokenize(texts[s : s + 256])
        parts.append(text(tokens["input_ids"], tokens["attention_mask"])[2])
    return torch.cat(parts).float().numpy()


@MODES.register("vqrec")
def vqrec(cfg, data):
    """VQRec: item text -> frozen encoder -> product-quantised codes -> summed code embeddings."""
    m = cfg.model
    vectors = item_text_vectors(cfg, data)
    books, n_codes = quantiser_shape(vectors.shape[1], len(vectors), m.vq_books, m.vq_codes)
    codes, error = product_quantise(vectors, books, n_codes, seed=cfg.train.seed)
    codes = np.concatenate([np.zeros((1, books), np.int64), codes])  # row 0: padding (never used)
    log.info("vqrec: %d items -> OPQ, %d code books x %d codes (relative quantisation error %.3f)", data.n_items,
             books, n_codes, error)
    items = CodeEmbedding(codes, n_codes, m.hidden)
    return Recommender(items, build_sequence(m, data.max_len), m.encode_every_occurrence)


# ---------------------------------------------------------------------------------------------------- MoRec++
@MODES.register("morec++")
def morec(cfg, data):
    """MoRec++: end-to-end text and vision encoders, pooled vectors summed (model.fusion=concat: concatenated)."""
    if cfg.model.fusion not in ("sum", "concat"):
        log.info("morec++ fuses by sum (model.fusion=%s is MMSR's; model.fusion=concat concatenates)", cfg.model.fusion)
        cfg = copy.deepcopy(cfg)
        cfg.model.fusion = "sum"
    return content_model(cfg, data, use_text=True, use_vision=True)
