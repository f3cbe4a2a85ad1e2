"""Modes: how items become vectors. Each builds the whole recommender for a config and a split."""
from .builders import cache_dtype, content_model, parse_blocks
from .layers import fast_dropout
from .model import IDEmbedding, MostPop, Recommender
from .registry import MODES
from .sequence import build_sequence


@MODES.register("idsr")
def idsr(cfg, data):
    """ID-based sequential recommendation: an item embedding table."""
    return Recommender(IDEmbedding(data.n_items, cfg.model.hidden, data.new), build_sequence(cfg.model, data.max_len))


@MODES.register("mostpop")
def mostpop(cfg, data):
    """Most popular items first (training counts); no training. The floor every model must beat."""
    return MostPop(data.train_counts)


def build_model(cfg, data):
    return fast_dropout(MODES[cfg.model.mode](cfg, data))


@MODES.register("mmsr")
def mmsr(cfg, data):
    """Text + picture: a text encoder and a vision encoder joined by a fusion (model.fusion)."""
    return content_model(cfg, data, use_text=True, use_vision=True)


@MODES.register("mmsr_t")
def mmsr_t(cfg, data):
    """Text only: the text encoder's pooled vector, projected."""
    return content_model(cfg, data, use_text=True, use_vision=False)


@MODES.register("mmsr_v")
def mmsr_v(cfg, data):
    """Picture only: the vision encoder's pooled vector, projected."""
    return content_model(cfg, data, use_text=False, use_vision=True)


@MODES.register("vlp")
def vlp(cfg, data):
    """One vision-language model (model.vlp: CLIP, GroupViT, ViLT, VisualBERT, FLAVA) in place of text encoder,
    vision encoder and fusion; VisualBERT reads model.vlp_visual tokens from a frozen extractor."""
    from .encoders.vlp import VLPEncoder, visual_extractor
    from .items import ItemContent, VLPItemEncoder

    m = cfg.model
    model = VLPEncoder(m.vlp, m.text_len, parse_blocks(m.vlp_blocks))
    extractor = (visual_extractor(m.vlp, m.vlp_visual, m.vlp_extractor, cfg.data.image_size)
                 if model.family == "visualbert" else None)
    content = ItemContent(data, model, extractor or model, views=cfg.data.views, seed=cfg.data.world_seed, mode=m.mode)
    items = VLPItemEncoder(content, m.hidden, model, extractor, m.dropout, m.adaptor, cache_frozen=m.cache_frozen,
                           cache_dtype=cache_dtype(cfg), cache_memory_bytes=int(m.cache_memory_gb * 2**30))
    items.fit_adaptor()
    return Recommender(items, build_sequence(cfg.model, data.max_len), cfg.model.encode_every_occurrence)


from . import baselines  # noqa: E402,F401  (registers fdsa, carca++, vqrec, morec++; imports builders, not modes)
