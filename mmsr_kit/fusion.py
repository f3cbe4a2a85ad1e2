"""Fusion of a text and an image representation into one item vector (the paper's Table 3).

A fusion takes each modality as (tokens (U, T, W), mask (U, T), pooled (U, W)), projects both to the
model width D, and returns (U, D). Coarse fusions combine the pooled vectors; co-attention and
merge-attention work on the tokens. A new fusion is one class and one `@register_fusion` line.
"""
import functools

import torch
import torch.nn as nn

from .registry import Registry

FUSIONS = Registry("fusion")


def register_fusion(name):
    return FUSIONS.register(name)


class Fusion(nn.Module):
    """Projects text (width `text_width`) and image (width `image_width`) to `hidden`."""

    uses_tokens = False  # coarse fusions read the pooled vectors only; the token-level ones set True

    def __init__(self, hidden, text_width, image_width, dropout=0.1):
        super().__init__()
        self.text_proj = nn.Linear(text_width, hidden)
        self.image_proj = nn.Linear(image_width, hidden)
        self.drop = nn.Dropout(dropout)

    def pooled(self, text, image):
        return self.drop(self.text_proj(text[2])), self.drop(self.image_proj(image[2]))  # (U, D) each


@register_fusion("sum")
class Sum(Fusion):
    def forward(self, text, image):
        t, v = self.pooled(text, image)
        return t + v


@register_fusion("concat")
class Concat(Fusion):
    def __init__(self, hidden, text_width, image_width, dropout=0.1):
        super().__init__(hidden, text_width, image_width, dropout)
        self.out = nn.Linear(2 * hidden, hidden)

    def forward(self, text, image):
        return self.out(torch.cat(self.pooled(text, image), -1))


@register_fusion("gate")
class Gate(Fusion):
    """A learned per-dimension choice between the modalities: g * t + (1 - g) * v."""

    def __init__(self, hidden, text_width, image_width, dropout=0.1):
        super().__init__(hidden, text_width, image_width, dropout)
        self.gate = nn.Linear(2 * hidden, hidden)

    def forward(self, text, image):
        t, v = self.pooled(text, image)
        g = torch.sigmoid(self.gate(torch.cat([t, v], -1)))
        return g * t + (1 - g) * v


@register_fusion("film")
class FiLM(Fusion):
    """Feature-wise linear modulation: the text scales and shifts the image, (1 + gamma(t)) * v + beta(t)."""

    def __init__(self, hidden, text_width, image_width, dropout=0.1):
        super().__init__(hidden, text_width, image_width, dropout)
        self.film = nn.Linear(hidden, 2 * hidden)

    def forward(self, text, image):
        t, v = self.pooled(text, image)
        gamma, beta = self.film(t).chunk(2, -1)
        return (1 + gamma) * v + beta


def with_dnn(base):
    """`base` followed by a 3-layer DNN (the paper's coarse+ fusions)."""

    class WithDNN(base):
        def __init__(self, hidden, text_width, image_width, dropout=0.1):
            super().__init__(hidden, text_width, image_width, dropout)
            self.dnn = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden),
                                     nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))

        def forward(self, text, image):
            return self.dnn(super().forward(text, image))

    WithDNN.__name__ = WithDNN.__qualname__ = f"{base.__name__}DNN"
    return WithDNN


for _name in ("sum", "concat", "gate", "film"):
    FUSIONS[f"{_name}_dnn"] = with_dnn(FUSIONS[_name])


def masked_mean(tokens, mask):
    w = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * w).sum(1) / w.sum(1).clamp(min=1)  # (U, D)


class Attend(nn.Module):
    """One pre-norm attention sublayer: queries (U, Tq, D) attend to keys and values (U, Tk, D) with their padding
    mask (U, Tk); returns the update to add to the queries."""

    def __init__(self, hidden, heads, dropout):
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)

    def forward(self, q, kv, kv_mask):
        kv = self.norm_kv(kv)
        return self.attn(self.norm_q(q), kv, kv, key_padding_mask=~kv_mask, need_weights=False)[0]


class FeedForward(nn.Sequential):
    """A pre-norm position-wise feed-forward sublayer (its update)."""

    def __init__(self, hidden):
        super().__init__(nn.LayerNorm(hidden), nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))


class CrossModalityLayer(nn.Module):
    """LXMERT's cross-modality layer (Tan & Bansal 2019; the paper's code release runs LXRT): each stream attends
    to the other (one cross-attention, shared by both directions as in LXMERT), then to its own tokens
    (self-attention), then a feed-forward layer; every sublayer residual (pre-norm here)."""

    def __init__(self, hidden, heads, dropout):
        super().__init__()
        self.cross = Attend(hidden, heads, dropout)
        self.text_self, self.image_self = Attend(hidden, heads, dropout), Attend(hidden, heads, dropout)
        self.text_ff, self.image_ff = FeedForward(hidden), FeedForward(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, t, t_mask, v, v_mask):
        t, v = t + self.drop(self.cross(t, v, v_mask)), v + self.drop(self.cross(v, t, t_mask))  # both from the inputs
        t, v = t + self.drop(self.text_self(t, t, t_mask)), v + self.drop(self.image_self(v, v, v_mask))
        return t + self.drop(self.text_ff(t)), v + self.drop(self.image_ff(v))


class MergeAttention(Fusion):
    """Single-stream fusion: text and image tokens, each plus its modality-type embedding, concatenated
    and passed through `depth` transformer blocks; the item vector is the mean of the output tokens."""

    uses_tokens = True

    def __init__(self, hidden, text_width, image_width, dropout=0.1, depth=1, heads=2):
        super().__init__(hidden, text_width, image_width, dropout)
        self.type_embedding = nn.Embedding(2, hidden)  # 0: text, 1: image
        layer = nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, text, image):
        t = self.text_proj(text[0]) + self.type_embedding.weight[0]  # (U, Tt, D)
        v = self.image_proj(image[0]) + self.type_embedding.weight[1]  # (U, Ti, D)
        tokens = self.drop(torch.cat([t, v], 1))  # (U, Tt + Ti, D)
        mask = torch.cat([text[1], image[1]], 1)
        out = self.blocks(tokens, src_key_padding_mask=~mask)
        return self.norm(masked_mean(out, mask))


@register_fusion("coattention")
class CoAttention(Fusion):
    """Co-attention as in the paper's code release (LXMERT): one cross-modality layer over the two token streams
    (Table 3: 1 layer), then a merging transformer block over both streams' tokens, pooled (their mean)."""

    uses_tokens = True

    def __init__(self, hidden, text_width, image_width, dropout=0.1, heads=2):
        super().__init__(hidden, text_width, image_width, dropout)
        self.layer = CrossModalityLayer(hidden, heads, dropout)
        self.merge = MergeAttention(hidden, hidden, hidden, dropout, depth=1, heads=heads)
        self.merge.text_proj = self.merge.image_proj = nn.Identity()  # the streams are at `hidden` already

    def forward(self, text, image):
        t, v = self.drop(self.text_proj(text[0])), self.drop(self.image_proj(image[0]))  # (U, Tt, D), (U, Ti, D)
        t, v = self.layer(t, text[1], v, image[1])
        return self.merge((t, text[1], None), (v, image[1], None))


for _depth in (1, 2, 4):
    FUSIONS[f"merge_attention_{_depth}"] = functools.partial(MergeAttention, depth=_depth)


def build_fusion(name, hidden, text_width, image_width, dropout=0.1):
    return FUSIONS[name](hidden, text_width, image_width, dropout)
