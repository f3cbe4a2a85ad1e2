"""What text and vision encoders share: loading by name or path offline, and top-k fine-tuning."""
import os
from pathlib import Path

import torch
import torch.nn as nn

from ..registry import ConfigError, did_you_mean


def set_pixel_statistics(module, mean, std):
    """A model's per-channel picture mean and std as (1, 3, 1, 1) buffers `mean` and `std` of `module`."""
    module.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
    module.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)


def normalise_pictures(pictures, module):
    """uint8 pictures (U, 3, S, S) -> floats standardised by `module`'s `set_pixel_statistics`: (x / 255 - mean) / std,
    as one multiply and one add in place (the batch is the whole catalogue at the workshop size)."""
    scale = 1 / (255 * module.std)
    return pictures.float().mul_(scale).sub_(module.mean / module.std)


def train_top(encoder, mode=True):
    """`nn.Module.train` for an encoder that trains only `encoder.trainable_modules()` (when `train_blocks` is set):
    the frozen parts stay in eval mode (no dropout, fixed batch-norm statistics)."""
    nn.Module.train(encoder, mode)
    if encoder.train_blocks is not None:
        nn.Module.train(encoder, False)
        for module in encoder.trainable_modules():
            module.train(mode)
        encoder.training = mode  # the encoder itself knows it is training (MAE masking, augmentation)
    return encoder


class ModelNotFound(ConfigError):
    """A model that is neither a local folder nor reachable: one message naming it and how to supply it."""


def hub_offline():
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


# The config key that names a model of each kind, for the not-found hint (a test sets each one).
CONFIG_KEYS = {"text encoder": "model.text_encoder", "vision encoder": "model.vision_encoder",
               "vision-language model": "model.vlp", "tokenizer of vision-language model": "model.vlp",
               "image processor of vision-language model": "model.vlp", "region extractor": "model.vlp_extractor"}


def missing_model(name, kind, cause=None, how=None, choices=()):
    """The one-line error for a model not found; `choices`: the registered names, when `name` was not one of them
    (a typo of one gets "did you mean")."""
    hint = did_you_mean(name, choices)
    where = "HF_HUB_OFFLINE is set, so the hub is not asked" if hub_offline() else "the hub could not be reached"
    how = how or f"a local folder ({CONFIG_KEYS[kind]}=/path/to/model, written by save_pretrained)"
    return ModelNotFound(
        f"{kind} {name!r} was not found: it is not local, not in the Hugging Face cache, and {where}. "
        f"Pass {how} or, with a network, its hub name; `mmsr list encoders` names the ones that work offline."
        + (f" ({type(cause).__name__}: {str(cause).splitlines()[0][:200]})" if cause else "")
        + (f" It is no registered name either{hint}." if hint else "")
    )


def from_pretrained(load, name, kind, choices=()):
    """Call `load(name, local_files_only=...)`: local folders and the cache first, the hub only when online
    (`choices`: see `missing_model`). Without transformers' per-load progress bar (a notebook building several
    models shows a column of them)."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return _from_pretrained(load, name, kind, choices)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _from_pretrained(load, name, kind, choices):
    if Path(name).expanduser().is_dir():
        return load(str(Path(name).expanduser()), local_files_only=True)
    try:
        return load(name, local_files_only=True)
    except (OSError, ValueError) as cached_error:
        if hub_offline():
            raise missing_model(name, kind, cached_error, choices=choices) from None
    try:
        return load(name, local_files_only=False)
    except Exception as error:  # network errors come in many types; all mean the same here
        raise missing_model(name, kind, error, choices=choices) from None


def blocks_holder(model):
    """(module, attribute) holding a Hugging Face encoder's ModuleList of blocks, or None."""
    encoder = getattr(model, "encoder", None)
    for attr in ("layer", "layers", "block"):
        if encoder is not None and isinstance(getattr(encoder, attr, None), nn.ModuleList):
            return encoder, attr
    return None


def encoder_blocks(model):
    """The transformer blocks of a Hugging Face encoder, bottom first, found by module structure."""
    holder = blocks_holder(model)
    if holder is not None:
        return list(getattr(*holder))
    lists = [m for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and n.split(".")[-1] in ("layer", "layers")]
    if not lists and getattr(getattr(model, "config", None), "num_hidden_layers", None) == 0:
        return []  # an encoder without blocks (a bag of embeddings)
    if not lists:
        raise ConfigError(f"cannot find the transformer blocks of {type(model).__name__}")
    return list(max(lists, key=len))


class TopBlocks(nn.Module):
    """Base of the encoders: trains only the top `k` of `blocks` (None: everything), frozen parts in eval mode.

    Subclasses set `self.blocks` (an ordered list of modules, bottom first) and `self.heads` (modules above
    the blocks, such as a final norm, that train whenever any block does), optionally `self.between` ({index i:
    a module that runs between blocks i - 1 and i}, such as Swin's patch merging at a stage's start: it trains
    when both of its neighbours do, so the trained part is always a contiguous top), then `self.set_trainable(k)`.
    """
    between = {}

    def set_trainable(self, k):
        self.train_blocks = k
        if k is None:
            self.requires_grad_(True)
            return
        if not 0 <= k <= len(self.blocks):
            raise ConfigError(f"cannot train the top {k} blocks of a model with {len(self.blocks)}")
        self.requires_grad_(False)
        for module in self.trainable_modules():
            module.requires_grad_(True)

    @property
    def frozen(self):
        """Nothing trains and the output is a fixed function of the input: it can be computed once per item."""
        return self.train_blocks == 0

    def trainable_modules(self):
        if self.train_blocks is None:
            return [self]
        first = len(self.blocks) - self.train_blocks  # the lowest trained block
        inside = [module for i, module in sorted(self.between.items()) if i > first]
        return list(self.blocks[first:]) + inside + (list(self.heads) if self.train_blocks else [])

    def train(self, mode=True):
        return train_top(self, mode)
