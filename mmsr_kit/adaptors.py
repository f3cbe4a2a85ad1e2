"""Adaptors (`model.adaptor`, issue 20): an item encoder's pooled vector -> the item vector the sequence model reads,
where one modality is used (MMSR-T, MMSR-V, a VLP). A frozen pretrained encoder's vectors are fixed, so what the
adaptor can do is all the item side learns.

- `linear`: dropout, then one linear map (the kit's projection before issue 20).
- `mlp`: dropout, linear to twice the width, GELU, linear.
- `whiten`: the vectors whitened (Su et al. 2021: minus their mean, rotated and scaled to unit covariance) with
  statistics computed once from every catalogue item's vector and stored with the run, then `linear`.
- `moe`: UniSRec's mixture-of-experts adaptor (Hou et al., KDD 2022): k parametric-whitening experts
  ((x - b_k) W_k, b_k and W_k learned), their outputs mixed by a softmax gate over x.
- `auto` (the default): `FROZEN_DEFAULT` behind a pretrained encoder of which nothing trains (its vectors are
  fixed, so the adaptor is all the item side learns), `linear` behind any other.

    adaptor = build_adaptor("moe", width=384, hidden=64, dropout=0.1)
"""
import logging

import torch
import torch.nn as nn

from .registry import Registry

log = logging.getLogger(__name__)
ADAPTORS = Registry("adaptor")
FROZEN_DEFAULT = "moe"  # `auto` behind a frozen pretrained encoder: the best behind frozen MiniLM on MovieLens-100k
# (1.09x IDSR's test HR@10 over 3 seeds; README, benchmarks/ml100k_text.py)


class Linear(nn.Sequential):
    """Dropout, then a linear map to the item width."""

    def __init__(self, width, hidden, dropout=0.1):
        super().__init__(nn.Dropout(dropout), nn.Linear(width, hidden))


class MLP(nn.Sequential):
    """Dropout, linear to twice the item width, GELU, linear to the item width."""

    def __init__(self, width, hidden, dropout=0.1):
        super().__init__(nn.Dropout(dropout), nn.Linear(width, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))


class Whiten(nn.Module):
    """Whitening with fixed statistics (`fit`, once, from every catalogue item's vector; buffers, so they are saved
    in the run's weights), then `Linear`. Unfitted it is the identity on the input."""

    needs_fit = True

    def __init__(self, width, hidden, dropout=0.1, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("transform", torch.eye(width))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.out = Linear(width, hidden, dropout)

    @torch.no_grad()
    def fit(self, vectors):
        """Statistics of `vectors` (N, width): x -> (x - mean) @ U diag(1 / sqrt(eigenvalues + eps)), the
        eigenvectors U of their covariance (a singular covariance, fewer items than dimensions, is kept finite by eps)."""
        x = vectors.double()
        mean = x.mean(0)
        centred = x - mean
        covariance = centred.T @ centred / max(len(x) - 1, 1)
        values, vectors_ = torch.linalg.eigh(covariance)
        self.mean.copy_(mean.to(self.mean.dtype))
        self.transform.copy_((vectors_ / torch.sqrt(values.clamp(min=0) + self.eps)).to(self.transform.dtype))
        self.fitted.fill_(True)

    def forward(self, x):
        return self.out((x - self.mean) @ self.transform)


class MoE(nn.Module):
    """UniSRec's MoE adaptor: `experts` parametric-whitening experts (x - b_k) @ W_k, gated by softmax(x @ G)."""

    def __init__(self, width, hidden, dropout=0.1, experts=8):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.bias = nn.Parameter(torch.zeros(experts, width))
        self.weight = nn.Parameter(torch.empty(experts, width, hidden))
        nn.init.normal_(self.weight, std=0.02)  # UniSRec's initialisation of its whitening layers
        self.gate = nn.Linear(width, experts, bias=False)
        nn.init.zeros_(self.gate.weight)  # every expert weighed equally at the start

    def forward(self, x):  # (..., width) -> (..., hidden)
        x = self.dropout(x)
        k, width, hidden = self.weight.shape
        # (x - b_k) W_k = x W_k - b_k W_k: every expert in one matrix product (2.5x faster than broadcasting x - b_k)
        experts = (x @ self.weight.transpose(0, 1).reshape(width, k * hidden)).unflatten(-1, (k, hidden))
        experts = experts - torch.einsum("kw,kwh->kh", self.bias, self.weight)  # (..., k, hidden)
        gates = torch.softmax(self.gate(x), -1).unsqueeze(-1)  # (..., k, 1)
        return (gates * experts).sum(-2)


ADAPTORS["linear"] = Linear
ADAPTORS["mlp"] = MLP
ADAPTORS["whiten"] = Whiten
ADAPTORS["moe"] = MoE


def adaptor_for(name, encoder):
    """The adaptor `name` (`model.adaptor`) stands for behind `encoder` (a text, vision or vision-language encoder):
    itself, or for `auto` FROZEN_DEFAULT where the encoder is pretrained and none of its parameters trains, else
    linear."""
    if name != "auto":
        return name
    frozen = getattr(encoder, "pretrained", False) and not any(p.requires_grad for p in encoder.parameters())
    chosen = FROZEN_DEFAULT if frozen else "linear"
    log.info("adaptor auto: %s behind %s encoder %s", chosen, "the frozen pretrained" if frozen else "the trained",
             getattr(encoder, "name", type(encoder).__name__))
    return chosen


def build_adaptor(name, width, hidden, dropout=0.1, encoder=None):
    """The adaptor `name` from `width` to `hidden`; `auto` is resolved for `encoder` (`adaptor_for`)."""
    if name == "auto" and encoder is None:
        raise ValueError("adaptor auto needs the encoder it follows")
    return ADAPTORS[adaptor_for(name, encoder)](width, hidden, dropout)
