"""Modes: how items become vectors. Each builds the whole recommender for a config and a split."""
from .model import IDEmbedding, MostPop, Recommender
from .registry import MODES
from .sequence import build_sequence


@MODES.register("idsr")
def idsr(cfg, data):
    """ID-based sequential recommendation: an item embedding table."""
    return Recommender(IDEmbedding(data.n_items, cfg.model.hidden), build_sequence(cfg.model, data.max_len))


@MODES.register("mostpop")
def mostpop(cfg, data):
    """Most popular items first (training counts); no training. The floor every model must beat."""
    return MostPop(data.train_counts)


def build_model(cfg, data):
    return MODES[cfg.model.mode](cfg, data)
