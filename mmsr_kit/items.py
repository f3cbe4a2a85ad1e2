"""Content item encoders: an item's text and picture -> one vector (MMSR, MMSR-T, MMSR-V).

`ItemContent` prepares every item's encoder inputs once (token ids, uint8 pictures at the encoder's
size), with `views` variants per item when the source can draw them (the synthetic world): training
picks one view per item each time it is encoded (per-encode augmentation), evaluation always view 0.
"""
import logging

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger(__name__)


def item_pictures(dataset, size):
    """Every item's picture from the item table as uint8 (N, 3, size, size); missing ones grey, counted."""
    out = torch.full((len(dataset.items), 3, size, size), 128, dtype=torch.uint8)
    missing = 0
    for i, image in enumerate(dataset.items["image"]):
        if image is None:
            missing += 1
            continue
        out[i] = torch.from_numpy(np.array(image.convert("RGB").resize((size, size)))).permute(2, 0, 1)
    if missing:
        log.warning("%s: %d item(s) without a picture are shown as grey", dataset.name, missing)
    return out


def resize(images, size):
    """uint8 (n, 3, S, S) -> uint8 (n, 3, size, size)."""
    if images.shape[-1] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


class ItemContent(nn.Module):
    """Encoder inputs of items 1..N (row 0 is padding) as buffers, so they move with the model.

    input_ids, attention_mask: (N+1, V, T); images: (N+1, V, 3, S, S) uint8. V = 1 without augmentation.
    """

    def __init__(self, data, text=None, vision=None, views=1, seed=0):
        super().__init__()
        dataset, world = data.dataset, data.dataset.world
        views = views if world is not None else 1
        self.views = views
        rng = np.random.default_rng([seed, 11])
        items = np.arange(data.n_items)
        if text is not None:
            texts = [list(dataset.items["text"])]
            texts += [world.titles(items, rng) for _ in range(views - 1)]
            tokens = text.tokenize([t for view in texts for t in view])  # (V*N, T), view-major
            for key, value in tokens.items():
                value = value.view(views, data.n_items, -1).transpose(0, 1)  # (N, V, T)
                self.register_buffer(key, torch.cat([torch.zeros_like(value[:1]), value]), persistent=False)
        if vision is not None:
            if not dataset.has_images:
                from .registry import ConfigError

                raise ConfigError(f"{dataset.name} has no images: use model.mode=mmsr_t or idsr")
            size = vision.image_size
            pictures = [item_pictures(dataset, size)]
            for _ in range(views - 1):
                pictures.append(resize(torch.as_tensor(world.images(items, rng)).permute(0, 3, 1, 2), size))
            images = torch.stack(pictures, 1)  # (N, V, 3, S, S)
            self.register_buffer("images", torch.cat([torch.zeros_like(images[:1]), images]), persistent=False)

    def pick_views(self, items, training):
        if training and self.views > 1:
            return torch.randint(0, self.views, items.shape, device=items.device)
        return torch.zeros_like(items)


class ContentItemEncoder(nn.Module):
    """Item index -> vector from its text (MMSR-T), picture (MMSR-V), or both through a fusion (MMSR)."""

    def __init__(self, content, hidden, text=None, vision=None, fusion=None, dropout=0.1):
        super().__init__()
        self.content, self.text, self.vision, self.fusion = content, text, vision, fusion
        if fusion is None:  # one modality: project its pooled vector
            width = text.width if text is not None else vision.width
            self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, hidden))

    def forward(self, items):  # (U,) -> (U, D)
        view = self.content.pick_views(items, self.training)
        parts = []
        if self.text is not None:
            ids, mask = self.content.input_ids[items, view], self.content.attention_mask[items, view]  # (U, T)
            width = int(mask.sum(1).max())  # drop the columns that are padding for every item of the batch
            parts.append(self.text(ids[:, :width], mask[:, :width]))
        if self.vision is not None:
            parts.append(self.vision(self.content.images[items, view]))
        if self.fusion is not None:
            return self.fusion(*parts)
        return self.proj(parts[0][2])

    def encoder_parameters(self):
        """Parameters of the pretrained encoders (train.encoder_lr); encoders trained from scratch are not among them."""
        return [p for m in (self.text, self.vision) if m is not None and m.pretrained for p in m.parameters()]
