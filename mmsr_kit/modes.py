"""Modes: how items become vectors. Each builds the whole recommender for a config and a split."""
from .layers import fast_dropout
from .model import IDEmbedding, MostPop, Recommender
from .registry import MODES
from .sequence import build_sequence


def parse_blocks(value):
    """model.text_blocks / vision_blocks: "default" (the encoder's own), "all", or a number of top blocks."""
    value = str(value)
    if value in ("default", "all") or value.isdigit():
        return None if value == "all" else value if value == "default" else int(value)
    from .registry import ConfigError

    raise ConfigError(f"a number of blocks is default, all or a whole number, not {value!r}")


def cache_dtype(cfg):
    """model.cache_dtype as a torch dtype; auto: bfloat16 where training runs under bf16 autocast (CUDA)."""
    import torch

    from .device import use_cuda

    if cfg.model.cache_dtype == "auto":
        return torch.bfloat16 if cfg.train.bf16 and use_cuda(cfg.train.device) else torch.float32
    return getattr(torch, cfg.model.cache_dtype)


def content_encoder(cfg, data, use_text, use_vision, fusion=True, project=True):
    """The configured text and/or vision encoders over every item's inputs, as one ContentItemEncoder: joined by
    model.fusion when both are used (fusion=False: no fusion, callers read `encode`); one modality projected
    unless project=False."""
    from .encoders import TextEncoder, VisionEncoder
    from .fusion import build_fusion
    from .items import ContentItemEncoder, ItemContent

    m = cfg.model
    text = TextEncoder(m.text_encoder, m.text_len, m.pooling, parse_blocks(m.text_blocks)) if use_text else None
    vision = (VisionEncoder(m.vision_encoder, cfg.data.image_size, parse_blocks(m.vision_blocks), m.mask_ratio,
                            size=m.vision_size) if use_vision else None)
    content = ItemContent(data, text, vision, views=cfg.data.views, seed=cfg.data.world_seed, mode=m.mode)
    both = text is not None and vision is not None
    joined = build_fusion(m.fusion, m.hidden, text.width, vision.width, m.dropout) if fusion and both else None
    return ContentItemEncoder(content, m.hidden, text, vision, joined, m.dropout, cache_frozen=m.cache_frozen,
                              cache_dtype=cache_dtype(cfg), cache_memory_bytes=int(m.cache_memory_gb * 2**30),
                              project=project)


def content_model(cfg, data, use_text, use_vision):
    items = content_encoder(cfg, data, use_text, use_vision)
    return Recommender(items, build_sequence(cfg.model, data.max_len), cfg.model.encode_every_occurrence)


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
    items = VLPItemEncoder(content, m.hidden, model, extractor, m.dropout, cache_frozen=m.cache_frozen,
                           cache_dtype=cache_dtype(cfg), cache_memory_bytes=int(m.cache_memory_gb * 2**30))
    return Recommender(items, build_sequence(cfg.model, data.max_len), cfg.model.encode_every_occurrence)


from . import baselines  # noqa: E402,F401  (registers fdsa, carca++, vqrec, morec++)
