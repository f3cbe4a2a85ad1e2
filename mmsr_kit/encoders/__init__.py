"""Item encoders: text (Hugging Face) and vision (timm, ViT-MAE), each a name in a registry."""
from .common import ModelNotFound
from .text import TEXT_ENCODERS, TextEncoder, text_spec
from .vision import VISION_ENCODERS, VisionEncoder, vision_spec

__all__ = ["TEXT_ENCODERS", "VISION_ENCODERS", "TextEncoder", "VisionEncoder", "text_spec", "vision_spec",
           "ModelNotFound"]
