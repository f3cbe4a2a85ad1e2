"""Sequence encoders: item vectors in, one user vector per position out.

Every model takes x (B, L, D) item vectors of a left-padded sequence and valid (B, L)
(False at padding) and returns (B, L, D); position t sees only positions <= t, so the
output at t predicts item t + 1 and the last position is the user vector.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import SEQUENCES


class CausalSelfAttention(nn.Module):
    def __init__(self, hidden, heads, dropout):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"model.hidden ({hidden}) must be divisible by model.heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.dropout = dropout

    def forward(self, x, allowed):
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        q, k, v = (t.view(B, L, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, H, L, D/H)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))  # (B, L, D)


class TransformerBlock(nn.Module):
    """Pre-norm block: causal self-attention, then a position-wise feed-forward layer."""

    def __init__(self, hidden, heads, dropout):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = CausalSelfAttention(hidden, heads, dropout)
        self.norm2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, allowed):
        x = x + self.drop(self.attn(self.norm1(x), allowed))
        return x + self.drop(self.ffn(self.norm2(x)))


@SEQUENCES.register("sasrec")
class SASRec(nn.Module):
    """Self-attentive sequential recommendation (Kang & McAuley 2018): causal transformer blocks."""

    default_layers = 2

    def __init__(self, hidden, max_len, layers=None, heads=2, dropout=0.1):
        super().__init__()
        self.max_len = max_len
        self.position = nn.Embedding(max_len, hidden)
        nn.init.normal_(self.position.weight, std=0.02)  # small next to item vectors, or it drowns them at the start
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(hidden, heads, dropout) for _ in range(layers or self.default_layers))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x, valid):
        B, L, D = x.shape
        if L > self.max_len:
            raise ValueError(f"sequence of length {L} is longer than the model's {self.max_len} positions (data.max_len)")
        x = self.drop(x + self.position.weight[-L:])  # positions counted from the end: the last item is always max_len-1
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        allowed = causal & valid[:, None, :]  # (B, L, L): attend to earlier real items
        allowed = allowed | torch.eye(L, dtype=torch.bool, device=x.device)  # padding rows attend to themselves only
        allowed = allowed[:, None]  # (B, 1, L, L), shared by the heads
        keep = valid[..., None].to(x.dtype)
        for block in self.blocks:
            x = block(x, allowed) * keep
        return self.norm(x)


@SEQUENCES.register("gru4rec")
class GRU4Rec(nn.Module):
    """Session-based recommendation with recurrent networks (Hidasi et al. 2016): a stacked GRU."""

    default_layers = 4

    def __init__(self, hidden, max_len, layers=None, heads=2, dropout=0.1):
        super().__init__()
        layers = layers or self.default_layers
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x, valid):
        """The GRU reads each sequence's real items only (packed), starting from a zero state at its first item, so
        a user's vectors do not depend on how much padding is before the history."""
        B, L, D = x.shape
        lengths = valid.sum(1)  # left padding: the real items are the last `lengths` positions
        shift = (torch.arange(L, device=x.device) + (L - lengths)[:, None]) % L  # (B, L): row b rolled left by its pad
        first = torch.gather(self.drop(x), 1, shift[..., None].expand(B, L, D))  # real items first, padding after
        packed = nn.utils.rnn.pack_padded_sequence(first, lengths.clamp(min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        h, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=L)  # zeros after
        back = (torch.arange(L, device=x.device) + lengths[:, None]) % L  # roll right again: padding back in front
        return self.out(torch.gather(h, 1, back[..., None].expand(B, L, D)))


class DilatedResidualBlock(nn.Module):
    """Two dilated causal convolutions with layer norm and a residual connection (NextItNet)."""

    def __init__(self, hidden, dilations, kernel=3, dropout=0.1):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, dilation=d) for d in dilations)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in dilations)
        self.pads = [(kernel - 1) * d for d in dilations]
        self.drop = nn.Dropout(dropout)

    def forward(self, x):  # (B, L, D)
        y = x
        for conv, norm, pad in zip(self.convs, self.norms, self.pads):
            y = F.pad(y.transpose(1, 2), (pad, 0))  # (B, D, pad + L): pad on the left only, so it stays causal
            y = F.relu(norm(conv(y).transpose(1, 2)))  # (B, L, D)
        return x + self.drop(y)


@SEQUENCES.register("nextitnet")
class NextItNet(nn.Module):
    """A simple convolutional generative network for next item recommendation (Yuan et al. 2019)."""

    default_layers = 2

    def __init__(self, hidden, max_len, layers=None, heads=2, dropout=0.1):
        super().__init__()
        layers = layers or self.default_layers
        self.drop = nn.Dropout(dropout)
        # Block i dilates by 2^(2i) and 2^(2i+1): 1,2 then 4,8 ... doubling the receptive field each layer.
        self.blocks = nn.ModuleList(DilatedResidualBlock(hidden, (4**i, 2 * 4**i), dropout=dropout) for i in range(layers))

    def forward(self, x, valid):
        x = self.drop(x)
        keep = valid[..., None].to(x.dtype)
        for block in self.blocks:
            x = block(x) * keep
        return x


def build_sequence(model_cfg, max_len):
    cls = SEQUENCES[model_cfg.sequence]
    return cls(model_cfg.hidden, max_len, layers=model_cfg.layers, heads=model_cfg.heads, dropout=model_cfg.dropout)
