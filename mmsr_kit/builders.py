"""What the content-based modes (modes.py, baselines.py) build their item encoders with: trained-block settings, the
cache dtype, and the configured text and vision encoders over every item's inputs."""
from .model import Recommender
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
    items = ContentItemEncoder(content, m.hidden, text, vision, joined, m.dropout, cache_frozen=m.cache_frozen,
                               cache_dtype=cache_dtype(cfg), cache_memory_bytes=int(m.cache_memory_gb * 2**30),
                               project=project, adaptor=m.adaptor)
    items.fit_adaptor()
    return items


def content_model(cfg, data, use_text, use_vision):
    items = content_encoder(cfg, data, use_text, use_vision)
    return Recommender(items, build_sequence(cfg.model, data.max_len), cfg.model.encode_every_occurrence)
